/*  graph.c - the dependency graph: order, cycles, closures (see graph.h)

    Owns: an adjacency matrix of bits over service indexes (row "from",
    column "to": from depends on to) and the scratch space its queries
    need.  Everything is allocated in pm_graph_new, so ordering and the
    closures never allocate and cannot fail.  Pure: no system calls.

    Used by config.c (unknown names are its business; it checks cycles
    and computes the start order here) and by the supervisor (closures for
    start with dependencies, stop with dependents).

    Costs: a matrix of nodes^2 bits (2 MB for 4,096 nodes); order and
    the closures are O(nodes^2), fine for the few thousand services a
    config may hold.  The scratch space makes a graph unsafe to query from
    two threads at once; the agent has one thread.
*/
#include "graph.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A node that Kahn's algorithm has placed in the order.
#define S_DONE SIZE_MAX
//  A node not on the current walk.
#define S_NOWHERE SIZE_MAX

struct pm_graph_t {
    size_t nodes;
    size_t row_words;         //  words of bits per row
    uint64_t *bits;           //  nodes rows of row_words words
    //  Scratch, written by the const queries: the pointers stay put, only
    //  what they point to changes.
    size_t *pending;          //  per node: dependencies not yet placed
    size_t *position;         //  per node: its step on the cycle walk
    size_t *stack;            //  nodes still to visit in a closure
    bool *seen;               //  per node: visited in a closure
};

pm_graph_t *
pm_graph_new (size_t nodes)
{
    pm_graph_t *self = calloc (1, sizeof (pm_graph_t));
    if (!self)
        return NULL;
    self->nodes = nodes;
    self->row_words = (nodes + 63) / 64;
    //  calloc checks its own multiplication; the row count times the row
    //  size is checked here.
    if (self->row_words && nodes > SIZE_MAX / self->row_words) {
        free (self);
        return NULL;
    }
    size_t cells = nodes ? nodes : 1;
    self->bits = calloc (self->row_words * nodes + 1, sizeof (uint64_t));
    self->pending = calloc (cells, sizeof (size_t));
    self->position = calloc (cells, sizeof (size_t));
    self->stack = calloc (cells, sizeof (size_t));
    self->seen = calloc (cells, sizeof (bool));
    if (!self->bits || !self->pending || !self->position || !self->stack
    ||  !self->seen)
        pm_graph_destroy (&self);
    return self;
}

void
pm_graph_destroy (pm_graph_t **self_p)
{
    assert (self_p);
    pm_graph_t *self = *self_p;
    if (!self)
        return;
    free (self->bits);
    free (self->pending);
    free (self->position);
    free (self->stack);
    free (self->seen);
    free (self);
    *self_p = NULL;
}

size_t
pm_graph_size (const pm_graph_t *self)
{
    assert (self);
    return self->nodes;
}

static inline uint64_t *
s_word (const pm_graph_t *self, size_t from, size_t to)
{
    return &self->bits [from * self->row_words + to / 64];
}

void
pm_graph_add_edge (pm_graph_t *self, size_t from, size_t to)
{
    assert (self);
    assert (from < self->nodes && to < self->nodes);
    *s_word (self, from, to) |= (uint64_t) 1 << (to % 64);
}

bool
pm_graph_has_edge (const pm_graph_t *self, size_t from, size_t to)
{
    assert (self);
    assert (from < self->nodes && to < self->nodes);
    return (*s_word (self, from, to) >> (to % 64)) & 1;
}

//  Number of nodes that node depends on directly.
static size_t
s_out_degree (const pm_graph_t *self, size_t node)
{
    size_t count = 0;
    const uint64_t *row = &self->bits [node * self->row_words];
    for (size_t w = 0; w < self->row_words; w++)
        count += (size_t) __builtin_popcountll (row [w]);
    return count;
}

