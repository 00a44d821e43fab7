/*  supervisor.c - all services of one agent (supervisor.h)

    The order rules, in one place:
    - A service in `waiting` is spawned once every dependency meets its
      condition (started: starting/running/completed; ready: running;
      completed: completed), and fails at once when one never can
      (failed, stopped, never started, or completed without being ready).
      A dependency that is itself queued to stop, or to start again, is
      never taken as met: that closes the race where a restart's
      dependent would start against the old instance.
    - A service queued to stop is stopped once none of its dependents is
      still queued to stop or stopping: dependents go down first.  Stop
      --all and shutdown queue everything, so they follow the reverse of
      the start order, with unrelated services stopping in parallel.
    - Restart = queue the stop, then start again once down.
    - A main process that exits by itself may leave members of its
      process group behind; they get the stop signal, then SIGKILL after
      stop_timeout.  A stopping service is `stopped` only once its whole
      group is gone.
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "lifecycle.h"
#include "logring.h"
#include "spawn.h"
#include "timer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_on_line (void *arg, const char *line, size_t size);

/* ------------------------------------------------------------------ */
/*  Construction                                                       */
/* ------------------------------------------------------------------ */

pm_entry_t *
pm_sup_entry_new (pm_supervisor_t *self, const pm_config_service_t *spec,
                  size_t index, char *err, size_t errlen)
{
    pm_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->sup = self;
    entry->index = index;
    entry->owner = self->config;
    entry->stop_timer = -1;
    entry->linger_signal_timer = -1;
    entry->backoff_timer = -1;
    entry->history = calloc (spec->max_restarts + 1, sizeof (double));
    assert (entry->history);
    entry->log = pm_logcap_new (self->loop, spec->name, spec->log_file,
                                &spec->log, self->pub, err, errlen);
    if (!entry->log) {
        free (entry->history);
        free (entry);
        return NULL;
    }
    pm_logcap_set_line_fn (entry->log, s_on_line, entry);
    entry->svc = pm_service_new (spec, pm_sup_now ());
    //  A name seen before (removed by a reload, now back) continues its
    //  streams: one stream per agent and service name, seq always +1.
    //  What is remembered stays until the entry is committed (a reload
    //  that fails after this must not lose it): pm_sup_entry_commit.
    uint64_t *seqs = (uint64_t *) zhashx_lookup (self->seqs, spec->name);
    if (seqs) {
        pm_service_set_seq (entry->svc, seqs [0]);
        pm_logcap_set_seq (entry->log, seqs [1]);
    }
    return entry;
}

void
pm_sup_entry_commit (pm_supervisor_t *self, pm_entry_t *entry)
{
    zhashx_delete (self->seqs, pm_service_name (entry->svc));
}

//  Remembers where a removed service's streams stopped.
static void
s_remember_seqs (pm_supervisor_t *self, pm_entry_t *entry)
{
    uint64_t *seqs = malloc (2 * sizeof *seqs);
    assert (seqs);
    seqs [0] = pm_service_seq (entry->svc);
    seqs [1] = pm_logcap_seq (entry->log);
    zhashx_update (self->seqs, pm_service_name (entry->svc), seqs);
}

void
pm_sup_entry_destroy (pm_supervisor_t *self, pm_entry_t **entry_p)
{
    pm_entry_t *entry = *entry_p;
    if (!entry)
        return;
    pm_timer_end (self->loop, &entry->stop_timer);
    pm_timer_end (self->loop, &entry->linger_signal_timer);
    pm_timer_end (self->loop, &entry->backoff_timer);
    pm_probe_destroy (&entry->ready_probe);
    pm_probe_destroy (&entry->alive_probe);
    free (entry->verdict_reason);
    free (entry->history);
    pm_logcap_destroy (&entry->log);
    pm_service_destroy (&entry->svc);
    free (entry);
    *entry_p = NULL;
}

