/*  remote.h - one command, one request, one reply

    Owns: what every command that is a single request does around it:
    locating the agent (with the config warning), how long pmctl waits
    for the answer, what an unanswered request means (exit 3 or 4),
    printing the reply (human or --json), and for shutdown waiting until
    the agent's process is gone.

    Leaves to others: building the request (main.c, up.c), talking to the
    agent (client.c), the human output and the exit code of a reply
    (render.c).
*/
#ifndef PM_REMOTE_H
#define PM_REMOTE_H

#include <stdbool.h>

#include "cli.h"
#include "client.h"
#include "pm_proto.h"

/*  How long a command that does not wait may take to be answered, ms. */
#define PM_REMOTE_ANSWER_MS 10000

/*  --agent NAME: for hello, reload, shutdown and lease the one agent
    (args.agent), for the others the agents covered (args.agents).
    Returns 0, or the usage exit code after saying why. */
int pm_remote_add_agents (const pm_cli_t *cli, pm_request_t *request);

/*  Flags of pm_remote_run. */
#define PM_REMOTE_ABSENT_OK 0x01  /* no agent running is success: prints
                                     "no agent running", exit 0 (down) */
#define PM_REMOTE_QUIET_OK  0x02  /* print nothing for a successful reply
                                     (up: nothing to report) */
#define PM_REMOTE_COMPLETED_OK 0x04   /* wait: a target that completed
                                     reached it (up: a one-shot is done) */

/*  A client for the agent of cli's config (-c, -s).  Prints the config
    warning (a file broken since the agent loaded it) when warn is set.
    Returns NULL after printing the error (exit code 2: usage, config). */
pm_client_t *pm_remote_client (const pm_cli_t *cli, bool warn);

/*  Sends request (its id is set here), waits for the reply, prints it
    (its JSON with cli->json) and returns the exit code (pmctl.h).
    timeout is the command's own bound in seconds (0: none); for a
    waiting command the agent enforces it and pmctl adds a margin.  For
    shutdown, also waits until the agent's process has exited. */
int pm_remote_run (const pm_cli_t *cli, pm_client_t *client,
                   pm_request_t *request, double timeout, unsigned flags);

#endif
