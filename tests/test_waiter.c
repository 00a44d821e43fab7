/*  test_waiter.c - the judgement of parked requests (agent/waiter.c)

    No system call, no clock, no supervisor: targets are plain structs.
    Covered: the outcome of one target for every command and wait against
    every state, written out here independently of waiter.c; queued stops
    and restarts always pending; a restart counted only for a newer run;
    `wait` for failed met by backoff; done over several targets; and the
    replies: per-target results and notes, the error for one and for
    several failures, timeouts and shutdown, and the wait-none reply.
*/
#include "waiter.h"
#include "check.h"

#include <string.h>

typedef struct {
    pm_waiter_target_t targets [4];
    size_t count;
} fixture_t;

static void
s_get (const void *arg, size_t k, pm_waiter_target_t *target)
{
    *target = ((const fixture_t *) arg)->targets [k];
}

static pm_waiter_target_t
s_target (const char *name, pm_state_t state)
{
    pm_waiter_target_t t;
    memset (&t, 0, sizeof t);
    t.name = name;
    t.state = state;
    t.spawns = t.spawns0 = 1;
    return t;
}

static pm_want_t
s_want (pm_cmd_t cmd, pm_wait_t wait)
{
    pm_want_t want = { 7, cmd, wait, PM_STATE_RUNNING, 5.0 };
    return want;
}

//  O ok, P pending, F fail, per state in pm_state_t order: inactive,
//  waiting, starting, running, stopping, stopped, completed, failed,
//  backoff.
static void
s_row (pm_cmd_t cmd, pm_wait_t wait, pm_state_t wait_for, const char *row,
       unsigned long spawns)
{
    for (int s = 0; s < PM_STATE_COUNT_; s++) {
        pm_want_t want = s_want (cmd, wait);
        want.wait_for = wait_for;
        pm_waiter_target_t t = s_target ("a", (pm_state_t) s);
        t.spawns = spawns;
        pm_outcome_t got = pm_waiter_outcome (&want, &t);
        pm_outcome_t expect = row [s] == 'O' ? PM_OUTCOME_OK
                            : row [s] == 'P' ? PM_OUTCOME_PENDING
                            : PM_OUTCOME_FAIL;
        if (got != expect)
            fprintf (stderr, "cmd %d wait %d state %s: got %d want %c\n",
                     cmd, wait, pm_state_name ((pm_state_t) s), got, row [s]);
        CHECK (got == expect);
        //  Queued to stop, or to start again: pending whatever the state
        //  (`wait` is met by the state it is in right now, queued or not).
        pm_outcome_t queued = cmd == PM_CMD_WAIT && expect == PM_OUTCOME_OK
                            ? PM_OUTCOME_OK : PM_OUTCOME_PENDING;
        t.stop_queued = true;
        CHECK (pm_waiter_outcome (&want, &t) == queued);
        t.stop_queued = false;
        t.start_after_stop = true;
        CHECK (pm_waiter_outcome (&want, &t) == queued);
    }
}

static void
test_outcomes (void)
{
    //                                                   IWSRTXCFB
    s_row (PM_CMD_START, PM_WAIT_RUNNING, 0,            "FPPOPFOFF", 1);
    s_row (PM_CMD_START, PM_WAIT_STARTED, 0,            "FPOOPFOFF", 1);
    s_row (PM_CMD_STOP, PM_WAIT_STOPPED, 0,             "OPPPPOOOP", 1);
    s_row (PM_CMD_RELOAD, PM_WAIT_RUNNING, 0,           "FPPOPFOFF", 1);
    //  A restart: a run newer than the request only (spawns > spawns0).
    s_row (PM_CMD_RESTART, PM_WAIT_RUNNING, 0,          "FPPPPFPFF", 1);
    s_row (PM_CMD_RESTART, PM_WAIT_RUNNING, 0,          "FPPOPFOFF", 2);
    s_row (PM_CMD_RESTART, PM_WAIT_STARTED, 0,          "FPOOPFOFF", 2);
    s_row (PM_CMD_RESTART, PM_WAIT_STARTED, 0,          "FPPPPFPFF", 1);
    //  `wait`: the state itself; pending while active; failed is also
    //  met by backoff.
    s_row (PM_CMD_WAIT, PM_WAIT_RUNNING, PM_STATE_RUNNING,   "FPPOPFFFP", 1);
    s_row (PM_CMD_WAIT, PM_WAIT_RUNNING, PM_STATE_STOPPED,   "FPPPPOFFP", 1);
    s_row (PM_CMD_WAIT, PM_WAIT_RUNNING, PM_STATE_FAILED,    "FPPPPFFOO", 1);
    s_row (PM_CMD_WAIT, PM_WAIT_RUNNING, PM_STATE_COMPLETED, "FPPPPFOFP", 1);
}

