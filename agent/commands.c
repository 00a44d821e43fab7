/*  commands.c - commands and parked requests of the supervisor

    Owns: what each command does to the services (start, stop, restart,
    signal, wait, status, logs, shutdown), and the requests parked until
    their condition holds, their timeouts, and their replies.  A parked
    request is re-judged every time the supervisor settles; it is answered
    when every target is done (reached, or can no longer get there), when
    its timeout passes, or at shutdown.
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "logring.h"
#include "timer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    s_PENDING = 0,
    s_OK,
    s_FAIL
} s_outcome_t;

/* ------------------------------------------------------------------ */
/*  Parked requests                                                    */
/* ------------------------------------------------------------------ */

void
pm_sup_waiter_destroy (pm_waiter_t **self_p)
{
    pm_waiter_t *self = *self_p;
    if (!self)
        return;
    pm_timer_end (self->sup->loop, &self->timer);
    if (self->token && self->sup->free_fn)
        self->sup->free_fn (self->sup->reply_arg, self->token);
    for (size_t i = 0; i < self->count; i++)
        free (self->notes [i]);
    free (self->notes);
    free (self->targets);
    free (self->spawns0);
    pm_reply_destroy (&self->extra);
    free (self);
    *self_p = NULL;
}

//  `wait`: the wanted state, on its way, or out of reach without a
//  command (a service that failed for good never runs again by itself).
static s_outcome_t
s_wait_outcome (pm_entry_t *entry, pm_state_t want)
{
    pm_state_t state = pm_service_state (entry->svc);
    if (state == want || (want == PM_STATE_FAILED && state == PM_STATE_BACKOFF))
        return s_OK;
    if (entry->stop_queued || entry->start_after_stop
    ||  pm_service_is_active (entry->svc))
        return s_PENDING;
    return s_FAIL;
}

static s_outcome_t
s_target_outcome (pm_supervisor_t *self, pm_waiter_t *waiter, size_t k)
{
    pm_entry_t *entry = self->entries [waiter->targets [k]];
    if (waiter->cmd == PM_CMD_WAIT)
        return s_wait_outcome (entry, waiter->wait_for);
    if (entry->stop_queued || entry->start_after_stop)
        return s_PENDING;
    pm_state_t state = pm_service_state (entry->svc);
    if (waiter->wait == PM_WAIT_STOPPED)
        return pm_service_is_active (entry->svc) ? s_PENDING : s_OK;
    bool fresh = waiter->cmd != PM_CMD_RESTART
              || pm_service_spawns (entry->svc) > waiter->spawns0 [k];
    switch (state) {
        case PM_STATE_STARTING:
            return waiter->wait == PM_WAIT_STARTED && fresh ? s_OK : s_PENDING;
        case PM_STATE_RUNNING:
        case PM_STATE_COMPLETED:
            return fresh ? s_OK : s_PENDING;
        case PM_STATE_WAITING:
        case PM_STATE_STOPPING:
            return s_PENDING;
        default:                //  failed, stopped, inactive, backoff
            return s_FAIL;
    }
}

void
pm_sup_answer (pm_supervisor_t *self, void **token_p, const pm_reply_t *reply)
{
    if (*token_p && self->reply_fn)
        self->reply_fn (self->reply_arg, *token_p, reply);
    *token_p = NULL;
}

//  A reload's lists go into every answer it gets.
static void
s_add_extra (pm_reply_t *reply, const pm_waiter_t *waiter)
{
    if (!waiter->extra || !waiter->extra->has_reload)
        return;
    reply->has_reload = true;
    for (int list = 0; list < PM_RELOAD_COUNT_; list++)
        for (size_t i = 0; i < waiter->extra->reload_count [list]; i++)
            pm_reply_add_reload (reply, (pm_reload_list_t) list,
                                 waiter->extra->reload [list][i]);
}

static const char *
s_verb (pm_cmd_t cmd)
{
    return cmd == PM_CMD_STOP ? "stop"
         : cmd == PM_CMD_RESTART ? "restart"
         : cmd == PM_CMD_WAIT ? "wait for"
         : "start";
}

