/*  logs.h - `pmctl logs [-f] [-n N] [--json] [--no-color] [NAME...]`

    Owns: the tail of one, some or all services (one `logs` request, then
    one per service while a reply says there is more), merging services'
    lines by time, and with -f the live stream: each service's last
    printed seq, duplicates dropped, gaps fetched again with `logs since`,
    lines the agent no longer holds reported.

    Leaves to others: the session (follow.c), printing (lines.c),
    requests (client.c).
*/
#ifndef PM_LOGS_H
#define PM_LOGS_H

#include <stdint.h>

#include "cli.h"

/*  names: count service names (none: all); tail: -n.  Returns the exit
    code. */
int pm_logs_run (const pm_cli_t *cli, char **names, int count,
                 uint64_t tail);

#endif