void
pm_sup_build_graph (pm_supervisor_t *self)
{
    pm_graph_destroy (&self->graph);
    self->graph = pm_graph_new (self->count);
    for (size_t i = 0; i < self->count; i++) {
        const pm_config_service_t *spec = &self->config->services [i];
        for (size_t d = 0; d < spec->deps_count; d++)
            pm_graph_add_edge (self->graph, i, spec->deps [d].index);
    }
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

pm_supervisor_t *
pm_supervisor_new (zloop_t *loop, pm_config_t **config_p, const char *agent,
                   pm_publish_t *pub, char *err, size_t errlen)
{
    pm_supervisor_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->config = *config_p;
    *config_p = NULL;
    self->old_configs = zlistx_new ();
    self->seqs = zhashx_new ();
    zhashx_set_destructor (self->seqs, s_free_item);
    self->agent = strdup (agent);
    self->pub = pub;
    self->waiters = zlistx_new ();
    self->shutdowns = zlistx_new ();
    self->settle_timer = -1;
    self->entries = calloc (self->config->services_count + 1,
                            sizeof *self->entries);
    assert (self->entries);
    for (size_t i = 0; i < self->config->services_count; i++) {
        self->entries [i] = pm_sup_entry_new (self,
                                              &self->config->services [i], i,
                                              err, errlen);
        if (!self->entries [i]) {
            pm_supervisor_destroy (&self);
            return NULL;
        }
        pm_sup_entry_commit (self, self->entries [i]);
        self->count = self->total = i + 1;
    }
    pm_sup_build_graph (self);
    return self;
}

void
pm_supervisor_destroy (pm_supervisor_t **self_p)
{
    pm_supervisor_t *self = *self_p;
    if (!self)
        return;
    pm_waiter_t *waiter;
    while ((waiter = (pm_waiter_t *) zlistx_detach (self->waiters, NULL)))
        pm_sup_waiter_destroy (&waiter);
    while ((waiter = (pm_waiter_t *) zlistx_detach (self->shutdowns, NULL)))
        pm_sup_waiter_destroy (&waiter);
    zlistx_destroy (&self->waiters);
    zlistx_destroy (&self->shutdowns);
    pm_timer_end (self->loop, &self->settle_timer);
    for (size_t i = 0; i < self->total; i++)
        pm_sup_entry_destroy (self, &self->entries [i]);
    free (self->entries);
    pm_config_t *config;
    while ((config = (pm_config_t *) zlistx_detach (self->old_configs, NULL)))
        pm_config_destroy (&config);
    zlistx_destroy (&self->old_configs);
    zhashx_destroy (&self->seqs);
    pm_config_destroy (&self->config);
    for (char **p = self->env; p && *p; p++)
        free (*p);
    free (self->env);
    free (self->rundir);
    pm_graph_destroy (&self->graph);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

void
pm_supervisor_set_replier (pm_supervisor_t *self,
                           pm_supervisor_reply_fn *reply,
                           pm_supervisor_free_fn *free_token, void *arg)
{
    self->reply_fn = reply;
    self->free_fn = free_token;
    self->reply_arg = arg;
}

void
pm_supervisor_set_env (pm_supervisor_t *self, char *const *env)
{
    size_t count = 0;
    while (env && env [count])
        count++;
    self->env = calloc (count + 1, sizeof *self->env);
    assert (self->env);
    for (size_t i = 0; i < count; i++)
        self->env [i] = strdup (env [i]);
}

void
pm_supervisor_set_rundir (pm_supervisor_t *self, const char *rundir)
{
    free (self->rundir);
    self->rundir = rundir ? strdup (rundir) : NULL;
}

void
pm_sup_update_echo (pm_supervisor_t *self)
{
    int width = 0;
    for (size_t i = 0; i < self->total; i++) {
        int len = (int) strlen (pm_service_name (self->entries [i]->svc));
        if (len > width)
            width = len;
    }
    for (size_t i = 0; i < self->total; i++)
        pm_logcap_set_echo (self->entries [i]->log, self->echo, width);
}

void
pm_supervisor_set_echo (pm_supervisor_t *self, bool echo)
{
    self->echo = echo;
    pm_sup_update_echo (self);
}

const pm_config_t *
pm_supervisor_config (const pm_supervisor_t *self)
{
    return self->config;
}

int
pm_supervisor_find (const pm_supervisor_t *self, const char *name)
{
    return pm_config_find (self->config, name);
}

size_t
pm_supervisor_size (const pm_supervisor_t *self)
{
    return self->count;
}

bool
pm_supervisor_shutting_down (const pm_supervisor_t *self)
{
    return self->shutting_down;
}

bool
pm_supervisor_finished (const pm_supervisor_t *self)
{
    return self->finished;
}

/* ------------------------------------------------------------------ */
/*  Transitions and actions                                            */
/* ------------------------------------------------------------------ */

//  Publishes every transition the service has made since the last call.
void
pm_sup_publish (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_state_t old_state, new_state;
    while (pm_service_take_transition (entry->svc, &old_state, &new_state)) {
        uint64_t seq = pm_service_next_seq (entry->svc);
        double now = pm_sup_now ();
        pm_record_t record;
        pm_service_record (entry->svc, now, &record);
        //  The record reflects the service now; pin its state to this
        //  transition's, in case several happened in one event (a failure
        //  then its backoff: next_start belongs to the backoff only).
        record.state = new_state;
        if (new_state != PM_STATE_BACKOFF)
            record.next_start = 0;
        const char *error = pm_service_error (entry->svc);
        if (new_state == PM_STATE_FAILED && error)
            pm_log_warn ("%s: %s -> %s: %s", record.name,
                         pm_state_name (old_state), pm_state_name (new_state),
                         error);
        else
        if (record.pid)
            pm_log_info ("%s: %s -> %s (pid %lld)", record.name,
                         pm_state_name (old_state), pm_state_name (new_state),
                         (long long) record.pid);
        else
            pm_log_info ("%s: %s -> %s", record.name,
                         pm_state_name (old_state), pm_state_name (new_state));
        if (self->pub)
            pm_publish_state (self->pub, record.name, seq, now, old_state,
                              new_state, &record);
        pm_record_clear (&record);
    }
}

static int
s_on_stop_timer (zloop_t *loop, int timer_id, void *arg)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    entry->stop_timer = -1;
    pm_action_t action;
    pm_service_stop_timeout (entry->svc, &action);
    if (action.kill_signal) {
        pm_log_warn ("%s: still running after stop_timeout %.1fs, sending "
                     "SIGKILL to process group %d",
                     pm_service_name (entry->svc),
                     pm_service_spec (entry->svc)->stop_timeout,
                     (int) pm_service_pgid (entry->svc));
        kill (-pm_service_pgid (entry->svc), SIGKILL);
    }
    return 0;
}

static void
s_cancel_stop_timer (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_timer_end (self->loop, &entry->stop_timer);
}

void
pm_sup_apply (pm_supervisor_t *self, pm_entry_t *entry, const pm_action_t *action)
{
    if (action->cancel_stop_timer)
        s_cancel_stop_timer (self, entry);
    if (action->kill_signal) {
        pid_t pgid = pm_service_pgid (entry->svc);
        //  The pgid is the pid of a child we have not reaped, or a group
        //  that still has members: it cannot have been recycled.
        if (pgid > 0 && kill (-pgid, action->kill_signal) == -1
        &&  errno != ESRCH)
            pm_log_error ("%s: kill -%d %d: %s", pm_service_name (entry->svc),
                          action->kill_signal, (int) pgid, strerror (errno));
    }
    if (action->arm_stop_timer) {
        s_cancel_stop_timer (self, entry);
        double timeout = pm_service_spec (entry->svc)->stop_timeout;
        size_t ms = (size_t) (timeout * 1000.0 + 0.5);
        entry->stop_timer = pm_timer_add (self->loop, ms,
                                         s_on_stop_timer, entry);
    }
}

static void s_forget_verdict (pm_entry_t *entry);

//  The run is over (or being stopped): its probes and their verdict go.
static void
s_stop_probes (pm_entry_t *entry)
{
    pm_probe_destroy (&entry->ready_probe);
    pm_probe_destroy (&entry->alive_probe);
    s_forget_verdict (entry);
}

static void s_on_verdict (void *arg, pm_probe_t *probe, bool passed,
                          const char *reason);

static void
s_start_alive (pm_supervisor_t *self, pm_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    if (spec->alive.kind == PM_PROBE_NONE)
        return;
    entry->alive_probe = pm_probe_new (self->loop, spec, &spec->alive, true,
                                       self->env, s_on_verdict, entry);
    pm_probe_start (entry->alive_probe);
}

static void
s_on_line (void *arg, const char *line, size_t size)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    if (entry->ready_probe)
        pm_probe_line (entry->ready_probe, line, size);
}