//  Builds and sends the reply of waiter.  error_code PM_OK means "judge
//  from the outcomes"; anything else (timeout, shutting-down) is the
//  error for every target not done.
void
pm_sup_waiter_reply (pm_supervisor_t *self, pm_waiter_t *waiter, pm_err_t code)
{
    pm_reply_t *reply = pm_reply_new (waiter->id);
    reply->ok = true;
    size_t failed = 0;
    char first [PM_TEXT_MAX] = "";
    for (size_t k = 0; k < waiter->count; k++) {
        pm_entry_t *entry = self->entries [waiter->targets [k]];
        s_outcome_t outcome = s_target_outcome (self, waiter, k);
        pm_state_t state = pm_service_state (entry->svc);
        char error [1024] = "";
        if (outcome == s_FAIL && waiter->cmd == PM_CMD_WAIT) {
            const char *why = pm_service_error (entry->svc);
            snprintf (error, sizeof error, "is %s%s%s, and cannot become %s "
                      "without a command", pm_state_name (state),
                      why ? ": " : "", why ? why : "",
                      pm_state_name (waiter->wait_for));
        }
        else
        if (outcome == s_FAIL) {
            const char *why = pm_service_error (entry->svc);
            snprintf (error, sizeof error, "%s", why ? why
                      : state == PM_STATE_STOPPED ? "stopped before it was up"
                      : pm_state_name (state));
        }
        else
        if (outcome == s_PENDING) {
            if (code == PM_ERR_TIMEOUT)
                snprintf (error, sizeof error, "still %s after %gs",
                          pm_state_name (state), waiter->timeout);
            else
                snprintf (error, sizeof error, "agent shutting down while %s",
                          pm_state_name (state));
        }
        bool ok = outcome == s_OK;
        if (!ok && failed++ == 0)
            snprintf (first, sizeof first, "%s: %s",
                      pm_service_name (entry->svc), error);
        pm_reply_add_result (reply, pm_service_name (entry->svc), ok, state,
                             waiter->notes [k], ok ? NULL : error);
    }
    if (failed) {
        pm_err_t err = code != PM_OK ? code : PM_ERR_FAILED;
        if (failed == 1)
            pm_reply_set_error (reply, err, "cannot %s %s", s_verb (waiter->cmd),
                                first);
        else
            pm_reply_set_error (reply, err, "cannot %s %zu of %zu services; "
                                "first %s", s_verb (waiter->cmd), failed,
                                waiter->count, first);
    }
    s_add_extra (reply, waiter);
    pm_sup_answer (self, &waiter->token, reply);
    pm_reply_destroy (&reply);
}

//  Answers every parked request whose targets are all settled.
void
pm_sup_check_waiters (pm_supervisor_t *self)
{
    pm_waiter_t *waiter = (pm_waiter_t *) zlistx_first (self->waiters);
    while (waiter) {
        void *handle = zlistx_cursor (self->waiters);
        pm_waiter_t *next = (pm_waiter_t *) zlistx_next (self->waiters);
        bool done = true;
        for (size_t k = 0; k < waiter->count && done; k++)
            if (s_target_outcome (self, waiter, k) == s_PENDING)
                done = false;
        if (done) {
            pm_sup_waiter_reply (self, waiter, PM_OK);
            zlistx_detach (self->waiters, handle);
            pm_sup_waiter_destroy (&waiter);
        }
        waiter = next;
        //  zlistx_next moved the cursor past handle already.
    }
}

static int
s_on_waiter_timeout (zloop_t *loop, int timer_id, void *arg)
{
    pm_waiter_t *waiter = (pm_waiter_t *) arg;
    pm_supervisor_t *self = waiter->sup;
    waiter->timer = -1;
    void *handle = zlistx_find (self->waiters, waiter);
    if (handle) {
        pm_sup_waiter_reply (self, waiter, PM_ERR_TIMEOUT);
        zlistx_detach (self->waiters, handle);
        pm_sup_waiter_destroy (&waiter);
    }
    return 0;
}

