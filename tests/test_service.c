/*  test_service.c - the service state machine on synthetic events

    No processes, no clock: every event is a function call with a made-up
    pid, wait status and time, and each test checks the state, the record
    fields and the actions asked for.
*/
#include "service.h"

#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>


//  Wait statuses as waitpid encodes them.
#define EXITED(code) (((code) & 0xff) << 8)
#define KILLED(sig)  ((sig) & 0x7f)

static pm_config_service_t
s_spec (const char *name)
{
    pm_config_service_t spec;
    memset (&spec, 0, sizeof spec);
    spec.name = (char *) name;
    spec.command = (char *) "sleep 100";
    spec.working_dir = (char *) "/";
    spec.stop_signal = SIGTERM;
    spec.stop_timeout = 10;
    spec.autostart = true;
    return spec;
}

//  Takes every pending transition; returns how many, last one in *last.
static int
s_drain (pm_service_t *svc, pm_state_t *last_old, pm_state_t *last_new)
{
    int count = 0;
    pm_state_t o, n;
    while (pm_service_take_transition (svc, &o, &n)) {
        if (last_old)
            *last_old = o;
        if (last_new)
            *last_new = n;
        count++;
    }
    return count;
}

static void
test_start_run_complete (void)
{
    pm_config_service_t spec = s_spec ("web");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    CHECK (pm_service_state (svc) == PM_STATE_INACTIVE);
    CHECK (!pm_service_is_active (svc));
    pm_record_t loaded;
    pm_service_record (svc, 1.0, &loaded);
    CHECK (loaded.state_since == 0.5);    //  inactive since it was loaded
    pm_record_clear (&loaded);

    CHECK (pm_service_request_start (svc, 100.0) == PM_REQ_DONE);
    CHECK (pm_service_state (svc) == PM_STATE_WAITING);
    pm_state_t o, n;
    CHECK (s_drain (svc, &o, &n) == 1);
    CHECK (o == PM_STATE_INACTIVE && n == PM_STATE_WAITING);
    CHECK (pm_service_request_start (svc, 100.5) == PM_REQ_ALREADY);

    pm_service_spawned (svc, 4242, 101.0);
    pm_service_ready (svc, 101.5);
    CHECK (s_drain (svc, &o, &n) == 2);
    CHECK (o == PM_STATE_STARTING && n == PM_STATE_RUNNING);
    CHECK (pm_service_pid (svc) == 4242);
    CHECK (pm_service_pgid (svc) == 4242);
    CHECK (pm_service_request_start (svc, 102.0) == PM_REQ_ALREADY);

    pm_record_t record;
    pm_service_record (svc, 111.0, &record);
    CHECK (strcmp (record.name, "web") == 0);
    CHECK (record.state == PM_STATE_RUNNING);
    CHECK (record.pid == 4242);
    CHECK (record.started_at == 101.0);
    CHECK (record.state_since == 101.5);
    CHECK (record.uptime == 10.0);
    CHECK (record.restarts == 0);
    CHECK (!record.has_exit_code);
    CHECK (record.signal == NULL);
    CHECK (record.ready);
    CHECK (record.error == NULL);
    CHECK (strcmp (record.command, "sleep 100") == 0);
    pm_record_clear (&record);

    pm_action_t action;
    pm_service_exited (svc, EXITED (0), false, 120.0, &action);
    CHECK (pm_service_state (svc) == PM_STATE_COMPLETED);
    CHECK (pm_service_pid (svc) == 0);
    CHECK (action.kill_signal == 0);
    pm_service_record (svc, 130.0, &record);
    CHECK (record.has_exit_code && record.exit_code == 0);
    CHECK (record.pid == 0);
    CHECK (record.uptime < 0);
    CHECK (!record.ready);
    pm_record_clear (&record);
    pm_service_destroy (&svc);
    CHECK (svc == NULL);
    pm_service_destroy (&svc);  //  destroying NULL does nothing
}

