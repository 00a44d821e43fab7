/*  order.c - the ordering rules between services (order.h)

    Pure: every answer is read off the view.  The supervisor asks, then
    does what the answer says.
*/
#include "order.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_get (const pm_order_view_t *view, size_t index, pm_order_item_t *item)
{
    assert (index < view->total);
    memset (item, 0, sizeof *item);
    view->get (view->arg, index, item);
}

//  Whether one dependency in state meets cond now (met), or never can
//  without a command (never).
static void
s_judge (pm_state_t state, pm_cond_t cond, bool *met, bool *never)
{
    *met = *never = false;
    switch (state) {
        case PM_STATE_STARTING:
            *met = cond == PM_COND_STARTED;
            break;
        case PM_STATE_RUNNING:
            *met = cond != PM_COND_COMPLETED;
            break;
        case PM_STATE_COMPLETED:
            *met = cond != PM_COND_READY;
            *never = !*met;
            break;
        case PM_STATE_FAILED:
        case PM_STATE_STOPPED:
        case PM_STATE_INACTIVE:
            *never = true;
            break;
        default:                //  waiting, stopping, backoff: on its way
            break;
    }
}

pm_deps_t
pm_order_deps (const pm_order_view_t *view, size_t index, char *why,
               size_t size)
{
    pm_order_item_t item;
    s_get (view, index, &item);
    pm_deps_t result = PM_DEPS_MET;
    for (size_t d = 0; d < item.deps_count; d++) {
        const pm_config_dep_t *dep = &item.deps [d];
        pm_order_item_t other;
        s_get (view, dep->index, &other);
        if (other.stop_queued || other.start_after_stop) {
            result = PM_DEPS_PENDING;
            continue;
        }
        bool met, never;
        s_judge (other.state, dep->cond, &met, &never);
        if (never) {
            if (other.state == PM_STATE_FAILED && other.error)
                snprintf (why, size, "dependency '%s' failed: %s", dep->name,
                          other.error);
            else
            if (other.state == PM_STATE_COMPLETED)
                snprintf (why, size, "dependency '%s' completed instead of "
                          "becoming ready", dep->name);
            else
                snprintf (why, size, "dependency '%s' is %s", dep->name,
                          pm_state_name (other.state));
            return PM_DEPS_NEVER;
        }
        if (!met)
            result = PM_DEPS_PENDING;
    }
    return result;
}

bool
pm_order_needs_start (const pm_order_item_t *item, pm_cond_t cond)
{
    if (item->start_after_stop)
        return false;           //  it will start once down
    switch (item->state) {
        case PM_STATE_WAITING:
        case PM_STATE_STARTING:
        case PM_STATE_RUNNING:
            return item->stop_queued;
        case PM_STATE_COMPLETED:
            return cond == PM_COND_READY;
        default:
            return true;
    }
}

static size_t
s_plan (const pm_order_view_t *view, size_t index, bool *planned,
        size_t *plan, size_t count)
{
    pm_order_item_t item;
    s_get (view, index, &item);
    planned [index] = true;
    for (size_t d = 0; d < item.deps_count; d++) {
        size_t dep = item.deps [d].index;
        if (planned [dep])
            continue;
        pm_order_item_t other;
        s_get (view, dep, &other);
        if (pm_order_needs_start (&other, item.deps [d].cond))
            count = s_plan (view, dep, planned, plan, count);
    }
    plan [count++] = index;
    return count;
}

size_t
pm_order_start_plan (const pm_order_view_t *view, size_t index, size_t *plan)
{
    pm_order_item_t item;
    s_get (view, index, &item);
    //  A removed service never starts again; its dependency indexes belong
    //  to a config gone by.
    if (item.retired || index >= view->count)
        return 0;
    bool *planned = calloc (view->count + 1, sizeof *planned);
    assert (planned);
    size_t count = s_plan (view, index, planned, plan, 0);
    free (planned);
    return count;
}

static bool
s_going_down (const pm_order_item_t *item)
{
    return item->stop_queued || item->state == PM_STATE_STOPPING;
}

bool
pm_order_stop_blocked (const pm_order_view_t *view, size_t index)
{
    pm_order_item_t item;
    s_get (view, index, &item);
    if (index < view->count) {
        for (size_t i = 0; i < view->count; i++) {
            if (i == index || !pm_graph_has_edge (view->graph, i, index))
                continue;
            pm_order_item_t dependent;
            s_get (view, i, &dependent);
            if (s_going_down (&dependent))
                return true;
        }
        return false;
    }
    //  Removed: its dependents are the removed services that named it in
    //  the config they came from.
    for (size_t i = view->count; i < view->total; i++) {
        if (i == index)
            continue;
        pm_order_item_t other;
        s_get (view, i, &other);
        bool depends = false;
        for (size_t d = 0; d < other.deps_count && !depends; d++)
            depends = strcmp (other.deps [d].name, item.name) == 0;
        if (depends && s_going_down (&other))
            return true;
    }
    return false;
}
