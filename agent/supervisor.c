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
#include "supervisor.h"
#include "agentlog.h"
#include "graph.h"
#include "lifecycle.h"
#include "logcap.h"
#include "logring.h"
#include "probe.h"
#include "service.h"
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    pm_supervisor_t *sup;     /* back pointer, for timer handlers */
    size_t index;
    pm_service_t *svc;        /* owned */
    pm_logcap_t *log;         /* owned */
    int stop_timer;           /* zloop timer id, -1 when not armed */
    bool stop_queued;         /* to be stopped once its dependents are down */
    bool start_after_stop;    /* to be started again once down */
    pid_t linger_pgid;        /* group left by an unrequested exit, 0: none */
    int linger_signal_timer;  /* SIGKILL for the lingering group, -1 */
    pm_probe_t *ready_probe;  /* readiness of the current run, or NULL */
    pm_probe_t *alive_probe;  /* liveness of the current run, or NULL */
    int backoff_timer;        /* the policy's next start, -1 */
    unsigned consecutive;     /* policy restarts since the last healthy run */
    double *history;          /* times of policy restarts, max_restarts of them */
    size_t history_count;
} s_entry_t;

typedef enum {
    s_PENDING = 0,
    s_OK,
    s_FAIL
} s_outcome_t;

typedef struct {
    pm_cmd_t cmd;
    uint64_t id;
    void *token;              /* the client's envelope, owned until answered */
    pm_wait_t wait;
    pm_state_t wait_for;      /* `wait`: the state to wait for */
    size_t count;
    size_t *targets;
    char **notes;             /* per target, or NULL entries */
    unsigned long *spawns0;   /* spawns of each target when asked */
    int timer;                /* timeout timer, -1 */
    double timeout;
    pm_supervisor_t *sup;
} s_waiter_t;

struct pm_supervisor_t {
    zloop_t *loop;            /* not owned */
    const pm_config_t *config;    /* not owned */
    char *agent;
    pm_publish_t *pub;        /* not owned, may be NULL */
    pm_graph_t *graph;
    s_entry_t *entries;
    size_t count;
    zlistx_t *waiters;        /* s_waiter_t *, parked requests */
    zlistx_t *shutdowns;      /* s_waiter_t *, shutdown requests */
    pm_supervisor_reply_fn *reply_fn;
    pm_supervisor_free_fn *free_fn;
    void *reply_arg;
    bool shutting_down;
    bool forced;
    bool finished;
    bool settling;            /* re-entrancy guard for s_settle */
    char **env;               /* extra "KEY=value" for services, owned */
    char *rundir;             /* runtime directory, for the escapee sweep */
};

static void s_settle (pm_supervisor_t *self);
static void s_on_line (void *arg, const char *line, size_t size);

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/*  Construction                                                       */
/* ------------------------------------------------------------------ */

pm_supervisor_t *
pm_supervisor_new (zloop_t *loop, const pm_config_t *config,
                   const char *agent, pm_publish_t *pub, char *err,
                   size_t errlen)
{
    pm_supervisor_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->config = config;
    self->agent = strdup (agent);
    self->pub = pub;
    self->count = config->services_count;
    self->graph = pm_graph_new (self->count);
    self->entries = calloc (self->count ? self->count : 1,
                            sizeof *self->entries);
    assert (self->entries);
    self->waiters = zlistx_new ();
    self->shutdowns = zlistx_new ();
    for (size_t i = 0; i < self->count; i++) {
        const pm_config_service_t *spec = &config->services [i];
        s_entry_t *entry = &self->entries [i];
        entry->sup = self;
        entry->index = i;
        entry->svc = pm_service_new (spec, s_now ());
        entry->stop_timer = -1;
        entry->linger_signal_timer = -1;
        entry->backoff_timer = -1;
        entry->history = calloc (spec->max_restarts + 1, sizeof (double));
        assert (entry->history);
        for (size_t d = 0; d < spec->deps_count; d++)
            pm_graph_add_edge (self->graph, i, spec->deps [d].index);
        entry->log = pm_logcap_new (loop, spec->name, spec->log_file,
                                    &spec->log, pub, err, errlen);
        if (!entry->log) {
            pm_supervisor_destroy (&self);
            return NULL;
        }
        pm_logcap_set_line_fn (entry->log, s_on_line, entry);
    }
    return self;
}

