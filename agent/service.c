/*  service.c - the supervision state machine of one service (service.h)

    A state table in code: each event function checks the current state,
    moves to the next one, fills in the status fields that change with it,
    and asks for actions through pm_action_t.  No system calls, no clock.
*/
#include "service.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define PM_TRANSITIONS_MAX 8

struct pm_service_t {
    const pm_config_service_t *spec;  /* borrowed from the config */
    pm_state_t state;
    pid_t pid;                /* main process, 0 when none */
    pid_t pgid;               /* its process group, kept until the group is gone */
    double started_at;        /* epoch seconds of the last spawn, 0 = never */
    double state_since;       /* epoch seconds of the last transition */
    unsigned long spawns;     /* spawns since loaded */
    bool has_exit_code;
    int exit_code;
    int exit_signal;          /* signal that ended the last run, 0 = none */
    bool ready;
    char *error;              /* last error, owned, or NULL */
    int signal_sent;          /* last signal delivered on request, 0: none */
    char *fail_error;         /* stopping because the run failed: the error */
    double next_start;        /* backoff: when the policy starts it again */
    bool group_pending;       /* stopping: main reaped, group members left */
    uint64_t seq;             /* last state event sequence number */
    /* transitions not yet taken by the supervisor, oldest first */
    pm_state_t trans_old [PM_TRANSITIONS_MAX];
    pm_state_t trans_new [PM_TRANSITIONS_MAX];
    size_t trans_count;
};

pm_service_t *
pm_service_new (const pm_config_service_t *spec, double now)
{
    pm_service_t *self = calloc (1, sizeof *self);
    assert (self);
    self->spec = spec;
    self->state = PM_STATE_INACTIVE;
    self->state_since = now;
    return self;
}

void
pm_service_destroy (pm_service_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->error);
    free ((*self_p)->fail_error);
    free (*self_p);
    *self_p = NULL;
}

const pm_config_service_t *
pm_service_spec (const pm_service_t *self)
{
    return self->spec;
}

void
pm_service_set_spec (pm_service_t *self, const pm_config_service_t *spec)
{
    self->spec = spec;
}

const char *
pm_service_name (const pm_service_t *self)
{
    return self->spec->name;
}

pm_state_t
pm_service_state (const pm_service_t *self)
{
    return self->state;
}

pid_t
pm_service_pid (const pm_service_t *self)
{
    return self->pid;
}

pid_t
pm_service_pgid (const pm_service_t *self)
{
    return self->pgid;
}

unsigned long
pm_service_spawns (const pm_service_t *self)
{
    return self->spawns;
}

bool
pm_service_is_active (const pm_service_t *self)
{
    switch (self->state) {
        case PM_STATE_WAITING:
        case PM_STATE_STARTING:
        case PM_STATE_RUNNING:
        case PM_STATE_STOPPING:
        case PM_STATE_BACKOFF:
            return true;
        default:
            return false;
    }
}

bool
pm_service_has_process (const pm_service_t *self)
{
    return self->pid > 0;
}

const char *
pm_service_error (const pm_service_t *self)
{
    return self->error;
}

bool
pm_service_group_pending (const pm_service_t *self)
{
    return self->group_pending;
}

uint64_t
pm_service_next_seq (pm_service_t *self)
{
    return ++self->seq;
}

void
pm_service_set_seq (pm_service_t *self, uint64_t seq)
{
    self->seq = seq;
}

uint64_t
pm_service_seq (const pm_service_t *self)
{
    return self->seq;
}

static void
s_set_error (pm_service_t *self, const char *error)
{
    free (self->error);
    self->error = error ? strdup (error) : NULL;
}

static void
s_move (pm_service_t *self, pm_state_t state, double now)
{
    assert (self->trans_count < PM_TRANSITIONS_MAX);
    self->trans_old [self->trans_count] = self->state;
    self->trans_new [self->trans_count] = state;
    self->trans_count++;
    self->state = state;
    self->state_since = now;
}

bool
pm_service_take_transition (pm_service_t *self, pm_state_t *old_state,
                            pm_state_t *new_state)
{
    if (self->trans_count == 0)
        return false;
    *old_state = self->trans_old [0];
    *new_state = self->trans_new [0];
    self->trans_count--;
    memmove (self->trans_old, self->trans_old + 1,
             self->trans_count * sizeof self->trans_old [0]);
    memmove (self->trans_new, self->trans_new + 1,
             self->trans_count * sizeof self->trans_new [0]);
    return true;
}

