/*  policy.c - the restart policy of one service (policy.h) */
#include "policy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pm_policy_t {
    unsigned consecutive;     /* restarts in a row since the last reset */
    unsigned max_restarts;    /* size of history */
    double *history;          /* times of the restarts within the window */
    size_t history_count;
};

pm_policy_t *
pm_policy_new (unsigned max_restarts)
{
    pm_policy_t *self = calloc (1, sizeof *self);
    assert (self);
    self->max_restarts = max_restarts;
    self->history = calloc (max_restarts + 1, sizeof *self->history);
    assert (self->history);
    return self;
}

void
pm_policy_destroy (pm_policy_t **self_p)
{
    pm_policy_t *self = *self_p;
    if (!self)
        return;
    free (self->history);
    free (self);
    *self_p = NULL;
}

void
pm_policy_resize (pm_policy_t *self, unsigned max_restarts)
{
    if (max_restarts == self->max_restarts)
        return;
    free (self->history);
    self->history = calloc (max_restarts + 1, sizeof *self->history);
    assert (self->history);
    self->max_restarts = max_restarts;
    self->history_count = 0;
}

void
pm_policy_reset (pm_policy_t *self)
{
    self->consecutive = 0;
    self->history_count = 0;
}

unsigned
pm_policy_attempts (const pm_policy_t *self)
{
    return self->consecutive;
}

void
pm_policy_decide (pm_policy_t *self, const pm_config_service_t *spec,
                  pm_state_t state, double started_at,
                  const char *last_error, double now,
                  pm_policy_decision_t *decision)
{
    memset (decision, 0, sizeof *decision);
    bool applies = (state == PM_STATE_FAILED && spec->restart != PM_RESTART_NO)
                || (state == PM_STATE_COMPLETED
                    && spec->restart == PM_RESTART_ALWAYS);
    if (!applies)
        return;
    bool healthy = started_at > 0 && now - started_at >= spec->min_uptime;
    if (healthy)
        pm_policy_reset (self);
    //  Restarts older than the window no longer count.
    size_t kept = 0;
    for (size_t i = 0; i < self->history_count; i++)
        if (self->history [i] > now - spec->restart_window)
            self->history [kept++] = self->history [i];
    self->history_count = kept;
    if (spec->max_restarts && self->history_count >= spec->max_restarts) {
        decision->verdict = PM_POLICY_GIVE_UP;
        snprintf (decision->reason, sizeof decision->reason,
                  "gave up after %u restarts within %g s; last: %s",
                  spec->max_restarts, spec->restart_window,
                  last_error ? last_error : "exited with code 0");
        return;
    }
    if (healthy) {
        //  Not part of a loop: a quick crash after it backs off from
        //  backoff_initial.
        self->consecutive = 0;
        if (spec->max_restarts)
            self->history [self->history_count++] = now;
        decision->verdict = PM_POLICY_RESTART;
        decision->attempt = 1;
        return;
    }
    double delay = spec->backoff_initial;
    for (unsigned i = 0; i < self->consecutive && delay < spec->backoff_max;
         i++)
        delay *= 2;
    if (delay > spec->backoff_max)
        delay = spec->backoff_max;
    self->consecutive++;
    if (spec->max_restarts && self->history_count < self->max_restarts)
        self->history [self->history_count++] = now;
    decision->verdict = PM_POLICY_BACKOFF;
    decision->delay = delay;
    decision->attempt = self->consecutive;
}