static void
test_crash_exit_code_and_signal (void)
{
    pm_config_service_t spec = s_spec ("worker");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 10, 2);
    pm_service_ready (svc, 2);
    pm_service_exited (svc, EXITED (3), false, 3, &action);
    CHECK (pm_service_state (svc) == PM_STATE_FAILED);
    CHECK (strcmp (pm_service_error (svc), "exited with code 3") == 0);
    pm_record_t record;
    pm_service_record (svc, 4, &record);
    CHECK (record.has_exit_code && record.exit_code == 3);
    CHECK (record.signal == NULL);
    pm_record_clear (&record);

    //  Again: restarts counts spawns after the first, and a kill by a
    //  signal nobody sent is a failure naming the signal.
    CHECK (pm_service_request_start (svc, 5) == PM_REQ_DONE);
    pm_service_spawned (svc, 11, 6);
    CHECK (pm_service_error (svc) == NULL);
    pm_service_ready (svc, 6);
    pm_service_exited (svc, KILLED (SIGKILL), false, 7, &action);
    CHECK (pm_service_state (svc) == PM_STATE_FAILED);
    CHECK (strcmp (pm_service_error (svc), "killed by SIGKILL") == 0);
    pm_service_record (svc, 8, &record);
    CHECK (!record.has_exit_code);
    CHECK (record.signal && strcmp (record.signal, "SIGKILL") == 0);
    CHECK (record.restarts == 1);
    pm_record_clear (&record);
    CHECK (s_drain (svc, NULL, NULL) == 8);
    pm_service_destroy (&svc);
}

static void
test_stop_and_escalation (void)
{
    pm_config_service_t spec = s_spec ("db");
    spec.stop_signal = SIGINT;
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    CHECK (pm_service_request_stop (svc, 1, &action) == PM_REQ_NOT_RUNNING);
    CHECK (action.kill_signal == 0);

    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 20, 2);
    pm_service_ready (svc, 2);
    s_drain (svc, NULL, NULL);
    CHECK (pm_service_request_stop (svc, 3, &action) == PM_REQ_DONE);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPING);
    CHECK (action.kill_signal == SIGINT);
    CHECK (action.arm_stop_timer);
    CHECK (pm_service_request_stop (svc, 3, &action) == PM_REQ_ALREADY);
    CHECK (action.kill_signal == 0);

    pm_service_stop_timeout (svc, &action);
    CHECK (action.kill_signal == SIGKILL);

    //  The main process is reaped but its group lives on: still stopping.
    pm_service_exited (svc, KILLED (SIGKILL), true, 13, &action);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPING);
    CHECK (pm_service_group_pending (svc));
    CHECK (pm_service_pid (svc) == 0);
    CHECK (pm_service_pgid (svc) == 20);
    CHECK (!action.cancel_stop_timer);
    pm_service_group_gone (svc, 14, &action);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPED);
    CHECK (action.cancel_stop_timer);
    CHECK (pm_service_pgid (svc) == 0);
    CHECK (pm_service_error (svc) == NULL);
    pm_record_t record;
    pm_service_record (svc, 15, &record);
    CHECK (record.signal && strcmp (record.signal, "SIGKILL") == 0);
    pm_record_clear (&record);
    pm_state_t o, n;
    s_drain (svc, &o, &n);
    CHECK (o == PM_STATE_STOPPING && n == PM_STATE_STOPPED);
    CHECK (pm_service_request_stop (svc, 16, &action) == PM_REQ_NOT_RUNNING);
    pm_service_destroy (&svc);
}

static void
test_stop_clean_exit (void)
{
    pm_config_service_t spec = s_spec ("api");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 30, 1);
    pm_service_ready (svc, 1);
    pm_service_request_stop (svc, 2, &action);
    pm_service_exited (svc, KILLED (SIGTERM), false, 2.5, &action);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPED);
    CHECK (action.cancel_stop_timer);
    //  Stopped on request is not an error.
    CHECK (pm_service_error (svc) == NULL);
    pm_service_destroy (&svc);
}

static void
test_waiting_cancel_and_fail (void)
{
    pm_config_service_t spec = s_spec ("api");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_request_start (svc, 1);
    CHECK (pm_service_request_stop (svc, 2, &action) == PM_REQ_DONE);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPED);
    CHECK (action.kill_signal == 0 && !action.arm_stop_timer);

    pm_service_request_start (svc, 3);
    pm_service_fail_start (svc, "exec ./api: No such file or directory", 4);
    CHECK (pm_service_state (svc) == PM_STATE_FAILED);
    CHECK (strcmp (pm_service_error (svc),
                   "exec ./api: No such file or directory") == 0);
    CHECK (pm_service_spawns (svc) == 0);
    CHECK (pm_service_pid (svc) == 0);
    pm_service_destroy (&svc);
}

