/*  policy.h - the restart policy of one service, as a pure decision

    Owns: the memory of a service's past policy restarts (how many in a
    row since its last healthy run, and when, within restart_window), and
    the decision made when a run ends by itself: stay down, give up (with
    the text that says so), or back off for a delay before starting again.

    Leaves to others: the state change (the service table's backoff cell,
    service.c), the timer and the start (the supervisor).

    No system call and no clock: times come in as arguments, so the
    policy is tested with a fake clock (tests/test_policy.c).

    The rules, in the order they apply:
    - `restart = "no"` never restarts; "on-failure" restarts a failed run;
      "always" also a completed one (exit 0);
    - a run that lasted min_uptime or more was healthy: it is started
      again at once (like runit), and the count and the delay start again
      from the beginning;
    - a run that ended sooner is part of a crash loop:
      with max_restarts set, restarts older than restart_window are
      forgotten, and reaching max_restarts within it gives up; otherwise
      the delay is backoff_initial doubled for each restart in a row
      since the last healthy run, at most backoff_max.
*/
#ifndef PM_POLICY_H
#define PM_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pm_proto.h"

typedef struct pm_policy_t pm_policy_t;

typedef enum {
    PM_POLICY_STAY = 0,       /* the policy does not apply: stay down */
    PM_POLICY_GIVE_UP,        /* too many restarts: stay down, say why */
    PM_POLICY_RESTART,        /* a healthy run ended: start again at once */
    PM_POLICY_BACKOFF         /* start again after delay seconds */
} pm_policy_verdict_t;

typedef struct {
    pm_policy_verdict_t verdict;
    double delay;             /* BACKOFF: seconds until the next start */
    unsigned attempt;         /* BACKOFF: restarts in a row, this one included */
    char reason [PM_TEXT_MAX];/* GIVE_UP: the service's new error text */
} pm_policy_decision_t;

/*  A policy with no past, for a service allowing max_restarts. */
pm_policy_t *pm_policy_new (unsigned max_restarts);
void pm_policy_destroy (pm_policy_t **self_p);

/*  A reload changed max_restarts: the past is forgotten if it did. */
void pm_policy_resize (pm_policy_t *self, unsigned max_restarts);

/*  Forgets past restarts: a start on request, or a healthy run. */
void pm_policy_reset (pm_policy_t *self);

/*  Restarts in a row since the last healthy run or reset. */
unsigned pm_policy_attempts (const pm_policy_t *self);

/*  A run of spec ended by itself in state (failed or completed; other
    states stay), started at started_at (0: never ran, e.g. exec failed),
    its last error last_error (NULL: exited with code 0), at time now.
    Fills decision; a RESTART or BACKOFF is counted as a restart made at
    now. */
void pm_policy_decide (pm_policy_t *self, const pm_config_service_t *spec,
                       pm_state_t state, double started_at,
                       const char *last_error, double now,
                       pm_policy_decision_t *decision);

#endif