static void s_policy (pm_supervisor_t *self, pm_entry_t *entry);

//  The run failed (readiness deadline, liveness): stop it as a failure.
static void
s_fail_run (pm_supervisor_t *self, pm_entry_t *entry, const char *reason)
{
    pm_log_warn ("%s: %s", pm_service_name (entry->svc), reason);
    pm_action_t action;
    pm_service_fail (entry->svc, reason, pm_sup_now (), &action);
    pm_sup_publish (self, entry);
    pm_sup_apply (self, entry, &action);
}

static int
s_on_settle_timer (zloop_t *loop, int timer_id, void *arg)
{
    pm_supervisor_t *self = (pm_supervisor_t *) arg;
    self->settle_timer = -1;
    pm_sup_settle (self);
    return 0;
}

//  A probe's verdict only records: it may come from inside a drain (a line
//  passed a log probe), a reload or an exit, where the entries are half
//  updated.  The first verdict of a run counts; the loop handler that is
//  running settles at its end, or, for a probe's own handler, a timer
//  settles right after it.
static void
s_on_verdict (void *arg, pm_probe_t *probe, bool passed, const char *reason)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    pm_supervisor_t *self = entry->sup;
    if (entry->verdict != PM_VERDICT_NONE)
        return;
    if (probe == entry->ready_probe && passed)
        entry->verdict = PM_VERDICT_READY;
    else
    if (probe == entry->ready_probe || probe == entry->alive_probe) {
        entry->verdict = PM_VERDICT_FAIL;
        free (entry->verdict_reason);
        entry->verdict_reason = strdup (reason ? reason : "probe failed");
    }
    else
        return;
    entry->verdict_run = pm_service_spawns (entry->svc);
    if (self->settle_timer == -1)
        self->settle_timer = pm_timer_add (self->loop, 1, s_on_settle_timer,
                                          self);
}