static void
test_start_while_stopping (void)
{
    pm_config_service_t spec = s_spec ("api");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 40, 1);
    pm_service_ready (svc, 1);
    pm_service_request_stop (svc, 2, &action);
    //  Stopping: a start changes nothing; the caller asks again once down.
    CHECK (pm_service_request_start (svc, 2) == PM_REQ_BUSY);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPING);
    CHECK (s_drain (svc, NULL, NULL) == 4);
    pm_service_exited (svc, EXITED (0), false, 3, &action);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPED);
    CHECK (pm_service_request_start (svc, 3) == PM_REQ_DONE);
    CHECK (pm_service_state (svc) == PM_STATE_WAITING);
    pm_service_destroy (&svc);
}

static void
test_kill_now_and_seq (void)
{
    pm_config_service_t spec = s_spec ("x");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_kill_now (svc, &action);
    CHECK (action.kill_signal == 0);
    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 50, 1);
    pm_service_kill_now (svc, &action);
    CHECK (action.kill_signal == 0);     //  only while stopping
    pm_service_request_stop (svc, 2, &action);
    pm_service_kill_now (svc, &action);
    CHECK (action.kill_signal == SIGKILL && action.cancel_stop_timer);
    CHECK (pm_service_next_seq (svc) == 1);
    CHECK (pm_service_next_seq (svc) == 2);
    pm_record_t record;
    pm_service_record (svc, 3, &record);
    CHECK (record.seq == 2);
    pm_record_clear (&record);
    pm_service_destroy (&svc);
}

static void
test_argv_command_text (void)
{
    pm_config_service_t spec = s_spec ("argv");
    char *argv [] = { "python3", "-m", "http.server", NULL };
    spec.command = NULL;
    spec.argv = argv;
    spec.argc = 3;
    pm_config_dep_t deps [1] = { { "db", PM_COND_READY, 0 } };
    spec.deps = deps;
    spec.deps_count = 1;
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_record_t record;
    pm_service_record (svc, 1, &record);
    CHECK (strcmp (record.command, "python3 -m http.server") == 0);
    CHECK (record.deps_count == 1);
    CHECK (strcmp (record.deps [0].name, "db") == 0);
    CHECK (record.deps [0].cond == PM_COND_READY);
    CHECK (record.state == PM_STATE_INACTIVE);
    CHECK (record.pid == 0 && record.uptime < 0);
    pm_record_clear (&record);
    pm_service_destroy (&svc);
}

static void
test_signal_on_request (void)
{
    pm_config_service_t spec = s_spec ("hup");
    pm_service_t *svc = pm_service_new (&spec, 0.5);
    pm_action_t action;
    pm_service_request_start (svc, 1);
    pm_service_spawned (svc, 60, 1);
    pm_service_ready (svc, 1);
    //  Killed by the signal the user had the agent send: stopped, no error.
    pm_service_signal_sent (svc, SIGHUP);
    pm_service_exited (svc, KILLED (SIGHUP), false, 2, &action);
    CHECK (pm_service_state (svc) == PM_STATE_STOPPED);
    CHECK (pm_service_error (svc) == NULL);
    //  A new run forgets it: the same signal from elsewhere is a failure.
    pm_service_request_start (svc, 3);
    pm_service_spawned (svc, 61, 3);
    pm_service_ready (svc, 3);
    pm_service_exited (svc, KILLED (SIGHUP), false, 4, &action);
    CHECK (pm_service_state (svc) == PM_STATE_FAILED);
    CHECK (strcmp (pm_service_error (svc), "killed by SIGHUP") == 0);
    pm_service_destroy (&svc);
}


/* ------------------------------------------------------------------ */
/*  The table, walked cell by cell                                     */
/* ------------------------------------------------------------------ */

//  The expected table, written out here apart from service.c (and as
//  PROTOCOL.md section 7.3 lists it): for each state (rows, in pm_state_t
//  order) and event (columns, in pm_service_event_t order) the next state,
//  or '-' when the event is refused.  I inactive, W waiting, S starting,
//  R running, T stopping, X stopped, C completed, F failed, B backoff.
//
//                          start spawned spawn-failed ready stop fail
//                          exit-ok exit-error exit-signaled exit-group-left
//                          down down-failed backoff stop-timeout kill-now
static const char *s_expected [PM_STATE_COUNT_] = {
    /* inactive  */ "W-----" "----" "-----",
    /* waiting   */ "WSF-X-" "----" "-----",
    /* starting  */ "S--RTT" "CFX-" "-----",
    /* running   */ "R---TT" "CFX-" "-----",
    /* stopping  */ "----T-" "---T" "XF-TT",
    /* stopped   */ "W-----" "----" "-----",
    /* completed */ "W-----" "----" "--B--",
    /* failed    */ "W-----" "----" "--B--",
    /* backoff   */ "W---X-" "----" "-----",
};