pm_waiter_t *
pm_sup_waiter_new (pm_supervisor_t *self, const pm_request_t *request,
              pm_wait_t wait, const size_t *targets, size_t count,
              void *token)
{
    pm_waiter_t *waiter = calloc (1, sizeof *waiter);
    assert (waiter);
    waiter->sup = self;
    waiter->cmd = request->cmd;
    waiter->id = request->id;
    waiter->token = token;
    waiter->wait = wait;
    waiter->wait_for = request->wait_for;
    waiter->timeout = request->timeout;
    waiter->timer = -1;
    waiter->count = count;
    waiter->targets = calloc (count ? count : 1, sizeof *waiter->targets);
    waiter->notes = calloc (count ? count : 1, sizeof *waiter->notes);
    waiter->spawns0 = calloc (count ? count : 1, sizeof *waiter->spawns0);
    assert (waiter->targets && waiter->notes && waiter->spawns0);
    for (size_t k = 0; k < count; k++) {
        waiter->targets [k] = targets [k];
        waiter->spawns0 [k] = pm_service_spawns (self->entries [targets [k]]->svc);
    }
    return waiter;
}

static void
s_waiter_note (pm_waiter_t *waiter, size_t k, const char *note)
{
    free (waiter->notes [k]);
    waiter->notes [k] = note ? strdup (note) : NULL;
}

//  Answers now (wait none, or nothing to wait for) or parks waiter.
void
pm_sup_park_or_answer (pm_supervisor_t *self, pm_waiter_t *waiter)
{
    pm_sup_settle (self);
    bool done = true;
    for (size_t k = 0; k < waiter->count && done; k++)
        if (s_target_outcome (self, waiter, k) == s_PENDING)
            done = false;
    if (waiter->wait == PM_WAIT_NONE) {
        //  Not waiting: report what was done and the states right now.
        pm_reply_t *reply = pm_reply_new (waiter->id);
        reply->ok = true;
        for (size_t k = 0; k < waiter->count; k++) {
            pm_entry_t *entry = self->entries [waiter->targets [k]];
            bool failed = s_target_outcome (self, waiter, k) == s_FAIL
                       && waiter->cmd != PM_CMD_STOP;
            pm_reply_add_result (reply, pm_service_name (entry->svc), !failed,
                                 pm_service_state (entry->svc),
                                 waiter->notes [k],
                                 failed ? pm_service_error (entry->svc) : NULL);
            if (failed && reply->ok)
                pm_reply_set_error (reply, PM_ERR_FAILED, "cannot %s %s: %s",
                                    s_verb (waiter->cmd),
                                    pm_service_name (entry->svc),
                                    pm_service_error (entry->svc)
                                    ? pm_service_error (entry->svc) : "failed");
        }
        pm_sup_answer (self, &waiter->token, reply);
        pm_reply_destroy (&reply);
        pm_sup_waiter_destroy (&waiter);
        return;
    }
    if (done) {
        pm_sup_waiter_reply (self, waiter, PM_OK);
        pm_sup_waiter_destroy (&waiter);
        return;
    }
    //  A bound on what clients can leave parked (a client that went away
    //  leaves its request behind until it settles).
    if (zlistx_size (self->waiters) >= PM_SUP_WAITERS_MAX) {
        pm_reply_t *reply = pm_reply_new (waiter->id);
        pm_reply_set_error (reply, PM_ERR_BUSY, "%d requests are already "
                            "waiting; try again later", PM_SUP_WAITERS_MAX);
        pm_sup_answer (self, &waiter->token, reply);
        pm_reply_destroy (&reply);
        pm_sup_waiter_destroy (&waiter);
        return;
    }
    if (waiter->timeout > 0) {
        size_t ms = (size_t) (waiter->timeout * 1000.0 + 0.5);
        waiter->timer = pm_timer_add (self->loop, ms,
                                     s_on_waiter_timeout, waiter);
    }
    zlistx_add_end (self->waiters, waiter);
}

/* ------------------------------------------------------------------ */
/*  Commands                                                           */
/* ------------------------------------------------------------------ */


