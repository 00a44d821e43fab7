/*  remote.c - one command, one request, one reply (see remote.h)

    A waiting command (start, stop, restart with a wait; wait; shutdown)
    is bounded by the agent first: pmctl asks it to enforce --timeout and
    only adds a margin of its own, so the answer says where each target
    was.  A command that should be answered at once gets 10 s; past that
    the agent is "not responding" (exit 3).
*/
#include "remote.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmctl.h"
#include "render.h"
#include "snapfile.h"

//  pmctl's margin over the timeout it asked the agent to enforce.
#define S_MARGIN_MS 2000

pm_client_t *
pm_remote_client (const pm_cli_t *cli, bool warn)
{
    char err [PM_PATH_MAX + 256];
    pm_client_t *client = cli->connect
        ? pm_client_new_remote (cli->connect, cli->server_key, cli->key, err,
                                sizeof err)
        : pm_client_new (cli->config, cli->rundir, err, sizeof err);
    if (!client) {
        fprintf (stderr, "pmctl: %s\n", err);
        return NULL;
    }
    if (warn && pm_client_warning (client))
        fprintf (stderr, "pmctl: warning: %s (the agent is located anyway)\n",
                 pm_client_warning (client));
    return client;
}

int
pm_remote_add_agents (const pm_cli_t *cli, pm_request_t *request)
{
    if (cli->agents_count == 0 || request->cmd == PM_CMD_AGENTS)
        return 0;
    bool one = request->cmd == PM_CMD_HELLO || request->cmd == PM_CMD_RELOAD
            || request->cmd == PM_CMD_SHUTDOWN || request->cmd == PM_CMD_LEASE;
    if (one) {
        if (cli->agents_count > 1)
            return pm_cli_usage_error ("%s is for one agent: give --agent "
                                       "once", pm_cmd_name (request->cmd));
        request->agent = strdup (cli->agents [0]);
        if (!request->agent)
            abort ();
        return 0;
    }
    for (int i = 0; i < cli->agents_count; i++)
        if (pm_request_add_agent (request, cli->agents [i]) == -1)
            return pm_cli_usage_error ("bad agent name '%s'",
                                       cli->agents [i]);
    return 0;
}

//  How long pmctl waits for the reply, in ms (-1: no limit), and whether
//  the command waits for a state (*waits).
static int
s_answer_ms (const pm_request_t *request, double timeout, bool *waits)
{
    *waits = request->cmd == PM_CMD_SHUTDOWN
          || request->cmd == PM_CMD_WAIT
          || request->cmd == PM_CMD_RELOAD
          || ((request->cmd == PM_CMD_START || request->cmd == PM_CMD_STOP
            || request->cmd == PM_CMD_RESTART)
           && request->wait != PM_WAIT_NONE);
    if (!*waits)
        return PM_REMOTE_ANSWER_MS;
    if (request->cmd == PM_CMD_SHUTDOWN || request->cmd == PM_CMD_RELOAD)
        return timeout > 0 ? (int) ceil (timeout * 1000) : -1;
    return timeout > 0 ? (int) ceil (timeout * 1000) + S_MARGIN_MS : -1;
}

//  After a shutdown was accepted: waits for the agent's process to end,
//  within what is left of timeout.  Returns the exit code.
static int
s_wait_gone (const pm_cli_t *cli, pm_client_t *client, double timeout,
             long long started)
{
    int left = -1;
    if (timeout > 0) {
        long long spent = pm_client_now_ms () - started;
        left = (int) ceil (timeout * 1000) - (int) spent;
        if (left < 0)
            left = 0;
    }
    fflush (stdout);
    if (pm_client_wait_exit (client, left) == 0) {
        if (!cli->json)
            printf ("agent %s stopped\n", pm_client_name (client));
        return PM_EXIT_OK;
    }
    fprintf (stderr, "pmctl: timed out: agent %s still running after %g s\n",
             pm_client_name (client), timeout);
    return PM_EXIT_TIMEOUT;
}

