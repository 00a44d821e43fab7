/*  graph.h - the dependency graph: order, cycles, closures

    Owns: a small directed graph over service indexes, where an edge
    a -> b means "a depends on b".  Pure: no allocation after _new, no
    system calls, so config validation and the supervisor share it and it
    is tested on its own.  Part of libpmconfig (schema/), since the
    config's start order and cycle check need it.
*/
#ifndef PM_GRAPH_H
#define PM_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pm_graph_t pm_graph_t;

/*  A graph of nodes 0..nodes-1 with no edges. */
pm_graph_t *pm_graph_new (size_t nodes);
void pm_graph_destroy (pm_graph_t **self_p);

size_t pm_graph_size (const pm_graph_t *self);

/*  Adds "from depends on to".  Duplicates are kept once. */
void pm_graph_add_edge (pm_graph_t *self, size_t from, size_t to);

/*  True if from depends directly on to. */
bool pm_graph_has_edge (const pm_graph_t *self, size_t from, size_t to);

/*  Start order: writes every node to order[] (size nodes), each after all
    it depends on; among nodes free at the same time, the lowest index
    first (file order).  Returns 0; or -1 when there is a cycle, writing
    one cycle to cycle[] (size nodes + 1) as a path whose first and last
    nodes are equal, with its length in *cycle_len. */
int pm_graph_order (const pm_graph_t *self, size_t *order,
                    size_t *cycle, size_t *cycle_len);

/*  Sets set[n] = true for every node that node depends on, directly or
    not (node itself excluded).  Other entries are left as they are. */
void pm_graph_mark_dependencies (const pm_graph_t *self, size_t node, bool *set);

/*  Sets set[n] = true for every node that depends on node, directly or
    not (node itself excluded).  Other entries are left as they are. */
void pm_graph_mark_dependents (const pm_graph_t *self, size_t node, bool *set);

#endif
