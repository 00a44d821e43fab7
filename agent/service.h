/*  service.h - the supervision state machine of one service

    Owns: one service's state, its status record fields (pid, times, exit
    status, restarts, error) and the rules that move it from state to
    state: one [state][event] table (pm_service_cell), the same one
    PROTOCOL.md section 7.3 lists as transitions.  Each event function
    looks up its cell, does the bookkeeping that goes with it, moves to
    the cell's next state and tells the caller what to do (send a signal,
    arm or cancel the stop timer).  An event whose cell is refused changes
    nothing.

    No system calls and no clock: times come in as arguments, so the
    machine is tested with synthetic events and a fake clock, and the
    table is walked cell by cell (tests/test_service.c).  The supervisor
    performs the actions, evaluates dependencies, decides restarts
    (policy) and publishes every transition (it learns of them through
    pm_service_take_transition).
*/
#ifndef PM_SERVICE_H
#define PM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "pm_proto.h"

typedef struct pm_service_t pm_service_t;

/*  What the caller must do after an event.  Several may be set. */
typedef struct {
    int kill_signal;          /* send this signal to the process group (0: none) */
    bool arm_stop_timer;      /* arm the stop timer for stop_timeout seconds */
    bool cancel_stop_timer;   /* cancel a stop timer that may be armed */
} pm_action_t;

/*  Results of a start or stop request. */
typedef enum {
    PM_REQ_DONE = 0,          /* the state changed (or will, via a queued step) */
    PM_REQ_ALREADY,           /* already in, or on its way to, the requested state */
    PM_REQ_NOT_RUNNING,       /* stop: there was nothing to stop */
    PM_REQ_BUSY,              /* start while stopping: nothing done; ask again
                                 once it is down (the supervisor keeps that
                                 wish as start_after_stop) */
    PM_REQ_REFUSED            /* any other event its state does not take */
} pm_req_result_t;

/*  The events of the table: one per thing that can happen to a service.
    An exit is told apart by what it means (see pm_service_exit_event). */
typedef enum {
    PM_ON_START = 0,          /* start requested */
    PM_ON_SPAWNED,            /* spawned, exec succeeded */
    PM_ON_SPAWN_FAILED,       /* spawn failed, or a dependency never can be met */
    PM_ON_READY,              /* readiness confirmed */
    PM_ON_STOP,               /* stop requested */
    PM_ON_FAIL,               /* a probe failed the run: stop it as a failure */
    PM_ON_EXIT_OK,            /* exited by itself with status 0 */
    PM_ON_EXIT_ERROR,         /* exited non-zero, or killed by a signal the
                                 agent did not send */
    PM_ON_EXIT_SIGNALED,      /* killed by the signal `signal` sent */
    PM_ON_EXIT_GROUP_LEFT,    /* stopping: main process gone, group members left */
    PM_ON_DOWN,               /* stopping: main process and group gone */
    PM_ON_DOWN_FAILED,        /* the same, for a stop that was a failure's */
    PM_ON_BACKOFF,            /* the restart policy starts it again later */
    PM_ON_STOP_TIMEOUT,       /* the stop timer fired */
    PM_ON_KILL_NOW,           /* shutdown asked twice */
    PM_ON_COUNT_
} pm_service_event_t;

/*  What a cell asks of the caller besides the move. */
typedef enum {
    PM_DO_NOTHING = 0,
    PM_DO_SIGNAL_STOP,        /* stop signal to the group, arm the stop timer */
    PM_DO_KILL,               /* SIGKILL to the group */
    PM_DO_KILL_NOW,           /* SIGKILL to the group, cancel the stop timer */
    PM_DO_END_STOP            /* cancel the stop timer: the group is gone */
} pm_service_do_t;

/*  One cell of the table. */
typedef struct {
    bool allowed;             /* false: refused, nothing changes */
    pm_state_t next;          /* allowed: the state after (the same: no move) */
    pm_service_do_t action;   /* allowed: what the caller must do */
    pm_req_result_t result;   /* what a request (start, stop) returns */
} pm_service_cell_t;

/*  The cell of event in state (both in range); a refused cell has its
    own state as next. */
pm_service_cell_t pm_service_cell (pm_state_t state, pm_service_event_t event);

/*  The event's and the action's names, for tests and logs. */
const char *pm_service_event_name (pm_service_event_t event);

/*  A new service in state inactive since now.  spec is borrowed and must
    outlive the service (or be replaced with pm_service_set_spec). */
pm_service_t *pm_service_new (const pm_config_service_t *spec, double now);
void pm_service_destroy (pm_service_t **self_p);

const pm_config_service_t *pm_service_spec (const pm_service_t *self);
void pm_service_set_spec (pm_service_t *self, const pm_config_service_t *spec);
const char *pm_service_name (const pm_service_t *self);
pm_state_t pm_service_state (const pm_service_t *self);
pid_t pm_service_pid (const pm_service_t *self);
/*  The process group of the current or last run (it may outlive the main
    process while stopping); 0 if none. */
