/*  test_graph.c - unit test of schema/graph.c

    Covers: edges, start order with file-order ties, cycles of length 1,
    2 and 3 (and one reached from outside), closures both ways, and a
    large graph for the O(n^2) paths.  No system calls beyond malloc.
*/
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        exit (1); \
    } \
} while (0)

//  Position of node in order[0..n).
static size_t
s_pos (const size_t *order, size_t n, size_t node)
{
    for (size_t i = 0; i < n; i++)
        if (order [i] == node)
            return i;
    return n;
}

//  Checks order[] is a permutation that puts every node after its
//  dependencies.
static void
s_check_valid_order (const pm_graph_t *graph, const size_t *order)
{
    size_t n = pm_graph_size (graph);
    for (size_t i = 0; i < n; i++)
        CHECK (s_pos (order, n, i) < n);
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++)
            if (pm_graph_has_edge (graph, a, b))
                CHECK (s_pos (order, n, b) < s_pos (order, n, a));
}

static void
test_empty (void)
{
    pm_graph_t *graph = pm_graph_new (0);
    CHECK (graph);
    CHECK (pm_graph_size (graph) == 0);
    size_t order [1], cycle [1], cycle_len = 99;
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == 0);
    pm_graph_destroy (&graph);
    CHECK (graph == NULL);
    pm_graph_destroy (&graph);      //  destroying NULL does nothing
}

static void
test_edges (void)
{
    pm_graph_t *graph = pm_graph_new (70);     //  more than one word a row
    CHECK (!pm_graph_has_edge (graph, 0, 1));
    pm_graph_add_edge (graph, 0, 1);
    pm_graph_add_edge (graph, 0, 1);            //  duplicate kept once
    pm_graph_add_edge (graph, 69, 65);
    pm_graph_add_edge (graph, 3, 64);
    CHECK (pm_graph_has_edge (graph, 0, 1));
    CHECK (!pm_graph_has_edge (graph, 1, 0));
    CHECK (pm_graph_has_edge (graph, 69, 65));
    CHECK (!pm_graph_has_edge (graph, 65, 69));
    CHECK (!pm_graph_has_edge (graph, 69, 1));
    CHECK (pm_graph_has_edge (graph, 3, 64));
    CHECK (!pm_graph_has_edge (graph, 3, 0));
    pm_graph_destroy (&graph);
}

static void
test_order_no_edges (void)
{
    pm_graph_t *graph = pm_graph_new (5);
    size_t order [5], cycle [6], cycle_len;
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == 0);
    for (size_t i = 0; i < 5; i++)
        CHECK (order [i] == i);
    pm_graph_destroy (&graph);
}

static void
test_order_diamond (void)
{
    //  0 = api depends on 1 = cache and 2 = db; both depend on 3 = net.
    pm_graph_t *graph = pm_graph_new (4);
    pm_graph_add_edge (graph, 0, 2);
    pm_graph_add_edge (graph, 0, 1);
    pm_graph_add_edge (graph, 1, 3);
    pm_graph_add_edge (graph, 2, 3);
    size_t order [4], cycle [5], cycle_len;
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == 0);
    CHECK (order [0] == 3);
    CHECK (order [1] == 1);         //  tie between 1 and 2: lowest first
    CHECK (order [2] == 2);
    CHECK (order [3] == 0);
    s_check_valid_order (graph, order);
    pm_graph_destroy (&graph);
}

static void
test_order_ties (void)
{
    //  2 depends on 4; everything else is free.  Lowest free index at
    //  each step gives 0 1 3 4 2: not 4 first (it is not the lowest), and
    //  3 before 2 (3 is free while 2 still waits for 4).
    pm_graph_t *graph = pm_graph_new (5);
    pm_graph_add_edge (graph, 2, 4);
    size_t order [5], cycle [6], cycle_len;
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == 0);
    size_t expect [] = { 0, 1, 3, 4, 2 };
    CHECK (memcmp (order, expect, sizeof expect) == 0);

    //  A node freed late but with a low index goes before higher free
    //  ones: 0 depends on 1; order 1 0 2 3.
    pm_graph_t *chain = pm_graph_new (4);
    pm_graph_add_edge (chain, 0, 1);
    CHECK (pm_graph_order (chain, order, cycle, &cycle_len) == 0);
    size_t expect_chain [] = { 1, 0, 2, 3 };
    CHECK (memcmp (order, expect_chain, sizeof expect_chain) == 0);
    pm_graph_destroy (&chain);
    pm_graph_destroy (&graph);
}