static char *
s_command_text (const pm_config_service_t *spec)
{
    if (spec->command)
        return strdup (spec->command);
    size_t len = 1;
    for (size_t i = 0; i < spec->argc; i++)
        len += strlen (spec->argv [i]) + 1;
    char *text = malloc (len);
    assert (text);
    char *p = text;
    for (size_t i = 0; i < spec->argc; i++) {
        size_t n = strlen (spec->argv [i]);
        if (i)
            *p++ = ' ';
        memcpy (p, spec->argv [i], n);
        p += n;
    }
    *p = 0;
    return text;
}

void
pm_service_record (const pm_service_t *self, double now, pm_record_t *record)
{
    memset (record, 0, sizeof *record);
    record->name = strdup (self->spec->name);
    record->state = self->state;
    record->pid = self->pid;
    record->started_at = self->started_at;
    record->state_since = self->state_since;
    record->uptime = self->pid > 0 && self->started_at > 0
                   ? now - self->started_at : -1;
    if (record->uptime < -0.5 && self->pid > 0)
        record->uptime = 0;
    record->restarts = self->spawns > 1 ? self->spawns - 1 : 0;
    record->has_exit_code = self->has_exit_code;
    record->exit_code = self->exit_code;
    const char *signame = self->exit_signal
                        ? pm_signal_name (self->exit_signal) : NULL;
    if (self->exit_signal && !signame) {
        char number [24];
        snprintf (number, sizeof number, "%d", self->exit_signal);
        record->signal = strdup (number);
    }
    else
        record->signal = signame ? strdup (signame) : NULL;
    record->ready = self->ready;
    record->error = self->error ? strdup (self->error) : NULL;
    record->deps_count = self->spec->deps_count;
    if (record->deps_count) {
        record->deps = calloc (record->deps_count, sizeof *record->deps);
        assert (record->deps);
        for (size_t i = 0; i < record->deps_count; i++) {
            record->deps [i].name = strdup (self->spec->deps [i].name);
            record->deps [i].cond = self->spec->deps [i].cond;
        }
    }
    record->command = s_command_text (self->spec);
    record->seq = self->seq;
    record->next_start = self->state == PM_STATE_BACKOFF
                       ? self->next_start : 0;
}

pm_req_result_t
pm_service_request_start (pm_service_t *self, double now)
{
    switch (self->state) {
        case PM_STATE_WAITING:
        case PM_STATE_STARTING:
        case PM_STATE_RUNNING:
            return PM_REQ_ALREADY;
        case PM_STATE_STOPPING:
            return PM_REQ_BUSY;
        default:
            s_move (self, PM_STATE_WAITING, now);
            return PM_REQ_DONE;
    }
}

void
pm_service_spawned (pm_service_t *self, pid_t pid, double now)
{
    assert (self->state == PM_STATE_WAITING);
    assert (pid > 0);
    self->pid = pid;
    self->pgid = pid;
    self->spawns++;
    self->started_at = now;
    self->has_exit_code = false;
    self->exit_code = 0;
    self->exit_signal = 0;
    self->signal_sent = 0;
    self->ready = false;
    s_set_error (self, NULL);
    s_move (self, PM_STATE_STARTING, now);
}

void
pm_service_fail_start (pm_service_t *self, const char *error, double now)
{
    assert (self->state == PM_STATE_WAITING);
    s_set_error (self, error);
    self->has_exit_code = false;
    self->exit_signal = 0;
    self->ready = false;
    s_move (self, PM_STATE_FAILED, now);
}

void
pm_service_ready (pm_service_t *self, double now)
{
    assert (self->state == PM_STATE_STARTING);
    self->ready = true;
    s_move (self, PM_STATE_RUNNING, now);
}

pm_req_result_t
pm_service_request_stop (pm_service_t *self, double now, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    switch (self->state) {
        case PM_STATE_STARTING:
        case PM_STATE_RUNNING:
            action->kill_signal = self->spec->stop_signal;
            action->arm_stop_timer = true;
            s_move (self, PM_STATE_STOPPING, now);
            return PM_REQ_DONE;
        case PM_STATE_WAITING:
        case PM_STATE_BACKOFF:
            s_move (self, PM_STATE_STOPPED, now);
            return PM_REQ_DONE;
        case PM_STATE_STOPPING:
            //  Asked to stop while the agent was failing it: a stop on
            //  request now.
            free (self->fail_error);
            self->fail_error = NULL;
            return PM_REQ_ALREADY;
        default:
            return PM_REQ_NOT_RUNNING;
    }
}