void
pm_supervisor_status (pm_supervisor_t *self, const size_t *targets,
                      size_t count, pm_reply_t *reply)
{
    double now = pm_sup_now ();
    size_t total = count ? count : self->count;
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_record_t record;
        pm_service_record (self->entries [index]->svc, now, &record);
        pm_reply_add_service (reply, &record);
        pm_record_clear (&record);
    }
    reply->ok = true;
}

void
pm_sup_refuse (pm_supervisor_t *self, uint64_t id, void *token, pm_err_t err,
          const char *message)
{
    pm_reply_t *reply = pm_reply_new (id);
    pm_reply_set_error (reply, err, "%s", message);
    pm_sup_answer (self, &token, reply);
    pm_reply_destroy (&reply);
}

void
pm_supervisor_start (pm_supervisor_t *self, const pm_request_t *request,
                     const size_t *targets, size_t count, void *token)
{
    if (self->shutting_down) {
        pm_sup_refuse (self, request->id, token, PM_ERR_SHUTTING_DOWN,
                  "agent shutting down: not starting anything");
        return;
    }
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_RUNNING
                   : request->wait;
    pm_waiter_t *waiter = pm_sup_waiter_new (self, request, wait, targets, count,
                                       token);
    for (size_t k = 0; k < count; k++) {
        pm_entry_t *entry = self->entries [targets [k]];
        pm_state_t state = pm_service_state (entry->svc);
        bool going_down = entry->stop_queued || state == PM_STATE_STOPPING;
        //  A start on request is a fresh start: now, with the count reset.
        if (state == PM_STATE_BACKOFF || state == PM_STATE_FAILED) {
            pm_sup_cancel_backoff (self, entry);
            pm_sup_policy_reset (entry);
        }
        if (state == PM_STATE_RUNNING && !going_down)
            s_waiter_note (waiter, k, "already-running");
        else
        if ((state == PM_STATE_WAITING || state == PM_STATE_STARTING)
        &&  !going_down)
            s_waiter_note (waiter, k, "already-starting");
        else
            pm_sup_start_with_deps (self, entry);
    }
    pm_sup_park_or_answer (self, waiter);
}

//  Adds to set every target and, with dependents, whatever depends on them.
//  The services a stop or restart covers: the targets, then (with
//  dependents) every service that depends on one of them, in config order;
//  only_active leaves out dependents that are not up.  Returns a malloc'd
//  list of *total indexes.
static size_t *
s_cover (pm_supervisor_t *self, const size_t *targets, size_t count,
         bool dependents, bool only_active, size_t *total)
{
    bool *set = calloc (self->count + 1, sizeof *set);
    size_t *all = calloc (self->count + 1, sizeof *all);
    assert (set && all);
    *total = 0;
    for (size_t k = 0; k < count; k++) {
        all [(*total)++] = targets [k];
        if (dependents)
            pm_graph_mark_dependents (self->graph, targets [k], set);
    }
    for (size_t k = 0; k < count; k++)
        set [targets [k]] = false;      //  listed already
    for (size_t i = 0; i < self->count; i++)
        if (set [i] && (!only_active
                        || pm_service_is_active (self->entries [i]->svc)))
            all [(*total)++] = i;
    free (set);
    return all;
}

void
pm_supervisor_stop (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_STOPPED
                   : request->wait;
    //  Report on every service stopped, targets first, then dependents.
    size_t total;
    size_t *all = s_cover (self, targets, count, request->with_dependents,
                           false, &total);
    pm_waiter_t *waiter = pm_sup_waiter_new (self, request, wait, all, total, token);
    for (size_t k = 0; k < total; k++) {
        pm_entry_t *entry = self->entries [all [k]];
        entry->start_after_stop = false;
        if (k >= count)
            s_waiter_note (waiter, k, "dependent");
        if (!pm_service_is_active (entry->svc))
            s_waiter_note (waiter, k, "not-running");
        else
        if (pm_service_state (entry->svc) == PM_STATE_STOPPING)
            s_waiter_note (waiter, k, "already-stopping");
        else
            entry->stop_queued = true;
    }
    free (all);
    pm_sup_park_or_answer (self, waiter);
}