static pm_state_t
s_letter_state (char c)
{
    const char *letters = "IWSRTXCFB";
    return (pm_state_t) (strchr (letters, c) - letters);
}

//  A service in state (a stopping one stopped by a failure if failing),
//  reached through the public events; its transitions taken.
static pm_service_t *
s_make (const pm_config_service_t *spec, pm_state_t state, bool failing)
{
    pm_service_t *svc = pm_service_new (spec, 1.0);
    pm_action_t action;
    if (state != PM_STATE_INACTIVE)
        pm_service_request_start (svc, 2.0);
    switch (state) {
        case PM_STATE_INACTIVE:
        case PM_STATE_WAITING:
            break;
        case PM_STATE_BACKOFF:
        case PM_STATE_FAILED:
            pm_service_fail_start (svc, "exec: nope", 3.0);
            if (state == PM_STATE_BACKOFF)
                pm_service_backoff (svc, 9.0, 3.0);
            break;
        default:
            pm_service_spawned (svc, 4242, 3.0);
            if (state == PM_STATE_STARTING)
                break;
            pm_service_ready (svc, 4.0);
            if (state == PM_STATE_RUNNING)
                break;
            if (state == PM_STATE_COMPLETED) {
                pm_service_exited (svc, EXITED (0), false, 5.0, &action);
                break;
            }
            if (failing)
                pm_service_fail (svc, "not alive", 5.0, &action);
            else
                pm_service_request_stop (svc, 5.0, &action);
            if (state == PM_STATE_STOPPED)
                pm_service_exited (svc, KILLED (SIGTERM), false, 6.0,
                                   &action);
            break;
    }
    s_drain (svc, NULL, NULL);
    CHECK (pm_service_state (svc) == state);
    return svc;
}

//  Feeds event through the public function that carries it.  Returns
//  false if that function cannot carry event in svc's state (an exit is
//  told apart by the state itself: see pm_service_exit_event).
static bool
s_feed (pm_service_t *svc, pm_service_event_t event, pm_action_t *action)
{
    memset (action, 0, sizeof *action);
    int status = 0;
    bool group_alive = false;
    switch (event) {
        case PM_ON_START:
            pm_service_request_start (svc, 7.0);
            return true;
        case PM_ON_SPAWNED:
            pm_service_spawned (svc, 5151, 7.0);
            return true;
        case PM_ON_SPAWN_FAILED:
            pm_service_fail_start (svc, "exec: nope", 7.0);
            return true;
        case PM_ON_READY:
            pm_service_ready (svc, 7.0);
            return true;
        case PM_ON_STOP:
            pm_service_request_stop (svc, 7.0, action);
            return true;
        case PM_ON_FAIL:
            pm_service_fail (svc, "not alive", 7.0, action);
            return true;
        case PM_ON_BACKOFF:
            pm_service_backoff (svc, 20.0, 7.0);
            return true;
        case PM_ON_STOP_TIMEOUT:
            pm_service_stop_timeout (svc, action);
            return true;
        case PM_ON_KILL_NOW:
            pm_service_kill_now (svc, action);
            return true;
        case PM_ON_EXIT_OK:
            status = EXITED (0);
            break;
        case PM_ON_EXIT_ERROR:
            status = EXITED (3);
            break;
        case PM_ON_EXIT_SIGNALED:
            pm_service_signal_sent (svc, SIGUSR1);
            status = KILLED (SIGUSR1);
            break;
        case PM_ON_EXIT_GROUP_LEFT:
            status = KILLED (SIGTERM);
            group_alive = true;
            break;
        case PM_ON_DOWN:
        case PM_ON_DOWN_FAILED:
            status = KILLED (SIGTERM);
            break;
        default:
            return false;
    }
    if (pm_service_exit_event (svc, status, group_alive) != event)
        return false;
    pm_service_exited (svc, status, group_alive, 7.0, action);
    return true;
}

