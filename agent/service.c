/*  service.c - the supervision state machine of one service (service.h)

    The [state][event] table below is the whole machine: an event
    function looks its cell up, does the bookkeeping of the status fields
    that change with it, moves to the cell's next state and turns the
    cell's action into a pm_action_t.  No system calls, no clock.
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
    record->uptime = pm_uptime (self->pid, self->started_at, now);
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

/* ------------------------------------------------------------------ */
/*  The table                                                          */
/* ------------------------------------------------------------------ */

#define S_CELL(state, event, next, action, result) \
    [PM_STATE_##state][PM_ON_##event] = \
        { true, PM_STATE_##next, PM_DO_##action, PM_REQ_##result }
#define S_MOVE(state, event, next, action) \
    S_CELL (state, event, next, action, DONE)
#define S_REFUSE(state, event, result) \
    [PM_STATE_##state][PM_ON_##event] = \
        { false, PM_STATE_##state, PM_DO_NOTHING, PM_REQ_##result }

//  Every cell not listed is all zeros: refused (see pm_service_cell).
static const pm_service_cell_t s_table [PM_STATE_COUNT_][PM_ON_COUNT_] = {
    S_MOVE (INACTIVE,  START, WAITING, NOTHING),
    S_MOVE (STOPPED,   START, WAITING, NOTHING),
    S_MOVE (COMPLETED, START, WAITING, NOTHING),
    S_MOVE (FAILED,    START, WAITING, NOTHING),
    S_MOVE (BACKOFF,   START, WAITING, NOTHING),
    S_CELL (WAITING,   START, WAITING,  NOTHING, ALREADY),
    S_CELL (STARTING,  START, STARTING, NOTHING, ALREADY),
    S_CELL (RUNNING,   START, RUNNING,  NOTHING, ALREADY),
    S_REFUSE (STOPPING, START, BUSY),

    S_MOVE (WAITING,   SPAWNED,      STARTING, NOTHING),
    S_MOVE (WAITING,   SPAWN_FAILED, FAILED,   NOTHING),
    S_MOVE (STARTING,  READY,        RUNNING,  NOTHING),

    S_MOVE (STARTING,  STOP, STOPPING, SIGNAL_STOP),
    S_MOVE (RUNNING,   STOP, STOPPING, SIGNAL_STOP),
    S_MOVE (WAITING,   STOP, STOPPED,  NOTHING),
    S_MOVE (BACKOFF,   STOP, STOPPED,  NOTHING),
    S_CELL (STOPPING,  STOP, STOPPING, NOTHING, ALREADY),
    S_REFUSE (INACTIVE,  STOP, NOT_RUNNING),
    S_REFUSE (STOPPED,   STOP, NOT_RUNNING),
    S_REFUSE (COMPLETED, STOP, NOT_RUNNING),
    S_REFUSE (FAILED,    STOP, NOT_RUNNING),

    S_MOVE (STARTING,  FAIL, STOPPING, SIGNAL_STOP),
    S_MOVE (RUNNING,   FAIL, STOPPING, SIGNAL_STOP),

    S_MOVE (STARTING,  EXIT_OK,       COMPLETED, NOTHING),
    S_MOVE (RUNNING,   EXIT_OK,       COMPLETED, NOTHING),
    S_MOVE (STARTING,  EXIT_ERROR,    FAILED,    NOTHING),
    S_MOVE (RUNNING,   EXIT_ERROR,    FAILED,    NOTHING),
    S_MOVE (STARTING,  EXIT_SIGNALED, STOPPED,   NOTHING),
    S_MOVE (RUNNING,   EXIT_SIGNALED, STOPPED,   NOTHING),

    S_MOVE (STOPPING,  EXIT_GROUP_LEFT, STOPPING, NOTHING),
    S_MOVE (STOPPING,  DOWN,            STOPPED,  END_STOP),
    S_MOVE (STOPPING,  DOWN_FAILED,     FAILED,   END_STOP),
    S_MOVE (STOPPING,  STOP_TIMEOUT,    STOPPING, KILL),
    S_MOVE (STOPPING,  KILL_NOW,        STOPPING, KILL_NOW),

    S_MOVE (FAILED,    BACKOFF, BACKOFF, NOTHING),
    S_MOVE (COMPLETED, BACKOFF, BACKOFF, NOTHING),
};

pm_service_cell_t
pm_service_cell (pm_state_t state, pm_service_event_t event)
{
    assert ((int) state >= 0 && state < PM_STATE_COUNT_);
    assert ((int) event >= 0 && event < PM_ON_COUNT_);
    pm_service_cell_t cell = s_table [state][event];
    if (!cell.allowed && cell.result == PM_REQ_DONE)
        cell.result = PM_REQ_REFUSED;   //  left out of the table
    if (!cell.allowed)
        cell.next = state;
    return cell;
}

const char *
pm_service_event_name (pm_service_event_t event)
{
    static const char *names [PM_ON_COUNT_] = {
        "start", "spawned", "spawn-failed", "ready", "stop", "fail",
        "exit-ok", "exit-error", "exit-signaled", "exit-group-left", "down",
        "down-failed", "backoff", "stop-timeout", "kill-now"
    };
    return (int) event >= 0 && event < PM_ON_COUNT_ ? names [event] : "?";
}

//  Looks up event's cell; if allowed, fills action and moves.  Returns the
//  cell (its result says what a request gets).
static pm_service_cell_t
s_fire (pm_service_t *self, pm_service_event_t event, double now,
        pm_action_t *action)
{
    pm_service_cell_t cell = pm_service_cell (self->state, event);
    if (action)
        memset (action, 0, sizeof *action);
    if (!cell.allowed)
        return cell;
    if (action) {
        switch (cell.action) {
            case PM_DO_SIGNAL_STOP:
                action->kill_signal = self->spec->stop_signal;
                action->arm_stop_timer = true;
                break;
            case PM_DO_KILL:
                action->kill_signal = self->pgid > 0 ? SIGKILL : 0;
                break;
            case PM_DO_KILL_NOW:
                action->kill_signal = self->pgid > 0 ? SIGKILL : 0;
                action->cancel_stop_timer = self->pgid > 0;
                break;
            case PM_DO_END_STOP:
                action->cancel_stop_timer = true;
                break;
            case PM_DO_NOTHING:
                break;
        }
    }
    if (cell.next != self->state)
        s_move (self, cell.next, now);
    return cell;
}

static bool
s_allowed (const pm_service_t *self, pm_service_event_t event)
{
    return pm_service_cell (self->state, event).allowed;
}

/* ------------------------------------------------------------------ */
/*  Events                                                             */
/* ------------------------------------------------------------------ */

pm_req_result_t
pm_service_request_start (pm_service_t *self, double now)
{
    return s_fire (self, PM_ON_START, now, NULL).result;
}

void
pm_service_spawned (pm_service_t *self, pid_t pid, double now)
{
    assert (pid > 0);
    if (!s_allowed (self, PM_ON_SPAWNED))
        return;
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
    s_fire (self, PM_ON_SPAWNED, now, NULL);
}

void
pm_service_fail_start (pm_service_t *self, const char *error, double now)
{
    if (!s_allowed (self, PM_ON_SPAWN_FAILED))
        return;
    s_set_error (self, error);
    self->has_exit_code = false;
    self->exit_signal = 0;
    self->ready = false;
    s_fire (self, PM_ON_SPAWN_FAILED, now, NULL);
}

void
pm_service_ready (pm_service_t *self, double now)
{
    if (s_fire (self, PM_ON_READY, now, NULL).allowed)
        self->ready = true;
}

pm_req_result_t
pm_service_request_stop (pm_service_t *self, double now, pm_action_t *action)
{
    if (self->state == PM_STATE_STOPPING) {
        //  Asked to stop while the agent was failing it: a stop on
        //  request now.
        free (self->fail_error);
        self->fail_error = NULL;
    }
    return s_fire (self, PM_ON_STOP, now, action).result;
}

void
pm_service_fail (pm_service_t *self, const char *error, double now,
                 pm_action_t *action)
{
    if (s_fire (self, PM_ON_FAIL, now, action).allowed) {
        free (self->fail_error);
        self->fail_error = strdup (error);
    }
}

void
pm_service_backoff (pm_service_t *self, double next_start, double now)
{
    if (s_allowed (self, PM_ON_BACKOFF)) {
        self->next_start = next_start;
        s_fire (self, PM_ON_BACKOFF, now, NULL);
    }
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
    s_fire (self, PM_ON_STOP_TIMEOUT, 0, action);
}

void
pm_service_kill_now (pm_service_t *self, pm_action_t *action)
{
    s_fire (self, PM_ON_KILL_NOW, 0, action);
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

pm_service_event_t
pm_service_exit_event (const pm_service_t *self, int status, bool group_alive)
{
    if (self->state == PM_STATE_STOPPING) {
        if (group_alive)
            return PM_ON_EXIT_GROUP_LEFT;
        return self->fail_error ? PM_ON_DOWN_FAILED : PM_ON_DOWN;
    }
    if (WIFSIGNALED (status))
        return WTERMSIG (status) == self->signal_sent ? PM_ON_EXIT_SIGNALED
                                                      : PM_ON_EXIT_ERROR;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? PM_ON_EXIT_OK
                                                           : PM_ON_EXIT_ERROR;
}

//  The group of a stopping service is gone: stopped, or failed if the
//  agent was stopping it because the run failed.
static void
s_down (pm_service_t *self, pm_service_event_t event, double now,
        pm_action_t *action)
{
    self->group_pending = false;
    self->pgid = 0;
    if (event == PM_ON_DOWN_FAILED) {
        s_set_error (self, self->fail_error);
        free (self->fail_error);
        self->fail_error = NULL;
    }
    s_fire (self, event, now, action);
}

void
pm_service_exited (pm_service_t *self, int status, bool group_alive,
                   double now, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    pm_service_event_t event = pm_service_exit_event (self, status,
                                                      group_alive);
    if (!self->pid || !s_allowed (self, event))
        return;
    self->pid = 0;
    self->ready = false;
    s_record_status (self, status);
    char text [128];
    switch (event) {
        case PM_ON_EXIT_GROUP_LEFT:
            self->group_pending = true;
            s_fire (self, event, now, action);
            return;
        case PM_ON_DOWN:
        case PM_ON_DOWN_FAILED:
            s_down (self, event, now, action);
            return;
        case PM_ON_EXIT_SIGNALED:
        case PM_ON_EXIT_OK:
            s_set_error (self, NULL);
            break;
        default:
            if (self->exit_signal) {
                const char *name = pm_signal_name (self->exit_signal);
                if (name)
                    snprintf (text, sizeof text, "killed by %s", name);
                else
                    snprintf (text, sizeof text, "killed by signal %d",
                              self->exit_signal);
            }
            else
                snprintf (text, sizeof text, "exited with code %d",
                          self->exit_code);
            s_set_error (self, text);
            break;
    }
    //  An exit nobody asked for.  The group, if it outlives its leader, is
    //  the caller's to clean up; this run is over either way.
    self->pgid = 0;
    s_fire (self, event, now, action);
}

void
pm_service_group_gone (pm_service_t *self, double now, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    if (self->state == PM_STATE_STOPPING && self->group_pending)
        s_down (self, self->fail_error ? PM_ON_DOWN_FAILED : PM_ON_DOWN, now,
                action);
}