static void
test_done_and_reply (void)
{
    fixture_t f = { { s_target ("a", PM_STATE_RUNNING),
                      s_target ("b", PM_STATE_STARTING),
                      s_target ("c", PM_STATE_FAILED) }, 3 };
    f.targets [0].note = "already-running";
    f.targets [2].error = "exited with code 3";
    pm_want_t want = s_want (PM_CMD_START, PM_WAIT_RUNNING);
    CHECK (!pm_waiter_done (&want, s_get, &f, 3));
    CHECK (pm_waiter_done (&want, s_get, &f, 1));
    f.targets [1].state = PM_STATE_RUNNING;
    CHECK (pm_waiter_done (&want, s_get, &f, 3));
    pm_reply_t *reply = pm_waiter_reply (&want, s_get, &f, 3, PM_OK);
    CHECK (reply->id == 7);
    CHECK (!reply->ok);
    CHECK (reply->err == PM_ERR_FAILED);
    CHECK (strcmp (reply->message,
                   "cannot start c: exited with code 3") == 0);
    CHECK (reply->results_count == 3);
    CHECK (reply->results [0].ok && reply->results [1].ok);
    CHECK (strcmp (reply->results [0].note, "already-running") == 0);
    CHECK (!reply->results [2].ok);
    CHECK (strcmp (reply->results [2].error, "exited with code 3") == 0);
    CHECK (reply->results [2].state == PM_STATE_FAILED);
    pm_reply_destroy (&reply);

    //  Timed out: every pending target says how it still is.
    f.targets [0].state = PM_STATE_STARTING;
    f.targets [1].state = PM_STATE_WAITING;
    reply = pm_waiter_reply (&want, s_get, &f, 3, PM_ERR_TIMEOUT);
    CHECK (reply->err == PM_ERR_TIMEOUT);
    CHECK (strcmp (reply->message, "cannot start 3 of 3 services; "
                   "first a: still starting after 5s") == 0);
    CHECK (strcmp (reply->results [1].error, "still waiting after 5s") == 0);
    pm_reply_destroy (&reply);
    reply = pm_waiter_reply (&want, s_get, &f, 2, PM_ERR_SHUTTING_DOWN);
    CHECK (reply->err == PM_ERR_SHUTTING_DOWN);
    CHECK (strcmp (reply->results [0].error,
                   "agent shutting down while starting") == 0);
    pm_reply_destroy (&reply);

    //  `wait` out of reach, and a stop that stopped before it was up.
    want = s_want (PM_CMD_WAIT, PM_WAIT_RUNNING);
    want.wait_for = PM_STATE_RUNNING;
    reply = pm_waiter_reply (&want, s_get, &f.targets [2], 1, PM_OK);
    CHECK (strcmp (reply->message, "cannot wait for c: is failed: "
                   "exited with code 3, and cannot become running without "
                   "a command") == 0);
    pm_reply_destroy (&reply);
    want = s_want (PM_CMD_START, PM_WAIT_RUNNING);
    fixture_t g = { { s_target ("d", PM_STATE_STOPPED) }, 1 };
    reply = pm_waiter_reply (&want, s_get, &g, 1, PM_OK);
    CHECK (strcmp (reply->results [0].error, "stopped before it was up") == 0);
    pm_reply_destroy (&reply);
    //  All done: ok, no error.
    g.targets [0].state = PM_STATE_COMPLETED;
    reply = pm_waiter_reply (&want, s_get, &g, 1, PM_OK);
    CHECK (reply->ok && reply->results [0].ok);
    pm_reply_destroy (&reply);
}

static void
test_reply_now (void)
{
    fixture_t f = { { s_target ("a", PM_STATE_WAITING),
                      s_target ("b", PM_STATE_FAILED) }, 2 };
    f.targets [1].error = "exec: No such file or directory";
    pm_want_t want = s_want (PM_CMD_START, PM_WAIT_NONE);
    pm_reply_t *reply = pm_waiter_reply_now (&want, s_get, &f, 2);
    CHECK (!reply->ok);
    CHECK (strcmp (reply->message, "cannot start b: exec: No such "
                   "file or directory") == 0);
    CHECK (reply->results [0].ok && !reply->results [1].ok);
    CHECK (reply->results [0].state == PM_STATE_WAITING);
    pm_reply_destroy (&reply);
    //  A stop without waiting never fails.
    want = s_want (PM_CMD_STOP, PM_WAIT_NONE);
    reply = pm_waiter_reply_now (&want, s_get, &f, 2);
    CHECK (reply->ok && reply->results [1].ok);
    pm_reply_destroy (&reply);
}

int
main (void)
{
    test_outcomes ();
    test_done_and_reply ();
    test_reply_now ();
    return check_report ("test_waiter");
}