void
pm_service_fail (pm_service_t *self, const char *error, double now,
                 pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    if (self->state != PM_STATE_STARTING && self->state != PM_STATE_RUNNING)
        return;
    free (self->fail_error);
    self->fail_error = strdup (error);
    action->kill_signal = self->spec->stop_signal;
    action->arm_stop_timer = true;
    s_move (self, PM_STATE_STOPPING, now);
}

void
pm_service_backoff (pm_service_t *self, double next_start, double now)
{
    assert (self->state == PM_STATE_FAILED
         || self->state == PM_STATE_COMPLETED);
    self->next_start = next_start;
    s_move (self, PM_STATE_BACKOFF, now);
}

void
pm_service_set_error (pm_service_t *self, const char *error)
{
    s_set_error (self, error);
}

double
pm_service_started_at (const pm_service_t *self)
{
    return self->started_at;
}

void
pm_service_signal_sent (pm_service_t *self, int signum)
{
    self->signal_sent = signum;
}

void
pm_service_stop_timeout (pm_service_t *self, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    if (self->state == PM_STATE_STOPPING && self->pgid > 0)
        action->kill_signal = SIGKILL;
}

void
pm_service_kill_now (pm_service_t *self, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    if (self->state == PM_STATE_STOPPING && self->pgid > 0) {
        action->kill_signal = SIGKILL;
        action->cancel_stop_timer = true;
    }
}

static void
s_record_status (pm_service_t *self, int status)
{
    if (WIFEXITED (status)) {
        self->has_exit_code = true;
        self->exit_code = WEXITSTATUS (status);
        self->exit_signal = 0;
    }
    else
    if (WIFSIGNALED (status)) {
        self->has_exit_code = false;
        self->exit_code = 0;
        self->exit_signal = WTERMSIG (status);
    }
}

static void
s_stopped (pm_service_t *self, double now, pm_action_t *action)
{
    self->group_pending = false;
    self->pgid = 0;
    action->cancel_stop_timer = true;
    if (self->fail_error) {
        //  Stopped by the agent because the run failed.
        s_set_error (self, self->fail_error);
        free (self->fail_error);
        self->fail_error = NULL;
        s_move (self, PM_STATE_FAILED, now);
    }
    else
        s_move (self, PM_STATE_STOPPED, now);
}

void
pm_service_exited (pm_service_t *self, int status, bool group_alive,
                   double now, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    assert (self->pid > 0);
    self->pid = 0;
    self->ready = false;
    s_record_status (self, status);
    if (self->state == PM_STATE_STOPPING) {
        if (group_alive)
            self->group_pending = true;
        else
            s_stopped (self, now, action);
        return;
    }
    assert (self->state == PM_STATE_STARTING
         || self->state == PM_STATE_RUNNING);
    //  An exit nobody asked for.  The group, if it outlives its leader, is
    //  the caller's to clean up; this run is over either way.
    self->pgid = 0;
    char text [128];
    if (self->exit_signal && self->exit_signal == self->signal_sent) {
        //  Killed by the signal a user asked the agent to send.
        s_set_error (self, NULL);
        s_move (self, PM_STATE_STOPPED, now);
    }
    else
    if (self->exit_signal) {
        const char *name = pm_signal_name (self->exit_signal);
        if (name)
            snprintf (text, sizeof text, "killed by %s", name);
        else
            snprintf (text, sizeof text, "killed by signal %d",
                      self->exit_signal);
        s_set_error (self, text);
        s_move (self, PM_STATE_FAILED, now);
    }
    else
    if (self->exit_code != 0) {
        snprintf (text, sizeof text, "exited with code %d", self->exit_code);
        s_set_error (self, text);
        s_move (self, PM_STATE_FAILED, now);
    }
    else {
        s_set_error (self, NULL);
        s_move (self, PM_STATE_COMPLETED, now);
    }
}

void
pm_service_group_gone (pm_service_t *self, double now, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    if (self->state == PM_STATE_STOPPING && self->group_pending)
        s_stopped (self, now, action);
}