static void
test_table_walk (void)
{
    pm_config_service_t spec = s_spec ("walk");
    size_t fed = 0;
    for (int st = 0; st < PM_STATE_COUNT_; st++)
        for (int ev = 0; ev < PM_ON_COUNT_; ev++) {
            pm_state_t state = (pm_state_t) st;
            pm_service_event_t event = (pm_service_event_t) ev;
            char want = s_expected [st][ev];
            pm_service_cell_t cell = pm_service_cell (state, event);
            bool allowed = want != '-';
            pm_state_t next = allowed ? s_letter_state (want) : state;
            if (cell.allowed != allowed || cell.next != next)
                fprintf (stderr, "cell [%s][%s]: allowed %d next %s, want "
                         "%c\n", pm_state_name (state),
                         pm_service_event_name (event), cell.allowed,
                         pm_state_name (cell.next), want);
            CHECK (cell.allowed == allowed);
            CHECK (cell.next == next);
            if (!allowed)
                CHECK (cell.action == PM_DO_NOTHING);
            //  And through the public event functions, from a service
            //  really in that state.
            bool failing = event == PM_ON_DOWN_FAILED
                        && state == PM_STATE_STOPPING;
            pm_service_t *svc = s_make (&spec, state, failing);
            pm_action_t action;
            if (s_feed (svc, event, &action)) {
                fed++;
                pm_state_t old_state = PM_STATE_COUNT_;
                pm_state_t new_state = PM_STATE_COUNT_;
                int moves = s_drain (svc, &old_state, &new_state);
                if (pm_service_state (svc) != next)
                    fprintf (stderr, "[%s][%s] went to %s, want %c\n",
                             pm_state_name (state),
                             pm_service_event_name (event),
                             pm_state_name (pm_service_state (svc)), want);
                CHECK (pm_service_state (svc) == next);
                CHECK (moves == (next != state ? 1 : 0));
                if (moves)
                    CHECK (old_state == state && new_state == next);
                //  The action asked for is the cell's.
                bool signals = action.kill_signal != 0;
                switch (cell.action) {
                    case PM_DO_SIGNAL_STOP:
                        CHECK (action.kill_signal == SIGTERM
                               && action.arm_stop_timer);
                        break;
                    case PM_DO_KILL:
                        CHECK (action.kill_signal == SIGKILL
                               && !action.arm_stop_timer);
                        break;
                    case PM_DO_KILL_NOW:
                        CHECK (action.kill_signal == SIGKILL
                               && action.cancel_stop_timer);
                        break;
                    case PM_DO_END_STOP:
                        CHECK (!signals && action.cancel_stop_timer);
                        break;
                    case PM_DO_NOTHING:
                        CHECK (!signals && !action.arm_stop_timer);
                        break;
                }
            }
            else
                //  An exit that means another event here: never a cell
                //  that could be reached by it.
                CHECK (event >= PM_ON_EXIT_OK && event <= PM_ON_DOWN_FAILED);
            pm_service_destroy (&svc);
        }
    //  Every event of every state but the exits the state tells apart.
    CHECK (fed > 100);
    //  Requests' results.
    CHECK (pm_service_cell (PM_STATE_STOPPING, PM_ON_START).result
           == PM_REQ_BUSY);
    CHECK (pm_service_cell (PM_STATE_RUNNING, PM_ON_START).result
           == PM_REQ_ALREADY);
    CHECK (pm_service_cell (PM_STATE_FAILED, PM_ON_STOP).result
           == PM_REQ_NOT_RUNNING);
    CHECK (pm_service_cell (PM_STATE_STOPPING, PM_ON_STOP).result
           == PM_REQ_ALREADY);
    CHECK (pm_service_cell (PM_STATE_INACTIVE, PM_ON_READY).result
           == PM_REQ_REFUSED);
    CHECK (pm_service_cell (PM_STATE_BACKOFF, PM_ON_START).result
           == PM_REQ_DONE);
}

int
main (void)
{
    test_table_walk ();
    test_signal_on_request ();
    test_start_run_complete ();
    test_crash_exit_code_and_signal ();
    test_stop_and_escalation ();
    test_stop_clean_exit ();
    test_waiting_cancel_and_fail ();
    test_start_while_stopping ();
    test_kill_now_and_seq ();
    test_argv_command_text ();
    return check_report ("test_service");
}