static void
s_forget_verdict (pm_entry_t *entry)
{
    entry->verdict = PM_VERDICT_NONE;
    free (entry->verdict_reason);
    entry->verdict_reason = NULL;
}

//  Acts on entry's recorded verdict, if it belongs to the current run.
static void
s_take_verdict (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_verdict_t verdict = entry->verdict;
    if (verdict == PM_VERDICT_NONE)
        return;
    char *reason = entry->verdict_reason;
    entry->verdict_reason = NULL;
    entry->verdict = PM_VERDICT_NONE;
    pm_state_t state = pm_service_state (entry->svc);
    bool current = entry->verdict_run == pm_service_spawns (entry->svc)
                && (state == PM_STATE_STARTING || state == PM_STATE_RUNNING);
    if (current && verdict == PM_VERDICT_READY
    &&  state == PM_STATE_STARTING) {
        pm_probe_destroy (&entry->ready_probe);
        pm_service_ready (entry->svc, pm_sup_now ());
        pm_sup_publish (self, entry);
        s_start_alive (self, entry);
    }
    else
    if (current && verdict == PM_VERDICT_FAIL) {
        s_stop_probes (entry);
        s_fail_run (self, entry, reason);
    }
    free (reason);
}

static void
s_spawn (pm_supervisor_t *self, pm_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_spawn_result_t result;
    char err [512];
    pm_spawn_options_t options = { self->env, false, spec->ready.notify_fd };
    if (pm_spawn_run (spec, &options, &result, err, sizeof err) == -1) {
        pm_service_fail_start (entry->svc, err, pm_sup_now ());
        s_policy (self, entry);
        pm_sup_publish (self, entry);
        return;
    }
    pm_logcap_attach (entry->log, result.out_fd, result.err_fd);
    pm_service_spawned (entry->svc, result.pid, pm_sup_now ());
    pm_sup_publish (self, entry);
    if (spec->ready.kind == PM_PROBE_NONE) {
        //  No readiness probe: exec'd is ready.
        pm_service_ready (entry->svc, pm_sup_now ());
        pm_sup_publish (self, entry);
        s_start_alive (self, entry);
        return;
    }
    entry->ready_probe = pm_probe_new (self->loop, spec, &spec->ready, false,
                                       self->env, s_on_verdict, entry);
    if (result.notify_fd != -1)
        pm_probe_set_notify_fd (entry->ready_probe, result.notify_fd);
    pm_probe_start (entry->ready_probe);
}

//  Starts entry, or, if it is on its way down, starts it once it is down.
static void
s_request_start (pm_supervisor_t *self, pm_entry_t *entry)
{
    if (entry->retired)
        return;                 //  removed by a reload: never again
    if (entry->stop_queued
    ||  pm_service_state (entry->svc) == PM_STATE_STOPPING) {
        entry->start_after_stop = true;
        return;
    }
    if (pm_service_request_start (entry->svc, pm_sup_now ()) == PM_REQ_DONE)
        pm_sup_publish (self, entry);
}

//  True if entry must be started for a dependent that needs cond.
static bool
s_needs_start (pm_entry_t *entry, pm_cond_t cond)
{
    if (entry->start_after_stop)
        return false;
    switch (pm_service_state (entry->svc)) {
        case PM_STATE_WAITING:
        case PM_STATE_STARTING:
        case PM_STATE_RUNNING:
            return entry->stop_queued;
        case PM_STATE_COMPLETED:
            return cond == PM_COND_READY;
        default:
            return true;
    }
}

//  Starts entry and, first, whatever it depends on that is not up.
void
pm_sup_start_with_deps (pm_supervisor_t *self, pm_entry_t *entry)
{
    //  A retired entry's dependency indexes belong to a config gone by.
    if (entry->retired)
        return;
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    for (size_t d = 0; d < spec->deps_count; d++) {
        pm_entry_t *dep = self->entries [spec->deps [d].index];
        if (s_needs_start (dep, spec->deps [d].cond))
            pm_sup_start_with_deps (self, dep);
    }
    s_request_start (self, entry);
}

