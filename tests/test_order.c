/*  test_order.c - the ordering rules (agent/order.c) on plain arrays

    No system call, no clock, no supervisor: each case builds a view of a
    few services (state, flags, dependencies) and checks what the rules
    answer.  Covered: every dependency condition against every state
    (met, pending, never, with the reason), queued stops and restarts
    never meeting a dependency, the start plan (deps first, each once,
    diamond and chain, what needs no start, retired services), and stops
    blocked by live dependents through the graph and by removed ones by
    name.
*/
#include "order.h"
#include "check.h"

#include <string.h>

#define MAX 8

typedef struct {
    pm_order_item_t items [MAX];
    pm_config_dep_t deps [MAX][MAX];
    size_t count;             /* live */
    size_t total;
    pm_graph_t *graph;
} fixture_t;

static void
s_get (const void *arg, size_t index, pm_order_item_t *item)
{
    const fixture_t *f = (const fixture_t *) arg;
    *item = f->items [index];
}

static const char *s_names [MAX] = { "a", "b", "c", "d", "e", "f", "g", "h" };

//  total services, the first count live, all inactive, no dependencies.
static void
s_fixture (fixture_t *f, size_t count, size_t total)
{
    memset (f, 0, sizeof *f);
    f->count = count;
    f->total = total;
    f->graph = pm_graph_new (count);
    for (size_t i = 0; i < total; i++) {
        f->items [i].name = s_names [i];
        f->items [i].state = PM_STATE_INACTIVE;
        f->items [i].deps = f->deps [i];
        f->items [i].retired = i >= count;
    }
}

//  from depends on to (cond); the graph edge only between live services.
static void
s_dep (fixture_t *f, size_t from, size_t to, pm_cond_t cond)
{
    pm_order_item_t *item = &f->items [from];
    pm_config_dep_t *dep = &f->deps [from][item->deps_count++];
    dep->name = (char *) s_names [to];
    dep->cond = cond;
    dep->index = to;
    if (from < f->count && to < f->count)
        pm_graph_add_edge (f->graph, from, to);
}

static pm_order_view_t
s_view (fixture_t *f)
{
    pm_order_view_t view = { s_get, f, f->count, f->total, f->graph };
    return view;
}

static void
s_done (fixture_t *f)
{
    pm_graph_destroy (&f->graph);
}

//  The whole condition x state table, written out independently of
//  order.c: M met, P pending, N never.
static void
test_conditions (void)
{
    static const struct {
        pm_state_t state;
        char started, ready, completed;
    } table [] = {
        { PM_STATE_INACTIVE,  'N', 'N', 'N' },
        { PM_STATE_WAITING,   'P', 'P', 'P' },
        { PM_STATE_STARTING,  'M', 'P', 'P' },
        { PM_STATE_RUNNING,   'M', 'M', 'P' },
        { PM_STATE_STOPPING,  'P', 'P', 'P' },
        { PM_STATE_STOPPED,   'N', 'N', 'N' },
        { PM_STATE_COMPLETED, 'M', 'N', 'M' },
        { PM_STATE_FAILED,    'N', 'N', 'N' },
        { PM_STATE_BACKOFF,   'P', 'P', 'P' },
    };
    static const pm_cond_t conds [3] = {
        PM_COND_STARTED, PM_COND_READY, PM_COND_COMPLETED
    };
    for (size_t t = 0; t < sizeof table / sizeof table [0]; t++)
        for (int c = 0; c < 3; c++) {
            fixture_t f;
            s_fixture (&f, 2, 2);
            f.items [0].state = PM_STATE_WAITING;
            f.items [1].state = table [t].state;
            s_dep (&f, 0, 1, conds [c]);
            pm_order_view_t view = s_view (&f);
            char why [256] = "";
            pm_deps_t got = pm_order_deps (&view, 0, why, sizeof why);
            char want = c == 0 ? table [t].started
                      : c == 1 ? table [t].ready : table [t].completed;
            pm_deps_t expect = want == 'M' ? PM_DEPS_MET
                             : want == 'P' ? PM_DEPS_PENDING : PM_DEPS_NEVER;
            if (got != expect)
                fprintf (stderr, "state %s cond %d: got %d, want %c\n",
                         pm_state_name (table [t].state), c, got, want);
            CHECK (got == expect);
            if (expect == PM_DEPS_NEVER)
                CHECK (strstr (why, "dependency 'b'") == why);
            //  Queued to stop or to start again: never met, never "never".
            f.items [1].stop_queued = true;
            CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_PENDING);
            f.items [1].stop_queued = false;
            f.items [1].start_after_stop = true;
            CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_PENDING);
            s_done (&f);
        }
}