static void
test_cycles (void)
{
    size_t order [6], cycle [7], cycle_len;

    //  Length 1: a self-dependency.
    pm_graph_t *graph = pm_graph_new (3);
    pm_graph_add_edge (graph, 1, 1);
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == 2);
    CHECK (cycle [0] == 1 && cycle [1] == 1);
    pm_graph_destroy (&graph);

    //  Length 2.
    graph = pm_graph_new (3);
    pm_graph_add_edge (graph, 2, 0);
    pm_graph_add_edge (graph, 0, 2);
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == 3);
    CHECK (cycle [0] == 0 && cycle [1] == 2 && cycle [2] == 0);
    pm_graph_destroy (&graph);

    //  Length 3, entered from a node outside it (0 -> 1, then
    //  3 -> 4 -> 2 -> 3): reported from its lowest index, 2.
    graph = pm_graph_new (6);
    pm_graph_add_edge (graph, 0, 3);
    pm_graph_add_edge (graph, 3, 4);
    pm_graph_add_edge (graph, 4, 2);
    pm_graph_add_edge (graph, 2, 3);
    pm_graph_add_edge (graph, 5, 1);
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == 4);
    CHECK (cycle [0] == 2 && cycle [1] == 3 && cycle [2] == 4 && cycle [3] == 2);
    //  Every step of the path is an edge.
    for (size_t k = 0; k + 1 < cycle_len; k++)
        CHECK (pm_graph_has_edge (graph, cycle [k], cycle [k + 1]));
    pm_graph_destroy (&graph);

    //  A cycle among nodes that only become blocked late: 0 and 1 are
    //  placed, then 2 <-> 3 remain.
    graph = pm_graph_new (4);
    pm_graph_add_edge (graph, 1, 0);
    pm_graph_add_edge (graph, 2, 3);
    pm_graph_add_edge (graph, 3, 2);
    pm_graph_add_edge (graph, 3, 1);
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == 3 && cycle [0] == 2 && cycle [1] == 3 && cycle [2] == 2);
    //  The call can be repeated: scratch space is reset each time.
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == 3 && cycle [0] == 2);
    //  cycle and cycle_len may be NULL when only the verdict matters.
    CHECK (pm_graph_order (graph, order, NULL, NULL) == -1);
    pm_graph_destroy (&graph);
}

static void
test_closures (void)
{
    //  0 -> 1 -> 2 -> 3, 4 -> 2, 5 alone, 6 -> 6 (self loop).
    pm_graph_t *graph = pm_graph_new (7);
    pm_graph_add_edge (graph, 0, 1);
    pm_graph_add_edge (graph, 1, 2);
    pm_graph_add_edge (graph, 2, 3);
    pm_graph_add_edge (graph, 4, 2);
    pm_graph_add_edge (graph, 6, 6);

    bool set [7] = { false };
    pm_graph_mark_dependencies (graph, 0, set);
    bool expect_deps_0 [7] = { false, true, true, true, false, false, false };
    CHECK (memcmp (set, expect_deps_0, sizeof set) == 0);

    memset (set, 0, sizeof set);
    pm_graph_mark_dependents (graph, 2, set);
    bool expect_dependents_2 [7] = { true, true, false, false, true, false, false };
    CHECK (memcmp (set, expect_dependents_2, sizeof set) == 0);

    //  Entries already set stay set; the node itself is not added.
    memset (set, 0, sizeof set);
    set [5] = true;
    pm_graph_mark_dependencies (graph, 4, set);
    bool expect_keep [7] = { false, false, true, true, false, true, false };
    CHECK (memcmp (set, expect_keep, sizeof set) == 0);

    //  And a set entry for the node itself is left alone, not cleared.
    memset (set, 0, sizeof set);
    set [3] = true;
    pm_graph_mark_dependents (graph, 3, set);
    bool expect_self [7] = { true, true, true, true, true, false, false };
    CHECK (memcmp (set, expect_self, sizeof set) == 0);

    //  A node in a cycle does not mark itself.
    memset (set, 0, sizeof set);
    pm_graph_mark_dependencies (graph, 6, set);
    pm_graph_mark_dependents (graph, 6, set);
    for (size_t i = 0; i < 7; i++)
        CHECK (!set [i]);

    //  Nothing depends on 0; 3 depends on nothing.
    memset (set, 0, sizeof set);
    pm_graph_mark_dependents (graph, 0, set);
    pm_graph_mark_dependencies (graph, 3, set);
    for (size_t i = 0; i < 7; i++)
        CHECK (!set [i]);
    pm_graph_destroy (&graph);
}

static void
test_large (void)
{
    //  A reversed chain of 3,000: node i depends on i + 1, so the order is
    //  the reverse of the indexes, and the closure of 0 is everything.
    size_t n = 3000;
    pm_graph_t *graph = pm_graph_new (n);
    CHECK (graph);
    for (size_t i = 0; i + 1 < n; i++)
        pm_graph_add_edge (graph, i, i + 1);
    size_t *order = malloc (n * sizeof (size_t));
    size_t *cycle = malloc ((n + 1) * sizeof (size_t));
    size_t cycle_len;
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK (order [i] == n - 1 - i);
    bool *set = calloc (n, sizeof (bool));
    pm_graph_mark_dependencies (graph, 0, set);
    CHECK (!set [0]);
    for (size_t i = 1; i < n; i++)
        CHECK (set [i]);

    //  Close it: the whole chain is one cycle of n nodes.
    pm_graph_add_edge (graph, n - 1, 0);
    CHECK (pm_graph_order (graph, order, cycle, &cycle_len) == -1);
    CHECK (cycle_len == n + 1);
    CHECK (cycle [0] == 0 && cycle [n] == 0 && cycle [1] == 1);
    free (set);
    free (cycle);
    free (order);
    pm_graph_destroy (&graph);
}

int
main (void)
{
    test_empty ();
    test_edges ();
    test_order_no_edges ();
    test_order_diamond ();
    test_order_ties ();
    test_cycles ();
    test_closures ();
    test_large ();
    printf ("test_graph: OK\n");
    return 0;
}