//  Called whenever entry may have come down: a queued start follows.
static void
s_after_down (pm_supervisor_t *self, pm_entry_t *entry)
{
    if (pm_service_is_active (entry->svc) || !entry->start_after_stop)
        return;
    entry->start_after_stop = false;
    if (self->shutting_down)
        return;
    pm_sup_start_with_deps (self, entry);
}

typedef enum { s_DEPS_MET, s_DEPS_PENDING, s_DEPS_NEVER } s_deps_t;

static s_deps_t
s_deps_check (pm_supervisor_t *self, pm_entry_t *entry, char *why, size_t size)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    s_deps_t result = s_DEPS_MET;
    for (size_t d = 0; d < spec->deps_count; d++) {
        pm_entry_t *dep = self->entries [spec->deps [d].index];
        pm_cond_t cond = spec->deps [d].cond;
        const char *name = spec->deps [d].name;
        if (dep->stop_queued || dep->start_after_stop) {
            result = s_DEPS_PENDING;
            continue;
        }
        pm_state_t state = pm_service_state (dep->svc);
        bool met = false, never = false;
        switch (state) {
            case PM_STATE_STARTING:
                met = cond == PM_COND_STARTED;
                break;
            case PM_STATE_RUNNING:
                met = cond != PM_COND_COMPLETED;
                break;
            case PM_STATE_COMPLETED:
                met = cond != PM_COND_READY;
                never = !met;
                break;
            case PM_STATE_FAILED:
            case PM_STATE_STOPPED:
            case PM_STATE_INACTIVE:
                never = true;
                break;
            default:            //  waiting, stopping, backoff
                break;
        }
        if (never) {
            const char *error = pm_service_error (dep->svc);
            if (state == PM_STATE_FAILED && error)
                snprintf (why, size, "dependency '%s' failed: %s", name, error);
            else
            if (state == PM_STATE_COMPLETED)
                snprintf (why, size, "dependency '%s' completed instead of "
                          "becoming ready", name);
            else
                snprintf (why, size, "dependency '%s' is %s", name,
                          pm_state_name (state));
            return s_DEPS_NEVER;
        }
        if (!met)
            result = s_DEPS_PENDING;
    }
    return result;
}

bool
pm_sup_deps_met (pm_supervisor_t *self, pm_entry_t *entry)
{
    char why [PM_TEXT_MAX];
    return s_deps_check (self, entry, why, sizeof why) == s_DEPS_MET;
}

void
pm_sup_restart_probes (pm_supervisor_t *self, pm_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_state_t state = pm_service_state (entry->svc);
    if (state == PM_STATE_RUNNING) {
        pm_probe_destroy (&entry->alive_probe);
        s_start_alive (self, entry);
    }
    else
    if (state == PM_STATE_STARTING && entry->ready_probe
    &&  spec->ready.kind != PM_PROBE_NOTIFY_FD
    &&  spec->ready.kind != PM_PROBE_NONE) {
        //  The notify pipe belongs to the run; other kinds start afresh.
        pm_probe_destroy (&entry->ready_probe);
        entry->ready_probe = pm_probe_new (self->loop, spec, &spec->ready,
                                           false, self->env, s_on_verdict,
                                           entry);
        pm_probe_start (entry->ready_probe);
    }
}

//  A retired service waits for the retired services that depended on it
//  (by name, in the config it came from) to be down first.
static bool
s_retired_blocked (pm_supervisor_t *self, pm_entry_t *entry)
{
    const char *name = pm_service_name (entry->svc);
    for (size_t i = self->count; i < self->total; i++) {
        pm_entry_t *other = self->entries [i];
        if (other == entry)
            continue;
        const pm_config_service_t *spec = pm_service_spec (other->svc);
        bool depends = false;
        for (size_t d = 0; d < spec->deps_count && !depends; d++)
            depends = strcmp (spec->deps [d].name, name) == 0;
        if (depends && (other->stop_queued
                        || pm_service_state (other->svc) == PM_STATE_STOPPING))
            return true;
    }
    return false;
}

//  True if one of entry's dependents must go down before it.
static bool
s_stop_blocked (pm_supervisor_t *self, pm_entry_t *entry)
{
    for (size_t i = 0; i < self->count; i++) {
        if (!pm_graph_has_edge (self->graph, i, entry->index))
            continue;
        pm_entry_t *dependent = self->entries [i];
        if (dependent->stop_queued
        ||  pm_service_state (dependent->svc) == PM_STATE_STOPPING)
            return true;
    }
    return false;
}

