/*  runs.c - one run of a service, from spawn to what its group leaves

    Owns, for the supervisor (supervisor_int.h): spawning a service that
    may start, its readiness and liveness probes and their verdicts (which
    only record; settling acts on them), the actions the state machine
    asks for (signals, the stop timer), the exit of a main process and
    the members of its process group left behind, the escapee sweep once
    a run is over, and the restart policy's backoff timer.

    Leaves to others: which service may start or stop (order, through
    supervisor.c), what the policy decides (policy), the state changes
    (service), fork and exec (spawn), reaping (reaper).

    Handlers here that are loop handlers (the stop, linger and backoff
    timers, pm_supervisor_reaped after a waitpid loop's exits) end with one
    settle; the callbacks a
    drain or a reload can reach (lines, verdicts) never settle.
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "lifecycle.h"
#include "spawn.h"
#include "timer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/*  Actions                                                            */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/*  Spawn, probes and verdicts                                         */
/* ------------------------------------------------------------------ */

static void s_forget_verdict (pm_entry_t *entry);

void
pm_sup_stop_probes (pm_entry_t *entry)
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

void
pm_sup_on_line (void *arg, const char *line, size_t size)
{
    pm_entry_t *entry = (pm_entry_t *) arg;
    if (entry->ready_probe)
        pm_probe_line (entry->ready_probe, line, size);
}


//  The run failed (readiness deadline, liveness): stop it as a failure.
static void
s_fail_run (pm_supervisor_t *self, pm_entry_t *entry, const char *reason)
{
    pm_log_warn ("%s: %s", pm_service_name (entry->svc), reason);
    pm_action_t action;
    pm_service_fail (entry->svc, reason, pm_wall_clock (), &action);
    pm_sup_publish (self, entry);
    pm_sup_apply (self, entry, &action);
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
    pm_sup_settle_soon (self);
}

static void
s_forget_verdict (pm_entry_t *entry)
{
    entry->verdict = PM_VERDICT_NONE;
    free (entry->verdict_reason);
    entry->verdict_reason = NULL;
}

void
pm_sup_take_verdict (pm_supervisor_t *self, pm_entry_t *entry)
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
        pm_service_ready (entry->svc, pm_wall_clock ());
        pm_sup_publish (self, entry);
        s_start_alive (self, entry);
    }
    else
    if (current && verdict == PM_VERDICT_FAIL) {
        pm_sup_stop_probes (entry);
        s_fail_run (self, entry, reason);
    }
    free (reason);
}

void
pm_sup_spawn (pm_supervisor_t *self, pm_entry_t *entry)
{
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    pm_spawn_result_t result;
    char err [512];
    pm_spawn_options_t options = { self->env, false, spec->ready.notify_fd };
    if (pm_spawn_run (spec, &options, &result, err, sizeof err) == -1) {
        pm_service_fail_start (entry->svc, err, pm_wall_clock ());
        pm_sup_policy (self, entry);
        pm_sup_publish (self, entry);
        return;
    }
    pm_logcap_attach (entry->log, result.out_fd, result.err_fd);
    pm_service_spawned (entry->svc, result.pid, pm_wall_clock ());
    pm_sup_publish (self, entry);
    if (spec->ready.kind == PM_PROBE_NONE) {
        //  No readiness probe: exec'd is ready.
        pm_service_ready (entry->svc, pm_wall_clock ());
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
                     pm_service_name (entry->svc),
                     pm_policy_attempts (entry->policy));
        pm_sup_start_with_deps (entry->sup, entry);
        pm_sup_settle (entry->sup);
    }
    return 0;
}

void
pm_sup_cancel_backoff (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_timer_end (self->loop, &entry->backoff_timer);
}

void
pm_sup_policy (pm_supervisor_t *self, pm_entry_t *entry)
{
    //  A removed service is on its way out, and shutdown restarts nothing.
    if (self->shutting_down || entry->retired)
        return;
    double now = pm_wall_clock ();
    pm_policy_decision_t decision;
    pm_policy_decide (entry->policy, pm_service_spec (entry->svc),
                      pm_service_state (entry->svc),
                      pm_service_started_at (entry->svc),
                      pm_service_error (entry->svc), now, &decision);
    if (decision.verdict == PM_POLICY_GIVE_UP) {
        pm_service_set_error (entry->svc, decision.reason);
        pm_log_warn ("%s: %s", pm_service_name (entry->svc), decision.reason);
    }
    else
    if (decision.verdict == PM_POLICY_RESTART) {
        //  Its run was healthy: no crash loop, start it again now (the
        //  failure is published first, then the start).
        pm_log_info ("%s: restarting at once (policy; the run lasted "
                     "%.1f s)", pm_service_name (entry->svc),
                     now - pm_service_started_at (entry->svc));
        pm_sup_start_with_deps (self, entry);
    }
    else
    if (decision.verdict == PM_POLICY_BACKOFF) {
        pm_service_backoff (entry->svc, now + decision.delay, now);
        pm_sup_cancel_backoff (self, entry);
        size_t ms = (size_t) (decision.delay * 1000.0 + 0.5);
        entry->backoff_timer = pm_timer_add (self->loop, ms, s_on_backoff,
                                            entry);
    }
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
    //  Swept once for every run that ended in this pass, before anything
    //  of the pass goes out (pm_sup_flush).
    pm_sup_queue_sweep (self, pm_service_name (entry->svc));
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
    pm_sup_policy (self, entry);
    pm_sup_publish (self, entry);
    pm_sup_apply (self, entry, action);
    if (group_gone)
        s_kill_escapees (self, entry);
    pm_sup_after_down (self, entry);
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
            pm_service_group_gone (entry->svc, pm_wall_clock (), &action);
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
        pm_sup_take_verdict (self, entry);
        pm_sup_stop_probes (entry);
        pid_t pgid = pm_service_pgid (entry->svc);
        bool stopping = pm_service_state (entry->svc) == PM_STATE_STOPPING;
        bool group_alive = s_group_alive (pgid);
        pm_action_t action;
        pm_service_exited (entry->svc, status, group_alive, pm_wall_clock (),
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
}

void
pm_supervisor_reaped (pm_supervisor_t *self)
{
    s_check_groups (self);
    pm_sup_settle (self);
}
