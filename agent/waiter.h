/*  waiter.h - the judgement of a parked request, as pure decisions

    Owns: whether one target of a request that waits (start, stop,
    restart, wait, reload) is done, failed, or still pending; whether the
    whole request can be answered; and the reply it gets, with its
    per-target results, notes and error text.

    Leaves to others: parking the request, its timeout timer, sending the
    reply and freeing the client's envelope (commands.c); the states
    themselves (service, supervisor).

    Pure: every answer is read off the targets the caller describes
    through a getter; no system call, no clock (tests/test_waiter.c).

    A target is pending while it is queued to stop or to start again;
    otherwise:
    - `wait`: done in the wanted state (`failed` is also met by backoff),
      pending while active, failed when it cannot get there without a
      command;
    - wait stopped: done once it is not active;
    - wait started / running: done in starting (started only) or running
      or completed, counted only for a run newer than the request for a
      restart; pending in waiting or stopping; failed otherwise.
*/
#ifndef PM_WAITER_H
#define PM_WAITER_H

#include <stdbool.h>
#include <stddef.h>

#include "pm_proto.h"

/*  What a request waits for. */
typedef struct {
    uint64_t id;              /* the request's id, echoed in the reply */
    pm_cmd_t cmd;             /* start, stop, restart, wait or reload */
    pm_wait_t wait;           /* none, started, running or stopped */
    pm_state_t wait_for;      /* `wait`: the state */
    double timeout;           /* seconds, for the error text; 0: none */
} pm_want_t;

/*  One target as the judgement sees it. */
typedef struct {
    const char *name;
    pm_state_t state;
    bool stop_queued;         /* to be stopped once its dependents are down */
    bool start_after_stop;    /* to be started again once down */
    unsigned long spawns;     /* runs so far */
    unsigned long spawns0;    /* runs when the request came */
    const char *error;        /* its last error, or NULL */
    const char *note;         /* the per-target note of the reply, or NULL */
} pm_waiter_target_t;

/*  Fills target k (0 .. count - 1); its strings are borrowed until the
    caller changes that service. */
typedef void (pm_waiter_get_fn) (const void *arg, size_t k,
                                 pm_waiter_target_t *target);

typedef enum {
    PM_OUTCOME_PENDING = 0,
    PM_OUTCOME_OK,
    PM_OUTCOME_FAIL
} pm_outcome_t;

pm_outcome_t pm_waiter_outcome (const pm_want_t *want,
                                const pm_waiter_target_t *target);

/*  True when no target is pending: the request can be answered. */
bool pm_waiter_done (const pm_want_t *want, pm_waiter_get_fn *get,
                     const void *arg, size_t count);

/*  The reply of a request that waited.  code PM_OK means "judge from the
    outcomes"; anything else (timeout, shutting-down) is the error of
    every target not done.  The caller owns the reply. */
pm_reply_t *pm_waiter_reply (const pm_want_t *want, pm_waiter_get_fn *get,
                             const void *arg, size_t count, pm_err_t code);

/*  The reply of a request that does not wait (wait none): what was done
    and the states right now; a target that failed (but for a stop)
    fails the reply. */
pm_reply_t *pm_waiter_reply_now (const pm_want_t *want, pm_waiter_get_fn *get,
                                 const void *arg, size_t count);

#endif