static void
s_waiter_destroy (s_waiter_t **self_p)
{
    s_waiter_t *self = *self_p;
    if (!self)
        return;
    if (self->timer != -1)
        zloop_timer_end (self->sup->loop, self->timer);
    if (self->token && self->sup->free_fn)
        self->sup->free_fn (self->sup->reply_arg, self->token);
    for (size_t i = 0; i < self->count; i++)
        free (self->notes [i]);
    free (self->notes);
    free (self->targets);
    free (self->spawns0);
    free (self);
    *self_p = NULL;
}

void
pm_supervisor_destroy (pm_supervisor_t **self_p)
{
    pm_supervisor_t *self = *self_p;
    if (!self)
        return;
    s_waiter_t *waiter;
    while ((waiter = (s_waiter_t *) zlistx_detach (self->waiters, NULL)))
        s_waiter_destroy (&waiter);
    while ((waiter = (s_waiter_t *) zlistx_detach (self->shutdowns, NULL)))
        s_waiter_destroy (&waiter);
    zlistx_destroy (&self->waiters);
    zlistx_destroy (&self->shutdowns);
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries [i];
        if (entry->stop_timer != -1)
            zloop_timer_end (self->loop, entry->stop_timer);
        if (entry->linger_signal_timer != -1)
            zloop_timer_end (self->loop, entry->linger_signal_timer);
        if (entry->backoff_timer != -1)
            zloop_timer_end (self->loop, entry->backoff_timer);
        pm_probe_destroy (&entry->ready_probe);
        pm_probe_destroy (&entry->alive_probe);
        free (entry->history);
        pm_logcap_destroy (&entry->log);
        pm_service_destroy (&entry->svc);
    }
    free (self->entries);
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
pm_supervisor_set_echo (pm_supervisor_t *self, bool echo)
{
    int width = 0;
    for (size_t i = 0; i < self->count; i++) {
        int len = (int) strlen (pm_service_name (self->entries [i].svc));
        if (len > width)
            width = len;
    }
    for (size_t i = 0; i < self->count; i++)
        pm_logcap_set_echo (self->entries [i].log, echo, width);
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
static void
s_publish (pm_supervisor_t *self, s_entry_t *entry)
{
    pm_state_t old_state, new_state;
    while (pm_service_take_transition (entry->svc, &old_state, &new_state)) {
        uint64_t seq = pm_service_next_seq (entry->svc);
        double now = s_now ();
        pm_record_t record;
        pm_service_record (entry->svc, now, &record);
        //  The record reflects the service now; pin its state to this
        //  transition's, in case several happened in one event.
        record.state = new_state;
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
    s_entry_t *entry = (s_entry_t *) arg;
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
s_cancel_stop_timer (pm_supervisor_t *self, s_entry_t *entry)
{
    if (entry->stop_timer != -1) {
        zloop_timer_end (self->loop, entry->stop_timer);
        entry->stop_timer = -1;
    }
}

static void
s_apply (pm_supervisor_t *self, s_entry_t *entry, const pm_action_t *action)
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
        entry->stop_timer = zloop_timer (self->loop, ms ? ms : 1, 1,
                                         s_on_stop_timer, entry);
    }
}

static void
s_stop_probes (s_entry_t *entry)
{
    pm_probe_destroy (&entry->ready_probe);
    pm_probe_destroy (&entry->alive_probe);
}

static void s_on_verdict (void *arg, pm_probe_t *probe, bool passed,
                          const char *reason);

static void
s_start_alive (pm_supervisor_t *self, s_entry_t *entry)
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
    s_entry_t *entry = (s_entry_t *) arg;
    if (entry->ready_probe)
        pm_probe_line (entry->ready_probe, line, size);
}

static void s_policy (pm_supervisor_t *self, s_entry_t *entry);

//  The run failed (readiness deadline, liveness): stop it as a failure.
static void
s_fail_run (pm_supervisor_t *self, s_entry_t *entry, const char *reason)
{
    pm_log_warn ("%s: %s", pm_service_name (entry->svc), reason);
    pm_action_t action;
    pm_service_fail (entry->svc, reason, s_now (), &action);
    s_publish (self, entry);
    s_apply (self, entry, &action);
}