//  For up's wait: a target the agent found completed is a one-shot that
//  ran and ended well, which is what "up" means for it.
static void
s_accept_completed (pm_reply_t *reply)
{
    size_t failed = 0;
    for (size_t i = 0; i < reply->results_count; i++) {
        pm_result_t *result = &reply->results [i];
        if (!result->ok && result->state == PM_STATE_COMPLETED) {
            result->ok = true;
            free (result->error);
            result->error = NULL;
        }
        if (!result->ok)
            failed++;
    }
    if (!reply->ok && failed == 0
    &&  (reply->err == PM_ERR_FAILED || reply->err == PM_ERR_TIMEOUT)) {
        reply->ok = true;
        reply->err = PM_OK;
        free (reply->message);
        reply->message = NULL;
    }
}

//  status without --live, while the agent's lock is held: the reply from
//  the agent's status snapshot, with no socket.  Returns 0 with the reply
//  as pm_client_call gives it, or -1 when the request must go to the
//  agent (no agent, no usable file: the live path then says why).
static int
s_snapshot (const pm_cli_t *cli, pm_client_t *client,
            const pm_request_t *request, pm_reply_t **reply_p,
            char **frame_p, size_t *size_p)
{
    if (request->cmd != PM_CMD_STATUS || cli->live
    ||  pm_client_is_remote (client))
        return -1;
    const pm_paths_t *paths = pm_client_paths (client);
    if (pm_rundir_agent_running (paths) != 1)
        return -1;
    return pm_snapfile_status (paths, pm_rundir_read_pid (paths), request,
                               pm_wall_clock (), reply_p, frame_p, size_p);
}

int
pm_remote_run (const pm_cli_t *cli, pm_client_t *client,
               pm_request_t *request, double timeout, unsigned flags)
{
    request->id = pm_client_next_id (client);
    long long started = pm_client_now_ms ();
    bool waits;
    int answer_ms = s_answer_ms (request, timeout, &waits);
    pm_reply_t *reply = NULL;
    char *frame = NULL;
    size_t size = 0;
    char err [PM_PATH_MAX + 256];
    int code = PM_EXIT_OK;
    pm_call_t call = s_snapshot (cli, client, request, &reply, &frame, &size)
                   ? pm_client_call (client, request, answer_ms, &reply,
                                     &frame, &size, err, sizeof err)
                   : PM_CALL_REPLY;
    switch (call) {
        case PM_CALL_REPLY:
            break;
        case PM_CALL_NO_AGENT:
            if (flags & PM_REMOTE_ABSENT_OK) {
                if (cli->json)
                    printf ("{\"running\":false}\n");
                else
                    printf ("no agent running\n");
                return PM_EXIT_OK;
            }
            fprintf (stderr, "pmctl: %s\n", err);
            return PM_EXIT_UNREACHABLE;
        case PM_CALL_NO_ANSWER:
            //  Past the agent's own timeout plus a margin it is a timeout;
            //  a command that should be answered at once is unreachable.
            if (waits) {
                fprintf (stderr, "pmctl: timed out: no answer from the "
                         "agent after %g s\n", answer_ms / 1000.0);
                return PM_EXIT_TIMEOUT;
            }
            fprintf (stderr, "pmctl: %s\n", err);
            return PM_EXIT_UNREACHABLE;
        default:
            fprintf (stderr, "pmctl: %s\n", err);
            return PM_EXIT_UNREACHABLE;
    }
    if (flags & PM_REMOTE_COMPLETED_OK)
        s_accept_completed (reply);
    bool quiet = (flags & PM_REMOTE_QUIET_OK) && reply->ok;
    if (cli->json && !quiet) {
        char *json = pm_json_from_msgpack (frame, size);
        printf ("%s\n", json ? json : "null");
        free (json);
    }
    //  Someone else's shutdown is already under way: ours waits for the
    //  same end.
    if (request->cmd == PM_CMD_SHUTDOWN && !reply->ok
    &&  reply->err == PM_ERR_SHUTTING_DOWN)
        code = PM_EXIT_OK;
    else
    if (quiet)
        code = pm_render_exit_code (reply);
    else
        code = pm_render_reply (stdout, stderr, request, reply,
                                pm_wall_clock (), cli->json);
    //  Through a broker the agent's answer is the end of it: it comes
    //  once every service is down, and the broker stays.
    if (request->cmd == PM_CMD_SHUTDOWN && code == PM_EXIT_OK
    &&  !request->agent)
        code = s_wait_gone (cli, client, timeout, started);
    pm_reply_destroy (&reply);
    free (frame);
    return code;
}