void
pm_sup_cancel_backoff (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_timer_end (self->loop, &entry->backoff_timer);
}

void
pm_sup_do_stop (pm_supervisor_t *self, pm_entry_t *entry)
{
    entry->stop_queued = false;
    s_stop_probes (entry);
    pm_sup_cancel_backoff (self, entry);
    pm_action_t action;
    pm_req_result_t result = pm_service_request_stop (entry->svc, pm_sup_now (),
                                                      &action);
    if (result == PM_REQ_DONE) {
        pm_sup_publish (self, entry);
        pm_sup_apply (self, entry, &action);
    }
    s_after_down (self, entry);
}

//  One pass over the services: spawn what may start, fail what never can,
//  stop what may stop.  Returns true if anything changed.
static bool
s_pump (pm_supervisor_t *self)
{
    bool changed = false;
    for (size_t k = 0; k < self->count; k++) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (pm_service_state (entry->svc) != PM_STATE_WAITING
        ||  entry->stop_queued)
            continue;
        char why [PM_TEXT_MAX];
        s_deps_t deps = s_deps_check (self, entry, why, sizeof why);
        if (deps == s_DEPS_MET) {
            s_spawn (self, entry);
            changed = true;
        }
        else
        if (deps == s_DEPS_NEVER) {
            pm_service_fail_start (entry->svc, why, pm_sup_now ());
            pm_sup_publish (self, entry);
            changed = true;
        }
    }
    for (size_t k = self->count; k-- > 0;) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (entry->stop_queued && !s_stop_blocked (self, entry)) {
            pm_sup_do_stop (self, entry);
            changed = true;
        }
    }
    for (size_t i = self->count; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (entry->stop_queued && !s_retired_blocked (self, entry)) {
            pm_sup_do_stop (self, entry);
            changed = true;
        }
    }
    return changed;
}

//  Retired entries that are down for good are let go, with the old
//  configs no entry points into any more.
static void
s_sweep_retired (pm_supervisor_t *self)
{
    size_t kept = self->count;
    for (size_t i = self->count; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (!pm_service_is_active (entry->svc) && !entry->stop_queued
        &&  !entry->linger_pgid && !pm_service_group_pending (entry->svc)) {
            pm_log_info ("%s: removed", pm_service_name (entry->svc));
            s_remember_seqs (self, entry);
            pm_sup_entry_destroy (self, &entry);
        }
        else
            self->entries [kept++] = entry;
    }
    self->total = kept;
    pm_config_t *config = (pm_config_t *) zlistx_first (self->old_configs);
    while (config) {
        void *handle = zlistx_cursor (self->old_configs);
        pm_config_t *next = (pm_config_t *) zlistx_next (self->old_configs);
        bool used = false;
        for (size_t i = self->count; i < self->total && !used; i++)
            used = self->entries [i]->owner == config;
        if (!used) {
            zlistx_detach (self->old_configs, handle);
            pm_config_destroy (&config);
        }
        config = next;
    }
}

/* ------------------------------------------------------------------ */
/*  Restart policy                                                     */
/* ------------------------------------------------------------------ */

static int
s_on_backoff (zloop_t *loop, int timer_id, void *arg)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    entry->backoff_timer = -1;
    if (pm_service_state (entry->svc) == PM_STATE_BACKOFF
    &&  !entry->sup->shutting_down && !entry->retired) {
        pm_log_info ("%s: restarting (policy, attempt %u)",
                     pm_service_name (entry->svc), entry->consecutive);
        pm_sup_start_with_deps (entry->sup, entry);
        pm_sup_settle (entry->sup);
    }
    return 0;
}

//  Forgets past failures: a start on request, or a healthy run.
void
pm_sup_policy_reset (pm_entry_t *entry)
{
    entry->consecutive = 0;
    entry->history_count = 0;
}

