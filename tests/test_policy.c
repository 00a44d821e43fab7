/*  test_policy.c - the restart policy (agent/policy.c) with a fake clock

    No system call, no clock: times are plain numbers.  Covered: which
    endings the policy applies to for each `restart` value, the delay
    doubling up to backoff_max, a healthy run (min_uptime) restarted at once and resetting the
    count and the delay, giving up at max_restarts within restart_window
    with the text that says so, restarts older than the window forgotten,
    max_restarts 0 never giving up, reset on request, and a resize.
*/
#include "policy.h"
#include "check.h"

#include <math.h>
#include <string.h>

static pm_config_service_t
s_spec (pm_restart_t restart)
{
    pm_config_service_t spec;
    memset (&spec, 0, sizeof spec);
    spec.name = "svc";
    spec.restart = restart;
    spec.backoff_initial = 1.0;
    spec.backoff_max = 8.0;
    spec.max_restarts = 5;
    spec.restart_window = 60.0;
    spec.min_uptime = 10.0;
    return spec;
}

static bool
s_near (double a, double b)
{
    return fabs (a - b) < 1e-9;
}

static void
test_applies (void)
{
    static const struct {
        pm_restart_t restart;
        pm_state_t state;
        bool restarts;
    } table [] = {
        { PM_RESTART_NO,         PM_STATE_FAILED,    false },
        { PM_RESTART_NO,         PM_STATE_COMPLETED, false },
        { PM_RESTART_ON_FAILURE, PM_STATE_FAILED,    true  },
        { PM_RESTART_ON_FAILURE, PM_STATE_COMPLETED, false },
        { PM_RESTART_ALWAYS,     PM_STATE_FAILED,    true  },
        { PM_RESTART_ALWAYS,     PM_STATE_COMPLETED, true  },
        { PM_RESTART_ALWAYS,     PM_STATE_STOPPED,   false },
        { PM_RESTART_ALWAYS,     PM_STATE_RUNNING,   false },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++) {
        pm_config_service_t spec = s_spec (table [i].restart);
        pm_policy_t *policy = pm_policy_new (spec.max_restarts);
        pm_policy_decision_t d;
        pm_policy_decide (policy, &spec, table [i].state, 100.0, "x", 101.0,
                          &d);
        CHECK ((d.verdict == PM_POLICY_BACKOFF) == table [i].restarts);
        if (!table [i].restarts) {
            CHECK (d.verdict == PM_POLICY_STAY);
            CHECK (pm_policy_attempts (policy) == 0);
        }
        pm_policy_destroy (&policy);
        CHECK (policy == NULL);
    }
    pm_policy_t *none = NULL;
    pm_policy_destroy (&none);        //  destroying NULL does nothing
}

static void
test_delays (void)
{
    pm_config_service_t spec = s_spec (PM_RESTART_ON_FAILURE);
    spec.max_restarts = 0;      //  never give up
    pm_policy_t *policy = pm_policy_new (0);
    static const double want [] = { 1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8 };
    double now = 1000.0;
    for (size_t i = 0; i < sizeof want / sizeof want [0]; i++) {
        pm_policy_decision_t d;
        //  Each run lasted 1 s, less than min_uptime.
        pm_policy_decide (policy, &spec, PM_STATE_FAILED, now - 1.0,
                          "exited with code 1", now, &d);
        CHECK (d.verdict == PM_POLICY_BACKOFF);
        CHECK (s_near (d.delay, want [i]));
        CHECK (d.attempt == i + 1);
        now += d.delay + 1.0;
    }
    //  A healthy run: started again at once, and a crash loop after it
    //  starts from the first delay.
    pm_policy_decision_t d;
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, now - 10.0, "x", now, &d);
    CHECK (d.verdict == PM_POLICY_RESTART && d.delay == 0);
    CHECK (d.attempt == 1);
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, now + 0.5, "x",
                      now + 1.0, &d);
    CHECK (d.verdict == PM_POLICY_BACKOFF && s_near (d.delay, 1.0));
    //  A run that never started (exec failed) is not healthy.
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 0, "x", now + 100.0, &d);
    CHECK (d.verdict == PM_POLICY_BACKOFF && s_near (d.delay, 2.0));
    //  A start on request forgets.
    pm_policy_reset (policy);
    CHECK (pm_policy_attempts (policy) == 0);
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 0, "x", now + 200.0, &d);
    CHECK (s_near (d.delay, 1.0));
    pm_policy_destroy (&policy);
}

static void
test_give_up (void)
{
    pm_config_service_t spec = s_spec (PM_RESTART_ALWAYS);
    spec.max_restarts = 3;
    spec.restart_window = 60.0;
    spec.backoff_max = 1.0;
    pm_policy_t *policy = pm_policy_new (3);
    pm_policy_decision_t d;
    double now = 0.5;
    for (int i = 0; i < 3; i++) {
        pm_policy_decide (policy, &spec, PM_STATE_FAILED, now - 0.5,
                          "exited with code 2", now, &d);
        CHECK (d.verdict == PM_POLICY_BACKOFF);
        now += 2.0;
    }
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, now - 0.5,
                      "exited with code 2", now, &d);
    CHECK (d.verdict == PM_POLICY_GIVE_UP);
    CHECK (strcmp (d.reason, "gave up after 3 restarts within 60 s; last: "
                   "exited with code 2") == 0);
    //  A completed run's last error is its exit code 0.
    pm_policy_decide (policy, &spec, PM_STATE_COMPLETED, now - 0.5, NULL, now,
                      &d);
    CHECK (d.verdict == PM_POLICY_GIVE_UP);
    CHECK (strstr (d.reason, "last: exited with code 0") != NULL);
    //  Once the first restarts are older than the window, one more is
    //  allowed (restarts at 0.5, 2.5, 4.5: at 61.0 the first is gone).
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 60.9, "x", 61.0, &d);
    CHECK (d.verdict == PM_POLICY_BACKOFF);
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 61.5, "x", 61.6, &d);
    CHECK (d.verdict == PM_POLICY_GIVE_UP);
    //  A reload with another max_restarts forgets the window.
    pm_policy_resize (policy, 4);
    spec.max_restarts = 4;
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 61.7, "x", 61.8, &d);
    CHECK (d.verdict == PM_POLICY_BACKOFF);
    //  The same max_restarts keeps it.
    pm_policy_resize (policy, 4);
    for (int i = 0; i < 3; i++)
        pm_policy_decide (policy, &spec, PM_STATE_FAILED, 62.0, "x", 62.1, &d);
    CHECK (d.verdict == PM_POLICY_BACKOFF);
    pm_policy_decide (policy, &spec, PM_STATE_FAILED, 62.0, "x", 62.2, &d);
    CHECK (d.verdict == PM_POLICY_GIVE_UP);
    pm_policy_destroy (&policy);
}

int
main (void)
{
    test_applies ();
    test_delays ();
    test_give_up ();
    return check_report ("test_policy");
}