pid_t pm_service_pgid (const pm_service_t *self);
/*  How many times it has been spawned since the agent loaded it. */
unsigned long pm_service_spawns (const pm_service_t *self);
/*  True in waiting, starting, running, stopping and backoff: a process
    exists or is on its way. */
bool pm_service_is_active (const pm_service_t *self);
/*  True while it has a main process (starting, running, stopping before
    the main process is reaped). */
bool pm_service_has_process (const pm_service_t *self);
const char *pm_service_error (const pm_service_t *self);

/*  Sequence number of its state event stream: the caller assigns the next
    one when it publishes a transition. */
uint64_t pm_service_next_seq (pm_service_t *self);

/*  Continues the state event sequence from seq (a service removed and
    added again keeps one stream per name). */
void pm_service_set_seq (pm_service_t *self, uint64_t seq);
uint64_t pm_service_seq (const pm_service_t *self);

/*  Fills record with the service's status at time now.  The record's
    strings are copies owned by the record (pm_record_clear frees them). */
void pm_service_record (const pm_service_t *self, double now,
                        pm_record_t *record);

/*  Returns true and the old and new states of the oldest transition not
    yet taken, in the order they happened; false when none is left.  The
    record of a transition is what pm_service_record gives right after
    it (the supervisor publishes each one before handling the next
    event, so they agree). */
bool pm_service_take_transition (pm_service_t *self, pm_state_t *old_state,
                                 pm_state_t *new_state);

/* --- Events ------------------------------------------------------- */

/*  Start requested.  inactive, stopped, completed, failed, backoff ->
    waiting (DONE).  stopping -> BUSY, nothing changes.  waiting,
    starting, running -> ALREADY. */
pm_req_result_t pm_service_request_start (pm_service_t *self, double now);

/*  Its dependencies are satisfied and the supervisor spawned it as pid.
    waiting -> starting. */
void pm_service_spawned (pm_service_t *self, pid_t pid, double now);

/*  Spawn failed (e.g. exec: No such file or directory), or a dependency
    can no longer be satisfied: waiting -> failed with error. */
void pm_service_fail_start (pm_service_t *self, const char *error, double now);

/*  Readiness confirmed: starting -> running. */
void pm_service_ready (pm_service_t *self, double now);

/*  Stop requested.  starting, running -> stopping, with the stop signal
    and the stop timer in action (DONE).  waiting, backoff -> stopped
    (DONE).  stopping -> ALREADY.
    inactive, stopped, completed, failed -> NOT_RUNNING. */
pm_req_result_t pm_service_request_stop (pm_service_t *self, double now,
                                         pm_action_t *action);

/*  The agent delivered signum to the main process on request (the
    `signal` command): if the process dies of that very signal, it was
    stopped on request, not failed. */
void pm_service_signal_sent (pm_service_t *self, int signum);

/*  The run must end as a failure (readiness deadline passed, liveness
    probe failed): starting, running -> stopping, with the stop signal and
    timer in action; once the group is gone -> failed with error. */
void pm_service_fail (pm_service_t *self, const char *error, double now,
                      pm_action_t *action);

/*  The restart policy will start it again at next_start: failed,
    completed -> backoff. */
void pm_service_backoff (pm_service_t *self, double next_start, double now);

/*  Replaces the error text (e.g. the restart policy gave up). */
void pm_service_set_error (pm_service_t *self, const char *error);

/*  Epoch seconds of the last spawn (0: never). */
double pm_service_started_at (const pm_service_t *self);

/*  The stop timer fired: SIGKILL to the group. */
void pm_service_stop_timeout (pm_service_t *self, pm_action_t *action);

/*  Shutdown was asked twice: skip what is left of stop_timeout. */
void pm_service_kill_now (pm_service_t *self, pm_action_t *action);

/*  The main process was reaped with wait status `status`.  group_alive
    tells whether other members of its process group still exist.
    starting, running: exit 0 -> completed, else -> failed (exit code or
    signal recorded; killed by the signal the `signal` command sent:
    -> stopped); remaining group members are left to the caller to
    clean up.  stopping: -> stopped once the group is gone (now, or at
    pm_service_group_gone), or -> failed if the stop was pm_service_fail's.
    While members of the group are left, it stays stopping with no pid. */
void pm_service_exited (pm_service_t *self, int status, bool group_alive,
                        double now, pm_action_t *action);

/*  What an exit with wait status `status` means in the service's state
    now (group_alive: members of its process group are left): one of the
    PM_ON_EXIT_* events, PM_ON_DOWN or PM_ON_DOWN_FAILED. */
pm_service_event_t pm_service_exit_event (const pm_service_t *self,
                                          int status, bool group_alive);

/*  The last member of a stopping service's process group is gone. */
void pm_service_group_gone (pm_service_t *self, double now,
                            pm_action_t *action);

/*  True while stopping with the main process reaped but group members
    left. */
bool pm_service_group_pending (const pm_service_t *self);

#endif
