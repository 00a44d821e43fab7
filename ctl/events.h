/*  events.h - `pmctl events [-f] [--json] [NAME...]`

    Owns: the state snapshot (`status`, each record with the seq of its
    service's last transition), and with -f the stream of transitions
    after it: duplicates of the snapshot dropped by seq, gaps reported
    (state events cannot be fetched again), the human line of an event.

    Leaves to others: the session (follow.c), requests (client.c).
*/
#ifndef PM_EVENTS_H
#define PM_EVENTS_H

#include "cli.h"

/*  names: count service names (none: all).  Returns the exit code. */
int pm_events_run (const pm_cli_t *cli, char **names, int count);

#endif
