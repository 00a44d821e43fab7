/*  waiter.c - the judgement of a parked request (waiter.h) */
#include "waiter.h"

#include <stdio.h>
#include <string.h>

static bool
s_active (pm_state_t state)
{
    return state == PM_STATE_WAITING || state == PM_STATE_STARTING
        || state == PM_STATE_RUNNING || state == PM_STATE_STOPPING
        || state == PM_STATE_BACKOFF;
}

//  `wait`: the wanted state, on its way, or out of reach without a
//  command (a service that failed for good never runs again by itself).
static pm_outcome_t
s_wait_outcome (const pm_waiter_target_t *target, pm_state_t want)
{
    if (target->state == want
    ||  (want == PM_STATE_FAILED && target->state == PM_STATE_BACKOFF))
        return PM_OUTCOME_OK;
    if (target->stop_queued || target->start_after_stop
    ||  s_active (target->state))
        return PM_OUTCOME_PENDING;
    return PM_OUTCOME_FAIL;
}

pm_outcome_t
pm_waiter_outcome (const pm_want_t *want, const pm_waiter_target_t *target)
{
    if (want->cmd == PM_CMD_WAIT)
        return s_wait_outcome (target, want->wait_for);
    if (target->stop_queued || target->start_after_stop)
        return PM_OUTCOME_PENDING;
    if (want->wait == PM_WAIT_STOPPED)
        return s_active (target->state) ? PM_OUTCOME_PENDING : PM_OUTCOME_OK;
    //  A restart is done by a run newer than the request only.
    bool fresh = want->cmd != PM_CMD_RESTART
              || target->spawns > target->spawns0;
    switch (target->state) {
        case PM_STATE_STARTING:
            return want->wait == PM_WAIT_STARTED && fresh ? PM_OUTCOME_OK
                                                          : PM_OUTCOME_PENDING;
        case PM_STATE_RUNNING:
        case PM_STATE_COMPLETED:
            return fresh ? PM_OUTCOME_OK : PM_OUTCOME_PENDING;
        case PM_STATE_WAITING:
        case PM_STATE_STOPPING:
            return PM_OUTCOME_PENDING;
        default:                //  failed, stopped, inactive, backoff
            return PM_OUTCOME_FAIL;
    }
}

bool
pm_waiter_done (const pm_want_t *want, pm_waiter_get_fn *get, const void *arg,
                size_t count)
{
    for (size_t k = 0; k < count; k++) {
        pm_waiter_target_t target;
        memset (&target, 0, sizeof target);
        get (arg, k, &target);
        if (pm_waiter_outcome (want, &target) == PM_OUTCOME_PENDING)
            return false;
    }
    return true;
}

static const char *
s_verb (pm_cmd_t cmd)
{
    return cmd == PM_CMD_STOP ? "stop"
         : cmd == PM_CMD_RESTART ? "restart"
         : cmd == PM_CMD_WAIT ? "wait for"
         : "start";
}

//  Why target is not done, for the reply (empty when it is).
static void
s_target_error (const pm_want_t *want, const pm_waiter_target_t *target,
                pm_outcome_t outcome, pm_err_t code, char *error, size_t size)
{
    const char *why = target->error;
    const char *state = pm_state_name (target->state);
    *error = 0;
    if (outcome == PM_OUTCOME_FAIL && want->cmd == PM_CMD_WAIT)
        snprintf (error, size, "is %s%s%s, and cannot become %s without a "
                  "command", state, why ? ": " : "", why ? why : "",
                  pm_state_name (want->wait_for));
    else
    if (outcome == PM_OUTCOME_FAIL)
        snprintf (error, size, "%s", why ? why
                  : target->state == PM_STATE_STOPPED
                  ? "stopped before it was up" : state);
    else
    if (outcome == PM_OUTCOME_PENDING && code == PM_ERR_TIMEOUT)
        snprintf (error, size, "still %s after %gs", state, want->timeout);
    else
    if (outcome == PM_OUTCOME_PENDING)
        snprintf (error, size, "agent shutting down while %s", state);
}

pm_reply_t *
pm_waiter_reply (const pm_want_t *want, pm_waiter_get_fn *get,
                 const void *arg, size_t count, pm_err_t code)
{
    pm_reply_t *reply = pm_reply_new (want->id);
    reply->ok = true;
    size_t failed = 0;
    char first [PM_TEXT_MAX] = "";
    for (size_t k = 0; k < count; k++) {
        pm_waiter_target_t target;
        memset (&target, 0, sizeof target);
        get (arg, k, &target);
        pm_outcome_t outcome = pm_waiter_outcome (want, &target);
        char error [1024];
        s_target_error (want, &target, outcome, code, error, sizeof error);
        bool ok = outcome == PM_OUTCOME_OK;
        if (!ok && failed++ == 0)
            snprintf (first, sizeof first, "%s: %s", target.name, error);
        pm_reply_add_result (reply, target.name, ok, target.state,
                             target.note, ok ? NULL : error);
    }
    if (failed) {
        pm_err_t err = code != PM_OK ? code : PM_ERR_FAILED;
        if (failed == 1)
            pm_reply_set_error (reply, err, "cannot %s %s", s_verb (want->cmd),
                                first);
        else
            pm_reply_set_error (reply, err, "cannot %s %zu of %zu services; "
                                "first %s", s_verb (want->cmd), failed, count,
                                first);
    }
    return reply;
}

pm_reply_t *
pm_waiter_reply_now (const pm_want_t *want, pm_waiter_get_fn *get,
                     const void *arg, size_t count)
{
    pm_reply_t *reply = pm_reply_new (want->id);
    reply->ok = true;
    for (size_t k = 0; k < count; k++) {
        pm_waiter_target_t target;
        memset (&target, 0, sizeof target);
        get (arg, k, &target);
        bool failed = pm_waiter_outcome (want, &target) == PM_OUTCOME_FAIL
                   && want->cmd != PM_CMD_STOP;
        pm_reply_add_result (reply, target.name, !failed, target.state,
                             target.note, failed ? target.error : NULL);
        if (failed && reply->ok)
            pm_reply_set_error (reply, PM_ERR_FAILED, "cannot %s %s: %s",
                                s_verb (want->cmd), target.name,
                                target.error ? target.error : "failed");
    }
    return reply;
}