//  Called when the service may just have failed or completed, before the
//  transition is published: decides between staying down, giving up
//  (the error says so), and backoff until the next start.
static void
s_policy (pm_supervisor_t *self, pm_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_state_t state = pm_service_state (entry->svc);
    bool applies = (state == PM_STATE_FAILED && spec->restart != PM_RESTART_NO)
                || (state == PM_STATE_COMPLETED
                    && spec->restart == PM_RESTART_ALWAYS);
    //  A removed service is on its way out: no policy for it.
    if (!applies || self->shutting_down || entry->retired)
        return;
    double now = pm_sup_now ();
    double started = pm_service_started_at (entry->svc);
    if (started > 0 && now - started >= spec->min_uptime)
        pm_sup_policy_reset (entry);
    //  Restarts older than the window no longer count.
    size_t kept = 0;
    for (size_t i = 0; i < entry->history_count; i++)
        if (entry->history [i] > now - spec->restart_window)
            entry->history [kept++] = entry->history [i];
    entry->history_count = kept;
    if (spec->max_restarts && entry->history_count >= spec->max_restarts) {
        char text [PM_TEXT_MAX];
        const char *last = pm_service_error (entry->svc);
        snprintf (text, sizeof text, "gave up after %u restarts within "
                  "%g s; last: %s", spec->max_restarts, spec->restart_window,
                  last ? last : "exited with code 0");
        pm_service_set_error (entry->svc, text);
        pm_log_warn ("%s: %s", pm_service_name (entry->svc), text);
        return;
    }
    double delay = spec->backoff_initial;
    for (unsigned i = 0; i < entry->consecutive && delay < spec->backoff_max;
         i++)
        delay *= 2;
    if (delay > spec->backoff_max)
        delay = spec->backoff_max;
    entry->consecutive++;
    if (spec->max_restarts)
        entry->history [entry->history_count++] = now;
    pm_service_backoff (entry->svc, now + delay, now);
    pm_sup_cancel_backoff (self, entry);
    size_t ms = (size_t) (delay * 1000.0 + 0.5);
    entry->backoff_timer = pm_timer_add (self->loop, ms,
                                        s_on_backoff, entry);
}

/* ------------------------------------------------------------------ */
/*  Shutdown completion                                                */
/* ------------------------------------------------------------------ */

static bool
s_all_down (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (pm_service_is_active (entry->svc) || entry->stop_queued
        ||  entry->linger_pgid)
            return false;
    }
    return true;
}

static int
s_on_finish (zloop_t *loop, int timer_id, void *arg)
{
    return -1;                  //  ends zloop_start
}

static void
s_finish_shutdown (pm_supervisor_t *self)
{
    //  Every service is down and reaped: drain what they left in the
    //  pipes, then publish the last agent event, then answer everyone.
    for (size_t i = 0; i < self->total; i++)
        pm_logcap_drain (self->entries [i]->log);
    if (self->pub)
        pm_publish_agent (self->pub, "shutdown", "all services stopped");
    pm_waiter_t *waiter;
    while ((waiter = (pm_waiter_t *) zlistx_detach (self->waiters, NULL))) {
        pm_sup_waiter_reply (self, waiter, PM_ERR_SHUTTING_DOWN);
        pm_sup_waiter_destroy (&waiter);
    }
    while ((waiter = (pm_waiter_t *) zlistx_detach (self->shutdowns, NULL))) {
        pm_reply_t *reply = pm_reply_new (waiter->id);
        reply->ok = true;
        pm_sup_answer (self, &waiter->token, reply);
        pm_reply_destroy (&reply);
        pm_sup_waiter_destroy (&waiter);
    }
    pm_log_info ("shutdown complete");
    self->finished = true;
    int finish = pm_timer_add (self->loop, 1, s_on_finish, self);
    (void) finish;
}

/* ------------------------------------------------------------------ */
/*  Settling                                                           */
/* ------------------------------------------------------------------ */

void
pm_sup_settle (pm_supervisor_t *self)
{
    pm_timer_end (self->loop, &self->settle_timer);
    if (self->settling || self->finished)
        return;
    self->settling = true;
    for (size_t i = 0; i < self->total; i++)
        s_take_verdict (self, self->entries [i]);
    while (s_pump (self))
        ;
    s_sweep_retired (self);
    pm_sup_check_waiters (self);
    self->settling = false;
    if (self->shutting_down && s_all_down (self))
        s_finish_shutdown (self);
}

/* ------------------------------------------------------------------ */
/*  Exits                                                              */
/* ------------------------------------------------------------------ */

static bool
s_group_alive (pid_t pgid)
{
    return pgid > 0 && (kill (-pgid, 0) == 0 || errno == EPERM);
}

static int
s_on_linger_timer (zloop_t *loop, int timer_id, void *arg)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    entry->linger_signal_timer = -1;
    if (entry->linger_pgid && s_group_alive (entry->linger_pgid)) {
        pm_log_warn ("%s: processes left in group %d after stop_timeout, "
                     "sending SIGKILL", pm_service_name (entry->svc),
                     (int) entry->linger_pgid);
        kill (-entry->linger_pgid, SIGKILL);
    }
    return 0;
}