void
pm_supervisor_restart (pm_supervisor_t *self, const pm_request_t *request,
                       const size_t *targets, size_t count, void *token)
{
    if (self->shutting_down) {
        pm_sup_refuse (self, request->id, token, PM_ERR_SHUTTING_DOWN,
                  "agent shutting down: not restarting anything");
        return;
    }
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_RUNNING
                   : request->wait;
    //  Dependents that are not up stay as they are.
    size_t total;
    size_t *all = s_cover (self, targets, count, request->with_dependents,
                           true, &total);
    pm_waiter_t *waiter = pm_sup_waiter_new (self, request, wait, all, total, token);
    for (size_t k = 0; k < total; k++) {
        pm_entry_t *entry = self->entries [all [k]];
        if (k >= count)
            s_waiter_note (waiter, k, "dependent");
        pm_state_t state = pm_service_state (entry->svc);
        if (state == PM_STATE_STARTING || state == PM_STATE_RUNNING
        ||  state == PM_STATE_STOPPING) {
            if (state != PM_STATE_STOPPING)
                entry->stop_queued = true;
            entry->start_after_stop = true;
        }
        else {
            //  Not running: restart means start, and the note says so.
            s_waiter_note (waiter, k, "not-running");
            if (state == PM_STATE_BACKOFF || state == PM_STATE_FAILED) {
                //  On request: now, with the policy's count reset.
                pm_sup_cancel_backoff (self, entry);
                pm_sup_policy_reset (entry);
            }
            if (state == PM_STATE_WAITING || state == PM_STATE_BACKOFF) {
                if (state == PM_STATE_BACKOFF)
                    pm_sup_start_with_deps (self, entry);
            }
            else
                pm_sup_start_with_deps (self, entry);
        }
    }
    free (all);
    pm_sup_park_or_answer (self, waiter);
}

void
pm_supervisor_wait (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    //  PM_WAIT_RUNNING only so the waiter is not mistaken for "none".
    pm_waiter_t *waiter = pm_sup_waiter_new (self, request, PM_WAIT_RUNNING,
                                       targets, count, token);
    pm_sup_park_or_answer (self, waiter);
}

void
pm_supervisor_logs (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, pm_reply_t *reply)
{
    //  Replies stay well under the frame limit: each service gets a fair
    //  share, and a service cut short says so (more) so the client asks
    //  again from where it stopped.
    size_t total = count ? count : self->count;
    size_t budget = PM_FRAME_MAX / 2;
    size_t share = budget / (total ? total : 1);
    size_t used_total = 0;
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_entry_t *entry = self->entries [index];
        const pm_logring_t *ring = pm_logcap_ring (entry->log);
        uint64_t last = pm_logcap_seq (entry->log);
        uint64_t first = pm_logring_first (ring);
        pm_logblock_t *block = pm_reply_add_logblock (
            reply, pm_service_name (entry->svc));
        block->first = first;
        block->last = last;
        uint64_t start;
        if (request->has_since && request->since >= last)
            continue;           //  nothing after it (also no wrap at 2^64-1)
        if (request->has_since)
            start = request->since + 1;
        else {
            uint64_t tail = request->has_tail ? request->tail : 100;
            start = last >= tail ? last - tail + 1 : 1;
        }
        if (start == 0)
            start = 1;
        if (start > last)
            continue;
        uint64_t held_from = first ? first : last + 1;
        if (start < held_from) {
            block->gone_from = start;
            block->gone_to = held_from - 1;
            start = held_from;
        }
        size_t used = 0;
        for (uint64_t seq = start; seq <= last; seq++) {
            const pm_logline_t *line = pm_logring_get (ring, seq);
            if (!line)
                break;
            //  Past its share, or at the protocol's 4096 elements per
            //  list, a block is cut (more); the first line of a
            //  reply always goes, so a client asking again always moves on
            //  (a line is at most 256 KiB, the reply at most 1 MiB).
            size_t cost = pm_line_encoded_size (line->size);
            if ((used + cost > share && block->lines_count > 0)
            ||  (used_total + cost > budget && used_total > 0)
            ||  block->lines_count == PM_NAMES_MAX) {
                block->more = true;
                break;
            }
            pm_logblock_add_line (block, line->seq, line->ts,
                                  (pm_stream_t) line->stream, line->partial,
                                  line->data, line->size);
            used += cost;
            used_total += cost;
        }
    }
    reply->ok = true;
}