static void
test_reasons (void)
{
    fixture_t f;
    s_fixture (&f, 2, 2);
    s_dep (&f, 0, 1, PM_COND_READY);
    pm_order_view_t view = s_view (&f);
    char why [256];
    f.items [1].state = PM_STATE_FAILED;
    f.items [1].error = "exited with code 3";
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_NEVER);
    CHECK (strcmp (why, "dependency 'b' failed: exited with code 3") == 0);
    f.items [1].state = PM_STATE_COMPLETED;
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_NEVER);
    CHECK (strcmp (why, "dependency 'b' completed instead of becoming ready")
           == 0);
    f.items [1].state = PM_STATE_STOPPED;
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_NEVER);
    CHECK (strcmp (why, "dependency 'b' is stopped") == 0);
    //  No dependencies: met.
    CHECK (pm_order_deps (&view, 1, why, sizeof why) == PM_DEPS_MET);
    //  One never among pending ones: never wins; all met: met.
    s_done (&f);
    s_fixture (&f, 3, 3);
    s_dep (&f, 0, 1, PM_COND_STARTED);
    s_dep (&f, 0, 2, PM_COND_STARTED);
    view = s_view (&f);
    f.items [1].state = PM_STATE_WAITING;
    f.items [2].state = PM_STATE_INACTIVE;
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_NEVER);
    CHECK (strcmp (why, "dependency 'c' is inactive") == 0);
    f.items [2].state = PM_STATE_RUNNING;
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_PENDING);
    f.items [1].state = PM_STATE_STARTING;
    CHECK (pm_order_deps (&view, 0, why, sizeof why) == PM_DEPS_MET);
    s_done (&f);
}

static void
test_needs_start (void)
{
    pm_order_item_t item;
    memset (&item, 0, sizeof item);
    for (int s = 0; s < PM_STATE_COUNT_; s++) {
        item.state = (pm_state_t) s;
        item.stop_queued = false;
        item.start_after_stop = false;
        bool up = s == PM_STATE_WAITING || s == PM_STATE_STARTING
               || s == PM_STATE_RUNNING;
        CHECK (pm_order_needs_start (&item, PM_COND_STARTED) == !up
               || s == PM_STATE_COMPLETED);
        //  Completed: enough for started/completed, not for ready.
        if (s == PM_STATE_COMPLETED) {
            CHECK (!pm_order_needs_start (&item, PM_COND_STARTED));
            CHECK (!pm_order_needs_start (&item, PM_COND_COMPLETED));
            CHECK (pm_order_needs_start (&item, PM_COND_READY));
        }
        //  Up but queued to stop: it must start again.
        item.stop_queued = true;
        if (up)
            CHECK (pm_order_needs_start (&item, PM_COND_READY));
        //  Already to start again once down: nothing more to ask.
        item.start_after_stop = true;
        CHECK (!pm_order_needs_start (&item, PM_COND_READY));
    }
}