//  A run is over and its process group gone: processes that left the
//  group (setsid, double fork) but still carry the service's marks in
//  their environment are killed too, so nothing of the run is left.  Not
//  while a newer run exists, whose processes carry the same marks.
static void
s_kill_escapees (pm_supervisor_t *self, pm_entry_t *entry)
{
    if (!self->rundir || pm_service_is_active (entry->svc))
        return;
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *other = self->entries [i];
        if (other != entry
        &&  strcmp (pm_service_name (other->svc),
                    pm_service_name (entry->svc)) == 0
        &&  (pm_service_is_active (other->svc) || other->linger_pgid))
            return;
    }
    int killed = pm_lifecycle_kill_marked (self->rundir,
                                           pm_service_name (entry->svc), true);
    if (killed)
        pm_log_warn ("%s: killed %d process%s that had left its process "
                     "group", pm_service_name (entry->svc), killed,
                     killed == 1 ? "" : "es");
}

//  After an event that may have ended a run (an exit, the last of a
//  group): the restart policy decides first, so a give-up shows in the
//  event; then the transition is published and its actions done; a run
//  whose group is gone is swept for escapees; then what follows a run
//  (a start queued behind the stop).
static void
s_run_event (pm_supervisor_t *self, pm_entry_t *entry,
             const pm_action_t *action, bool group_gone)
{
    s_policy (self, entry);
    pm_sup_publish (self, entry);
    pm_sup_apply (self, entry, action);
    if (group_gone)
        s_kill_escapees (self, entry);
    s_after_down (self, entry);
}

//  Re-checks groups that outlived their main process.
static void
s_check_groups (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (pm_service_group_pending (entry->svc)
        &&  !s_group_alive (pm_service_pgid (entry->svc))) {
            pm_action_t action;
            pm_service_group_gone (entry->svc, pm_sup_now (), &action);
            s_run_event (self, entry, &action, true);
        }
        if (entry->linger_pgid && !s_group_alive (entry->linger_pgid)) {
            entry->linger_pgid = 0;
            s_kill_escapees (self, entry);
            pm_timer_end (self->loop, &entry->linger_signal_timer);
        }
    }
}

void
pm_supervisor_on_exit (pm_supervisor_t *self, pid_t pid, int status)
{
    pm_entry_t *entry = NULL;
    for (size_t i = 0; i < self->total && !entry; i++)
        if (pm_service_pid (self->entries [i]->svc) == pid)
            entry = self->entries [i];
    if (entry) {
        //  Its last words first: everything it wrote is in the pipes.
        pm_logcap_drain (entry->log);
        //  A verdict its last lines gave still counts (ready, then exited).
        s_take_verdict (self, entry);
        s_stop_probes (entry);
        pid_t pgid = pm_service_pgid (entry->svc);
        bool stopping = pm_service_state (entry->svc) == PM_STATE_STOPPING;
        bool group_alive = s_group_alive (pgid);
        pm_action_t action;
        pm_service_exited (entry->svc, status, group_alive, pm_sup_now (),
                           &action);
        if (!stopping && group_alive) {
            //  Left behind by a main process that exited by itself.
            pm_log_info ("%s: main process exited, stopping what is left "
                         "of process group %d", pm_service_name (entry->svc),
                         (int) pgid);
            pm_timer_end (self->loop, &entry->linger_signal_timer);
            entry->linger_pgid = pgid;
            kill (-pgid, pm_service_spec (entry->svc)->stop_signal);
            double timeout = pm_service_spec (entry->svc)->stop_timeout;
            entry->linger_signal_timer =
                pm_timer_add (self->loop, (size_t) (timeout * 1000.0) + 1,
                              s_on_linger_timer, entry);
        }
        s_run_event (self, entry, &action, !group_alive);
    }
    else {
        bool probe = false;
        for (size_t i = 0; i < self->total && !probe; i++) {
            pm_entry_t *other = self->entries [i];
            probe = (other->ready_probe
                     && pm_probe_on_exit (other->ready_probe, pid, status))
                 || (other->alive_probe
                     && pm_probe_on_exit (other->alive_probe, pid, status));
        }
        if (!probe)
            pm_log_debug ("reaped pid %d (not a service's main process), "
                          "status %d", (int) pid, status);
    }
    s_check_groups (self);
    pm_sup_settle (self);
}

/* ------------------------------------------------------------------ */
/*  Start-up                                                           */
/* ------------------------------------------------------------------ */

void
pm_supervisor_autostart (pm_supervisor_t *self)
{
    for (size_t k = 0; k < self->count; k++) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (pm_service_spec (entry->svc)->autostart)
            pm_sup_start_with_deps (self, entry);
    }
    pm_sup_settle (self);
}