static void
s_on_verdict (void *arg, pm_probe_t *probe, bool passed, const char *reason)
{
    s_entry_t *entry = (s_entry_t *) arg;
    pm_supervisor_t *self = entry->sup;
    if (probe == entry->ready_probe) {
        pm_probe_destroy (&entry->ready_probe);
        if (passed) {
            if (pm_service_state (entry->svc) == PM_STATE_STARTING) {
                pm_service_ready (entry->svc, s_now ());
                s_publish (self, entry);
                s_start_alive (self, entry);
            }
        }
        else
            s_fail_run (self, entry, reason);
    }
    else
    if (probe == entry->alive_probe) {
        pm_probe_destroy (&entry->alive_probe);
        s_fail_run (self, entry, reason);
    }
    s_settle (self);
}

static void
s_spawn (pm_supervisor_t *self, s_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_spawn_result_t result;
    char err [512];
    pm_spawn_options_t options = { self->env, false, spec->ready.notify_fd };
    if (pm_spawn_run (spec, &options, &result, err, sizeof err) == -1) {
        pm_service_fail_start (entry->svc, err, s_now ());
        s_policy (self, entry);
        s_publish (self, entry);
        return;
    }
    pm_logcap_attach (entry->log, result.out_fd, result.err_fd);
    pm_service_spawned (entry->svc, result.pid, s_now ());
    s_publish (self, entry);
    if (spec->ready.kind == PM_PROBE_NONE) {
        //  No readiness probe: exec'd is ready.
        pm_service_ready (entry->svc, s_now ());
        s_publish (self, entry);
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
s_request_start (pm_supervisor_t *self, s_entry_t *entry)
{
    if (entry->stop_queued
    ||  pm_service_state (entry->svc) == PM_STATE_STOPPING) {
        entry->start_after_stop = true;
        return;
    }
    if (pm_service_request_start (entry->svc, s_now ()) == PM_REQ_DONE)
        s_publish (self, entry);
}

//  True if entry must be started for a dependent that needs cond.
static bool
s_needs_start (s_entry_t *entry, pm_cond_t cond)
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
static void
s_start_with_deps (pm_supervisor_t *self, s_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    for (size_t d = 0; d < spec->deps_count; d++) {
        s_entry_t *dep = &self->entries [spec->deps [d].index];
        if (s_needs_start (dep, spec->deps [d].cond))
            s_start_with_deps (self, dep);
    }
    s_request_start (self, entry);
}

//  Called whenever entry may have come down: a queued start follows.
static void
s_after_down (pm_supervisor_t *self, s_entry_t *entry)
{
    if (pm_service_is_active (entry->svc) || !entry->start_after_stop)
        return;
    entry->start_after_stop = false;
    if (self->shutting_down)
        return;
    s_start_with_deps (self, entry);
}

typedef enum { s_DEPS_MET, s_DEPS_PENDING, s_DEPS_NEVER } s_deps_t;

static s_deps_t
s_deps_check (pm_supervisor_t *self, s_entry_t *entry, char *why, size_t size)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    s_deps_t result = s_DEPS_MET;
    for (size_t d = 0; d < spec->deps_count; d++) {
        s_entry_t *dep = &self->entries [spec->deps [d].index];
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

//  True if one of entry's dependents must go down before it.
static bool
s_stop_blocked (pm_supervisor_t *self, s_entry_t *entry)
{
    for (size_t i = 0; i < self->count; i++) {
        if (!pm_graph_has_edge (self->graph, i, entry->index))
            continue;
        s_entry_t *dependent = &self->entries [i];
        if (dependent->stop_queued
        ||  pm_service_state (dependent->svc) == PM_STATE_STOPPING)
            return true;
    }
    return false;
}

static void
s_cancel_backoff (pm_supervisor_t *self, s_entry_t *entry)
{
    if (entry->backoff_timer != -1) {
        zloop_timer_end (self->loop, entry->backoff_timer);
        entry->backoff_timer = -1;
    }
}

static void
s_do_stop (pm_supervisor_t *self, s_entry_t *entry)
{
    entry->stop_queued = false;
    s_stop_probes (entry);
    s_cancel_backoff (self, entry);
    pm_action_t action;
    pm_req_result_t result = pm_service_request_stop (entry->svc, s_now (),
                                                      &action);
    if (result == PM_REQ_DONE) {
        s_publish (self, entry);
        s_apply (self, entry, &action);
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
        s_entry_t *entry = &self->entries [self->config->start_order [k]];
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
            pm_service_fail_start (entry->svc, why, s_now ());
            s_publish (self, entry);
            changed = true;
        }
    }
    for (size_t k = self->count; k-- > 0;) {
        s_entry_t *entry = &self->entries [self->config->start_order [k]];
        if (entry->stop_queued && !s_stop_blocked (self, entry)) {
            s_do_stop (self, entry);
            changed = true;
        }
    }
    return changed;
}

/* ------------------------------------------------------------------ */
/*  Restart policy                                                     */
/* ------------------------------------------------------------------ */

static int
s_on_backoff (zloop_t *loop, int timer_id, void *arg)
{
    s_entry_t *entry = (s_entry_t *) arg;
    entry->backoff_timer = -1;
    if (pm_service_state (entry->svc) == PM_STATE_BACKOFF
    &&  !entry->sup->shutting_down) {
        pm_log_info ("%s: restarting (policy, attempt %u)",
                     pm_service_name (entry->svc), entry->consecutive);
        s_start_with_deps (entry->sup, entry);
        s_settle (entry->sup);
    }
    return 0;
}

//  Forgets past failures: a start on request, or a healthy run.
static void
s_policy_reset (s_entry_t *entry)
{
    entry->consecutive = 0;
    entry->history_count = 0;
}

//  Called when the service may just have failed or completed, before the
//  transition is published: decides between staying down, giving up
//  (the error says so), and backoff until the next start.
static void
s_policy (pm_supervisor_t *self, s_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_state_t state = pm_service_state (entry->svc);
    bool applies = (state == PM_STATE_FAILED && spec->restart != PM_RESTART_NO)
                || (state == PM_STATE_COMPLETED
                    && spec->restart == PM_RESTART_ALWAYS);
    if (!applies || self->shutting_down)
        return;
    double now = s_now ();
    double started = pm_service_started_at (entry->svc);
    if (started > 0 && now - started >= spec->min_uptime)
        s_policy_reset (entry);
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
    s_cancel_backoff (self, entry);
    size_t ms = (size_t) (delay * 1000.0 + 0.5);
    entry->backoff_timer = zloop_timer (self->loop, ms ? ms : 1, 1,
                                        s_on_backoff, entry);
}

/* ------------------------------------------------------------------ */
/*  Parked requests                                                    */
/* ------------------------------------------------------------------ */

//  `wait`: the wanted state, on its way, or out of reach without a
//  command (a service that failed for good never runs again by itself).
static s_outcome_t
s_wait_outcome (s_entry_t *entry, pm_state_t want)
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
s_target_outcome (pm_supervisor_t *self, s_waiter_t *waiter, size_t k)
{
    s_entry_t *entry = &self->entries [waiter->targets [k]];
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

static void
s_answer (pm_supervisor_t *self, void **token_p, const pm_reply_t *reply)
{
    if (*token_p && self->reply_fn)
        self->reply_fn (self->reply_arg, *token_p, reply);
    *token_p = NULL;
}

static const char *
s_verb (pm_cmd_t cmd)
{
    return cmd == PM_CMD_STOP ? "stop"
         : cmd == PM_CMD_RESTART ? "restart"
         : cmd == PM_CMD_WAIT ? "wait for" : "start";
}

//  Builds and sends the reply of waiter.  error_code PM_OK means "judge
//  from the outcomes"; anything else (timeout, shutting-down) is the
//  error for every target not done.
static void
s_waiter_reply (pm_supervisor_t *self, s_waiter_t *waiter, pm_err_t code)
{
    pm_reply_t *reply = pm_reply_new (waiter->id);
    reply->ok = true;
    size_t failed = 0;
    char first [PM_TEXT_MAX] = "";
    for (size_t k = 0; k < waiter->count; k++) {
        s_entry_t *entry = &self->entries [waiter->targets [k]];
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
    s_answer (self, &waiter->token, reply);
    pm_reply_destroy (&reply);
}

//  Answers every parked request whose targets are all settled.
static void
s_check_waiters (pm_supervisor_t *self)
{
    s_waiter_t *waiter = (s_waiter_t *) zlistx_first (self->waiters);
    while (waiter) {
        void *handle = zlistx_cursor (self->waiters);
        s_waiter_t *next = (s_waiter_t *) zlistx_next (self->waiters);
        bool done = true;
        for (size_t k = 0; k < waiter->count && done; k++)
            if (s_target_outcome (self, waiter, k) == s_PENDING)
                done = false;
        if (done) {
            s_waiter_reply (self, waiter, PM_OK);
            zlistx_detach (self->waiters, handle);
            s_waiter_destroy (&waiter);
        }
        waiter = next;
        //  zlistx_next moved the cursor past handle already.
    }
}

static int
s_on_waiter_timeout (zloop_t *loop, int timer_id, void *arg)
{
    s_waiter_t *waiter = (s_waiter_t *) arg;
    pm_supervisor_t *self = waiter->sup;
    waiter->timer = -1;
    void *handle = zlistx_find (self->waiters, waiter);
    if (handle) {
        s_waiter_reply (self, waiter, PM_ERR_TIMEOUT);
        zlistx_detach (self->waiters, handle);
        s_waiter_destroy (&waiter);
    }
    return 0;
}

static s_waiter_t *
s_waiter_new (pm_supervisor_t *self, const pm_request_t *request,
              pm_wait_t wait, const size_t *targets, size_t count,
              void *token)
{
    s_waiter_t *waiter = calloc (1, sizeof *waiter);
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
        waiter->spawns0 [k] = pm_service_spawns (self->entries [targets [k]].svc);
    }
    return waiter;
}

static void
s_waiter_note (s_waiter_t *waiter, size_t k, const char *note)
{
    free (waiter->notes [k]);
    waiter->notes [k] = note ? strdup (note) : NULL;
}

//  Answers now (wait none, or nothing to wait for) or parks waiter.
static void
s_park_or_answer (pm_supervisor_t *self, s_waiter_t *waiter)
{
    s_settle (self);
    bool done = true;
    for (size_t k = 0; k < waiter->count && done; k++)
        if (s_target_outcome (self, waiter, k) == s_PENDING)
            done = false;
    if (waiter->wait == PM_WAIT_NONE) {
        //  Not waiting: report what was done and the states right now.
        pm_reply_t *reply = pm_reply_new (waiter->id);
        reply->ok = true;
        for (size_t k = 0; k < waiter->count; k++) {
            s_entry_t *entry = &self->entries [waiter->targets [k]];
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
        s_answer (self, &waiter->token, reply);
        pm_reply_destroy (&reply);
        s_waiter_destroy (&waiter);
        return;
    }
    if (done) {
        s_waiter_reply (self, waiter, PM_OK);
        s_waiter_destroy (&waiter);
        return;
    }
    if (waiter->timeout > 0) {
        size_t ms = (size_t) (waiter->timeout * 1000.0 + 0.5);
        waiter->timer = zloop_timer (self->loop, ms ? ms : 1, 1,
                                     s_on_waiter_timeout, waiter);
    }
    zlistx_add_end (self->waiters, waiter);
}

/* ------------------------------------------------------------------ */
/*  Shutdown completion                                                */
/* ------------------------------------------------------------------ */

static bool
s_all_down (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries [i];
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
    for (size_t i = 0; i < self->count; i++)
        pm_logcap_drain (self->entries [i].log);
    if (self->pub)
        pm_publish_agent (self->pub, "shutdown", "all services stopped");
    s_waiter_t *waiter;
    while ((waiter = (s_waiter_t *) zlistx_detach (self->waiters, NULL))) {
        s_waiter_reply (self, waiter, PM_ERR_SHUTTING_DOWN);
        s_waiter_destroy (&waiter);
    }
    while ((waiter = (s_waiter_t *) zlistx_detach (self->shutdowns, NULL))) {
        pm_reply_t *reply = pm_reply_new (waiter->id);
        reply->ok = true;
        s_answer (self, &waiter->token, reply);
        pm_reply_destroy (&reply);
        s_waiter_destroy (&waiter);
    }
    pm_log_info ("shutdown complete");
    self->finished = true;
    zloop_timer (self->loop, 1, 1, s_on_finish, self);
}

/* ------------------------------------------------------------------ */
/*  Settling                                                           */
/* ------------------------------------------------------------------ */

static void
s_settle (pm_supervisor_t *self)
{
    if (self->settling || self->finished)
        return;
    self->settling = true;
    while (s_pump (self))
        ;
    s_check_waiters (self);
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
    s_entry_t *entry = (s_entry_t *) arg;
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
s_kill_escapees (pm_supervisor_t *self, s_entry_t *entry)
{
    if (!self->rundir || pm_service_is_active (entry->svc))
        return;
    int killed = pm_lifecycle_kill_marked (self->rundir,
                                           pm_service_name (entry->svc));
    if (killed)
        pm_log_warn ("%s: killed %d process%s that had left its process "
                     "group", pm_service_name (entry->svc), killed,
                     killed == 1 ? "" : "es");
}

//  Re-checks groups that outlived their main process.
static void
s_check_groups (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries [i];
        if (pm_service_group_pending (entry->svc)
        &&  !s_group_alive (pm_service_pgid (entry->svc))) {
            pm_action_t action;
            pm_service_group_gone (entry->svc, s_now (), &action);
            s_policy (self, entry);
            s_publish (self, entry);
            s_apply (self, entry, &action);
            s_kill_escapees (self, entry);
            s_after_down (self, entry);
        }
        if (entry->linger_pgid && !s_group_alive (entry->linger_pgid)) {
            entry->linger_pgid = 0;
            s_kill_escapees (self, entry);
            if (entry->linger_signal_timer != -1) {
                zloop_timer_end (self->loop, entry->linger_signal_timer);
                entry->linger_signal_timer = -1;
            }
        }
    }
}

void
pm_supervisor_on_exit (pm_supervisor_t *self, pid_t pid, int status)
{
    s_entry_t *entry = NULL;
    for (size_t i = 0; i < self->count && !entry; i++)
        if (pm_service_pid (self->entries [i].svc) == pid)
            entry = &self->entries [i];
    if (entry) {
        //  Its last words first: everything it wrote is in the pipes.
        pm_logcap_drain (entry->log);
        s_stop_probes (entry);
        pid_t pgid = pm_service_pgid (entry->svc);
        bool stopping = pm_service_state (entry->svc) == PM_STATE_STOPPING;
        bool group_alive = s_group_alive (pgid);
        pm_action_t action;
        pm_service_exited (entry->svc, status, group_alive, s_now (), &action);
        s_policy (self, entry);
        s_publish (self, entry);
        s_apply (self, entry, &action);
        if (!group_alive)
            s_kill_escapees (self, entry);
        if (!stopping && group_alive) {
            //  Left behind by a main process that exited by itself.
            pm_log_info ("%s: main process exited, stopping what is left "
                         "of process group %d", pm_service_name (entry->svc),
                         (int) pgid);
            if (entry->linger_signal_timer != -1)
                zloop_timer_end (self->loop, entry->linger_signal_timer);
            entry->linger_pgid = pgid;
            kill (-pgid, pm_service_spec (entry->svc)->stop_signal);
            double timeout = pm_service_spec (entry->svc)->stop_timeout;
            entry->linger_signal_timer =
                zloop_timer (self->loop, (size_t) (timeout * 1000.0) + 1, 1,
                             s_on_linger_timer, entry);
        }
        s_after_down (self, entry);
    }
    else {
        bool probe = false;
        for (size_t i = 0; i < self->count && !probe; i++) {
            s_entry_t *other = &self->entries [i];
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
    s_settle (self);
}

/* ------------------------------------------------------------------ */
/*  Commands                                                           */
/* ------------------------------------------------------------------ */

void
pm_supervisor_autostart (pm_supervisor_t *self)
{
    for (size_t k = 0; k < self->count; k++) {
        s_entry_t *entry = &self->entries [self->config->start_order [k]];
        if (pm_service_spec (entry->svc)->autostart)
            s_start_with_deps (self, entry);
    }
    s_settle (self);
}

void
pm_supervisor_status (pm_supervisor_t *self, const size_t *targets,
                      size_t count, pm_reply_t *reply)
{
    double now = s_now ();
    size_t total = count ? count : self->count;
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_record_t record;
        pm_service_record (self->entries [index].svc, now, &record);
        pm_reply_add_service (reply, &record);
        pm_record_clear (&record);
    }
    reply->ok = true;
}

static void
s_refuse (pm_supervisor_t *self, uint64_t id, void *token, pm_err_t err,
          const char *message)
{
    pm_reply_t *reply = pm_reply_new (id);
    pm_reply_set_error (reply, err, "%s", message);
    s_answer (self, &token, reply);
    pm_reply_destroy (&reply);
}

void
pm_supervisor_start (pm_supervisor_t *self, const pm_request_t *request,
                     const size_t *targets, size_t count, void *token)
{
    if (self->shutting_down) {
        s_refuse (self, request->id, token, PM_ERR_SHUTTING_DOWN,
                  "agent shutting down: not starting anything");
        return;
    }
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_RUNNING
                   : request->wait;
    s_waiter_t *waiter = s_waiter_new (self, request, wait, targets, count,
                                       token);
    for (size_t k = 0; k < count; k++) {
        s_entry_t *entry = &self->entries [targets [k]];
        pm_state_t state = pm_service_state (entry->svc);
        bool going_down = entry->stop_queued || state == PM_STATE_STOPPING;
        //  A start on request is a fresh start: now, with the count reset.
        if (state == PM_STATE_BACKOFF || state == PM_STATE_FAILED) {
            s_cancel_backoff (self, entry);
            s_policy_reset (entry);
        }
        if (state == PM_STATE_RUNNING && !going_down)
            s_waiter_note (waiter, k, "already-running");
        else
        if ((state == PM_STATE_WAITING || state == PM_STATE_STARTING)
        &&  !going_down)
            s_waiter_note (waiter, k, "already-starting");
        else
            s_start_with_deps (self, entry);
    }
    s_park_or_answer (self, waiter);
}

//  Adds to set every target and, with dependents, whatever depends on them.
static void
s_mark_set (pm_supervisor_t *self, const size_t *targets, size_t count,
            bool dependents, bool *set)
{
    for (size_t k = 0; k < count; k++) {
        set [targets [k]] = true;
        if (dependents)
            pm_graph_mark_dependents (self->graph, targets [k], set);
    }
}

void
pm_supervisor_stop (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_STOPPED
                   : request->wait;
    bool *set = calloc (self->count + 1, sizeof *set);
    assert (set);
    s_mark_set (self, targets, count, request->with_dependents, set);
    //  Report on every service stopped, targets first, then dependents.
    size_t *all = calloc (self->count + 1, sizeof *all);
    assert (all);
    size_t total = 0;
    for (size_t k = 0; k < count; k++)
        all [total++] = targets [k];
    for (size_t i = 0; i < self->count; i++) {
        bool listed = false;
        for (size_t k = 0; k < count && !listed; k++)
            listed = targets [k] == i;
        if (set [i] && !listed)
            all [total++] = i;
    }
    s_waiter_t *waiter = s_waiter_new (self, request, wait, all, total, token);
    for (size_t k = 0; k < total; k++) {
        s_entry_t *entry = &self->entries [all [k]];
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
    free (set);
    free (all);
    s_park_or_answer (self, waiter);
}

void
pm_supervisor_restart (pm_supervisor_t *self, const pm_request_t *request,
                       const size_t *targets, size_t count, void *token)
{
    if (self->shutting_down) {
        s_refuse (self, request->id, token, PM_ERR_SHUTTING_DOWN,
                  "agent shutting down: not restarting anything");
        return;
    }
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_RUNNING
                   : request->wait;
    bool *set = calloc (self->count + 1, sizeof *set);
    assert (set);
    s_mark_set (self, targets, count, request->with_dependents, set);
    size_t *all = calloc (self->count + 1, sizeof *all);
    assert (all);
    size_t total = 0;
    for (size_t k = 0; k < count; k++)
        all [total++] = targets [k];
    for (size_t i = 0; i < self->count; i++) {
        bool listed = false;
        for (size_t k = 0; k < count && !listed; k++)
            listed = targets [k] == i;
        //  Dependents that are not up stay as they are.
        if (set [i] && !listed && pm_service_is_active (self->entries [i].svc))
            all [total++] = i;
    }
    s_waiter_t *waiter = s_waiter_new (self, request, wait, all, total, token);
    for (size_t k = 0; k < total; k++) {
        s_entry_t *entry = &self->entries [all [k]];
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
            if (state == PM_STATE_WAITING || state == PM_STATE_BACKOFF) {
                if (state == PM_STATE_BACKOFF)
                    s_start_with_deps (self, entry);
            }
            else
                s_start_with_deps (self, entry);
        }
    }
    free (set);
    free (all);
    s_park_or_answer (self, waiter);
}

void
pm_supervisor_wait (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    //  PM_WAIT_RUNNING only so the waiter is not mistaken for "none".
    s_waiter_t *waiter = s_waiter_new (self, request, PM_WAIT_RUNNING,
                                       targets, count, token);
    s_park_or_answer (self, waiter);
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
        s_entry_t *entry = &self->entries [index];
        const pm_logring_t *ring = pm_logcap_ring (entry->log);
        uint64_t last = pm_logcap_seq (entry->log);
        uint64_t first = pm_logring_first (ring);
        pm_logblock_t *block = pm_reply_add_logblock (
            reply, pm_service_name (entry->svc));
        block->first = first;
        block->last = last;
        uint64_t start;
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
            size_t cost = pm_line_encoded_size (line->size);
            if ((used + cost > share && block->lines_count > 0)
            ||  used_total + cost > budget) {
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
        s_entry_t *entry = &self->entries [targets [k]];
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
        s_waiter_t *waiter = s_waiter_new (self, &request, PM_WAIT_NONE,
                                           NULL, 0, token);
        if (self->finished) {
            pm_reply_t *reply = pm_reply_new (id);
            reply->ok = true;
            s_answer (self, &waiter->token, reply);
            pm_reply_destroy (&reply);
            s_waiter_destroy (&waiter);
        }
        else
            zlistx_add_end (self->shutdowns, waiter);
    }
    if (self->shutting_down) {
        if (force && !self->forced) {
            self->forced = true;
            pm_log_warn ("shutdown asked again: killing what is left");
            for (size_t i = 0; i < self->count; i++) {
                s_entry_t *entry = &self->entries [i];
                pm_action_t action;
                pm_service_kill_now (entry->svc, &action);
                s_apply (self, entry, &action);
                if (entry->linger_pgid)
                    kill (-entry->linger_pgid, SIGKILL);
                //  Skip the ordering too: everything goes now.
                if (entry->stop_queued)
                    s_do_stop (self, entry);
                pm_service_kill_now (entry->svc, &action);
                s_apply (self, entry, &action);
            }
        }
        s_settle (self);
        return;
    }
    self->shutting_down = true;
    pm_log_info ("shutting down: stopping services in reverse order");
    if (self->pub)
        pm_publish_agent (self->pub, "stopping", "shutdown requested");
    //  Parked starts cannot succeed any more: answer them now.
    s_waiter_t *waiter = (s_waiter_t *) zlistx_first (self->waiters);
    while (waiter) {
        void *handle = zlistx_cursor (self->waiters);
        s_waiter_t *next = (s_waiter_t *) zlistx_next (self->waiters);
        if (waiter->wait != PM_WAIT_STOPPED) {
            s_waiter_reply (self, waiter, PM_ERR_SHUTTING_DOWN);
            zlistx_detach (self->waiters, handle);
            s_waiter_destroy (&waiter);
        }
        waiter = next;
    }
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries [i];
        entry->start_after_stop = false;
        if (pm_service_is_active (entry->svc)
        &&  pm_service_state (entry->svc) != PM_STATE_STOPPING)
            entry->stop_queued = true;
    }
    s_settle (self);
}
