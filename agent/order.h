/*  order.h - the ordering rules between services, as pure decisions

    Owns: which service may start now, which can never start (a
    dependency that will not meet its condition without a command), which
    services a start must bring up first, and which stop must wait for a
    dependent to go down first (live services by the graph, services
    removed by a reload by the names in the config they came from).

    Leaves to others: acting on the answers (the supervisor spawns, fails
    and stops), the state machine of each service (service), the graph
    itself (graph).

    Every function reads a view and changes nothing: no system call, no
    clock, no entry type.  The view is a getter over the caller's own
    records, so the rules are tested on plain arrays (tests/test_order.c).

    The rules:
    - A dependency is met when its state fits the condition: `started`
      by starting, running or completed; `ready` by running; `completed`
      by completed.  It can never be met (the dependent fails at once)
      when it is failed, stopped or inactive, or completed when `ready`
      was asked.  A dependency queued to stop, or to start again, is never
      met: a restart's dependent must not start against the old instance.
    - A start brings up first whatever it depends on that is not up (or
      not up for good: queued to stop), dependencies before dependents.
    - A stop waits while a dependent is queued to stop or stopping:
      dependents go down first.  A removed service waits in the same way
      for the removed services that depended on it by name.
*/
#ifndef PM_ORDER_H
#define PM_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "graph.h"
#include "pm_proto.h"

/*  What the rules see of one service. */
typedef struct {
    const char *name;
    pm_state_t state;
    bool stop_queued;         /* to be stopped once its dependents are down */
    bool start_after_stop;    /* to be started again once down */
    bool retired;             /* removed by a reload: never started again */
    const char *error;        /* its last error, or NULL */
    const pm_config_dep_t *deps;  /* its dependencies; for a live service
                                     their index is a live service's */
    size_t deps_count;
} pm_order_item_t;

/*  Fills item for service index (0 .. total - 1); item's pointers are
    borrowed until the caller changes that service. */
typedef void (pm_order_get_fn) (const void *arg, size_t index,
                                pm_order_item_t *item);

/*  A read-only view of all services: live ones are 0 .. count - 1 (their
    config indexes), removed ones still going down are count .. total - 1. */
typedef struct {
    pm_order_get_fn *get;
    const void *arg;
    size_t count;
    size_t total;
    const pm_graph_t *graph;  /* dependent -> dependency, live services */
} pm_order_view_t;

typedef enum {
    PM_DEPS_MET = 0,          /* every dependency meets its condition */
    PM_DEPS_PENDING,          /* not yet: wait */
    PM_DEPS_NEVER             /* one cannot without a command: fail */
} pm_deps_t;

/*  How the dependencies of live service index stand.  For NEVER, why
    says which one and why ("dependency 'db' failed: exited with code 1"). */
pm_deps_t pm_order_deps (const pm_order_view_t *view, size_t index,
                         char *why, size_t size);

/*  True if a service in item's situation must be started for a dependent
    that needs cond of it. */
bool pm_order_needs_start (const pm_order_item_t *item, pm_cond_t cond);

/*  The services a start of live service index asks to start, in the order
    to ask: every dependency (transitively) that needs a start, each
    before what depends on it, each once, then index itself.  plan holds
    room for view->count indexes; returns how many were written (0 for a
    retired service, which never starts again). */
size_t pm_order_start_plan (const pm_order_view_t *view, size_t index,
                            size_t *plan);

/*  True if service index (live or removed) is queued to stop but must
    wait for a dependent to go down first. */
bool pm_order_stop_blocked (const pm_order_view_t *view, size_t index);

#endif