static void
test_start_plan (void)
{
    //  Diamond: a -> b, a -> c, b -> d, c -> d.  d once, first.
    fixture_t f;
    s_fixture (&f, 4, 4);
    s_dep (&f, 0, 1, PM_COND_READY);
    s_dep (&f, 0, 2, PM_COND_READY);
    s_dep (&f, 1, 3, PM_COND_READY);
    s_dep (&f, 2, 3, PM_COND_STARTED);
    pm_order_view_t view = s_view (&f);
    size_t plan [MAX];
    size_t n = pm_order_start_plan (&view, 0, plan);
    CHECK (n == 4);
    CHECK (plan [0] == 3 && plan [1] == 1 && plan [2] == 2 && plan [3] == 0);
    //  What is up needs no start; the target is always asked.
    f.items [3].state = PM_STATE_RUNNING;
    f.items [1].state = PM_STATE_RUNNING;
    f.items [0].state = PM_STATE_RUNNING;
    n = pm_order_start_plan (&view, 0, plan);
    CHECK (n == 2 && plan [0] == 2 && plan [1] == 0);
    //  Up but queued to stop (a restart under way): started again, and
    //  so is what it needs that is going down too.
    f.items [1].stop_queued = true;
    f.items [3].stop_queued = true;
    n = pm_order_start_plan (&view, 0, plan);
    CHECK (n == 4 && plan [0] == 3 && plan [1] == 1 && plan [2] == 2
           && plan [3] == 0);
    //  Planned from a leaf: just itself.
    n = pm_order_start_plan (&view, 3, plan);
    CHECK (n == 1 && plan [0] == 3);
    s_done (&f);

    //  A chain e -> d -> c -> b -> a: dependencies first, in order.
    s_fixture (&f, 5, 5);
    for (size_t i = 4; i > 0; i--)
        s_dep (&f, i, i - 1, PM_COND_STARTED);
    view = s_view (&f);
    n = pm_order_start_plan (&view, 4, plan);
    CHECK (n == 5);
    for (size_t i = 0; i < n; i++)
        CHECK (plan [i] == i);
    //  A completed one-shot is enough for `started`, not for `ready`.
    f.items [2].state = PM_STATE_COMPLETED;
    n = pm_order_start_plan (&view, 4, plan);
    CHECK (n == 2 && plan [0] == 3 && plan [1] == 4);
    f.deps [3][0].cond = PM_COND_READY;
    n = pm_order_start_plan (&view, 4, plan);
    CHECK (n == 5);
    s_done (&f);

    //  A retired service never starts again.
    s_fixture (&f, 1, 2);
    view = s_view (&f);
    CHECK (pm_order_start_plan (&view, 1, plan) == 0);
    CHECK (pm_order_start_plan (&view, 0, plan) == 1);
    s_done (&f);
}

static void
test_stop_blocked (void)
{
    //  b and c depend on a; d is unrelated.
    fixture_t f;
    s_fixture (&f, 4, 4);
    s_dep (&f, 1, 0, PM_COND_READY);
    s_dep (&f, 2, 0, PM_COND_STARTED);
    pm_order_view_t view = s_view (&f);
    for (size_t i = 0; i < 4; i++) {
        f.items [i].state = PM_STATE_RUNNING;
        f.items [i].stop_queued = true;
    }
    CHECK (pm_order_stop_blocked (&view, 0));     //  b and c first
    CHECK (!pm_order_stop_blocked (&view, 1));
    CHECK (!pm_order_stop_blocked (&view, 2));
    CHECK (!pm_order_stop_blocked (&view, 3));
    f.items [1].stop_queued = false;
    f.items [1].state = PM_STATE_STOPPING;
    CHECK (pm_order_stop_blocked (&view, 0));     //  b is not down yet
    f.items [1].state = PM_STATE_STOPPED;
    CHECK (pm_order_stop_blocked (&view, 0));     //  c still queued
    f.items [2].stop_queued = false;
    f.items [2].state = PM_STATE_STOPPED;
    CHECK (!pm_order_stop_blocked (&view, 0));
    //  A dependent that stays up does not block (stop without
    //  dependents leaves it running).
    f.items [2].state = PM_STATE_RUNNING;
    CHECK (!pm_order_stop_blocked (&view, 0));
    s_done (&f);

    //  Removed services (index 1..3, count 1): y depends on x by name.
    s_fixture (&f, 1, 4);
    f.items [1].name = "x";
    f.items [2].name = "y";
    f.items [3].name = "z";
    pm_config_dep_t *dep = &f.deps [2][f.items [2].deps_count++];
    dep->name = "x";
    dep->index = 7;             //  an index into a config gone by: unused
    view = s_view (&f);
    for (size_t i = 1; i < 4; i++) {
        f.items [i].state = PM_STATE_RUNNING;
        f.items [i].stop_queued = true;
    }
    CHECK (pm_order_stop_blocked (&view, 1));
    CHECK (!pm_order_stop_blocked (&view, 2));
    CHECK (!pm_order_stop_blocked (&view, 3));
    f.items [2].stop_queued = false;
    f.items [2].state = PM_STATE_STOPPING;
    CHECK (pm_order_stop_blocked (&view, 1));
    f.items [2].state = PM_STATE_STOPPED;
    CHECK (!pm_order_stop_blocked (&view, 1));
    //  The live service is blocked by live dependents only.
    f.items [0].stop_queued = true;
    CHECK (!pm_order_stop_blocked (&view, 0));
    s_done (&f);
}

int
main (void)
{
    test_conditions ();
    test_reasons ();
    test_needs_start ();
    test_start_plan ();
    test_stop_blocked ();
    return check_report ("test_order");
}