//  Finds a cycle among the nodes Kahn's algorithm could not place (each
//  of them still has an unplaced dependency, so following one from any of
//  them must come back to a node already walked).  Writes it rotated to
//  start at its lowest index, so the same graph always reports the same
//  path, whatever the walk's entry point.
static void
s_find_cycle (const pm_graph_t *self, size_t *cycle, size_t *cycle_len)
{
    size_t n = self->nodes;
    size_t start = 0;
    while (start < n && self->pending [start] == S_DONE)
        start++;
    assert (start < n);

    for (size_t i = 0; i < n; i++)
        self->position [i] = S_NOWHERE;
    //  The walk is kept in stack[]: step k visits stack[k].
    size_t steps = 0;
    size_t node = start;
    while (self->position [node] == S_NOWHERE) {
        self->position [node] = steps;
        self->stack [steps++] = node;
        //  Follow the lowest-index unplaced dependency.
        size_t next = n;
        for (size_t to = 0; to < n; to++)
            if (self->pending [to] != S_DONE && pm_graph_has_edge (self, node, to)) {
                next = to;
                break;
            }
        assert (next < n);
        node = next;
    }
    //  stack[position[node] .. steps-1] is the cycle, closed by node.
    size_t first = self->position [node];
    size_t length = steps - first;
    size_t lowest = first;
    for (size_t k = first; k < steps; k++)
        if (self->stack [k] < self->stack [lowest])
            lowest = k;
    if (cycle) {
        for (size_t k = 0; k < length; k++)
            cycle [k] = self->stack [first + (lowest - first + k) % length];
        cycle [length] = cycle [0];
    }
    if (cycle_len)
        *cycle_len = length + 1;
}

int
pm_graph_order (const pm_graph_t *self, size_t *order,
                size_t *cycle, size_t *cycle_len)
{
    assert (self);
    size_t n = self->nodes;
    assert (order || n == 0);

    for (size_t i = 0; i < n; i++)
        self->pending [i] = s_out_degree (self, i);

    //  Kahn's algorithm, choosing the lowest free index at each step so
    //  ties keep file order: O(n) to choose, O(n) to release dependents.
    for (size_t placed = 0; placed < n; placed++) {
        size_t next = n;
        for (size_t i = 0; i < n; i++)
            if (self->pending [i] == 0) {
                next = i;
                break;
            }
        if (next == n) {
            s_find_cycle (self, cycle, cycle_len);
            return -1;
        }
        order [placed] = next;
        self->pending [next] = S_DONE;
        for (size_t from = 0; from < n; from++)
            if (self->pending [from] != S_DONE
            &&  pm_graph_has_edge (self, from, next))
                self->pending [from]--;
    }
    if (cycle_len)
        *cycle_len = 0;
    return 0;
}

//  Marks every node reachable from node, forwards (its dependencies) or
//  backwards (its dependents).  Depth-first with an explicit stack: each
//  node is pushed at most once, so n entries suffice.
static void
s_mark (const pm_graph_t *self, size_t node, bool *set, bool forwards)
{
    assert (self);
    assert (node < self->nodes);
    assert (set);
    size_t n = self->nodes;
    memset (self->seen, 0, n * sizeof (bool));
    size_t depth = 0;
    self->seen [node] = true;
    self->stack [depth++] = node;
    while (depth > 0) {
        size_t at = self->stack [--depth];
        for (size_t other = 0; other < n; other++) {
            if (self->seen [other])
                continue;
            bool edge = forwards ? pm_graph_has_edge (self, at, other)
                                : pm_graph_has_edge (self, other, at);
            if (edge) {
                self->seen [other] = true;
                set [other] = true;
                self->stack [depth++] = other;
            }
        }
    }
}

void
pm_graph_mark_dependencies (const pm_graph_t *self, size_t node, bool *set)
{
    s_mark (self, node, set, true);
}

void
pm_graph_mark_dependents (const pm_graph_t *self, size_t node, bool *set)
{
    s_mark (self, node, set, false);
}