void
pm_supervisor_signal (pm_supervisor_t *self, const pm_request_t *request,
                      const size_t *targets, size_t count, pm_reply_t *reply)
{
    reply->ok = true;
    size_t failed = 0;
    char first [PM_TEXT_MAX] = "";
    const char *signame = pm_signal_name (request->signum);
    for (size_t k = 0; k < count; k++) {
        pm_entry_t *entry = self->entries [targets [k]];
        pid_t pid = pm_service_pid (entry->svc);
        const char *error = NULL;
        char text [256];
        if (pid <= 0)
            error = "not running";
        else
        if (kill (pid, request->signum) == -1) {
            snprintf (text, sizeof text, "kill: %s", strerror (errno));
            error = text;
        }
        else {
            pm_service_signal_sent (entry->svc, request->signum);
            pm_log_info ("%s: sent %s to pid %d", pm_service_name (entry->svc),
                         signame ? signame : "signal", (int) pid);
        }
        if (error && failed++ == 0)
            snprintf (first, sizeof first, "%s: %s",
                      pm_service_name (entry->svc), error);
        pm_reply_add_result (reply, pm_service_name (entry->svc), !error,
                             pm_service_state (entry->svc), NULL, error);
    }
    if (failed)
        pm_reply_set_error (reply, PM_ERR_NOT_RUNNING, "cannot signal %s",
                            first);
}

void
pm_supervisor_shutdown (pm_supervisor_t *self, bool force, uint64_t id,
                        void *token)
{
    if (token) {
        pm_request_t request = { .id = id, .cmd = PM_CMD_SHUTDOWN };
        pm_waiter_t *waiter = pm_sup_waiter_new (self, &request, PM_WAIT_NONE,
                                           NULL, 0, token);
        if (self->finished) {
            pm_reply_t *reply = pm_reply_new (id);
            reply->ok = true;
            pm_sup_answer (self, &waiter->token, reply);
            pm_reply_destroy (&reply);
            pm_sup_waiter_destroy (&waiter);
        }
        else
            zlistx_add_end (self->shutdowns, waiter);
    }
    if (self->shutting_down) {
        if (force && !self->forced) {
            self->forced = true;
            pm_log_warn ("shutdown asked again: killing what is left");
            for (size_t i = 0; i < self->total; i++) {
                pm_entry_t *entry = self->entries [i];
                pm_action_t action;
                pm_service_kill_now (entry->svc, &action);
                pm_sup_apply (self, entry, &action);
                if (entry->linger_pgid)
                    kill (-entry->linger_pgid, SIGKILL);
                //  Skip the ordering too: everything goes now.
                if (entry->stop_queued)
                    pm_sup_do_stop (self, entry);
                pm_service_kill_now (entry->svc, &action);
                pm_sup_apply (self, entry, &action);
            }
        }
        pm_sup_settle (self);
        return;
    }
    self->shutting_down = true;
    pm_log_info ("shutting down: stopping services in reverse order");
    if (self->pub)
        pm_publish_agent (self->pub, "stopping", "shutdown requested");
    //  Parked starts cannot succeed any more: answer them now.
    pm_waiter_t *waiter = (pm_waiter_t *) zlistx_first (self->waiters);
    while (waiter) {
        void *handle = zlistx_cursor (self->waiters);
        pm_waiter_t *next = (pm_waiter_t *) zlistx_next (self->waiters);
        if (waiter->wait != PM_WAIT_STOPPED) {
            pm_sup_waiter_reply (self, waiter, PM_ERR_SHUTTING_DOWN);
            zlistx_detach (self->waiters, handle);
            pm_sup_waiter_destroy (&waiter);
        }
        waiter = next;
    }
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        entry->start_after_stop = false;
        if (pm_service_is_active (entry->svc)
        &&  pm_service_state (entry->svc) != PM_STATE_STOPPING)
            entry->stop_queued = true;
    }
    pm_sup_settle (self);
}
