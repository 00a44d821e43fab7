/*  up.h - the agent's life from pmctl: up, down, is-running, lease

    Owns: starting an agent in the background (finding pmd, running
    `pmd --daemon`, relaying its verdict), what `up` starts once the
    agent is there, `down` (shutdown that also accepts "no agent"),
    `is-running` (the lock alone, nothing sent) and `lease`.

    Leaves to others: the requests and their output (remote.c, render.c),
    the agent's location (client.c), the config rules (libpmconfig, schema/).
*/
#ifndef PM_UP_H
#define PM_UP_H

#include "cli.h"

/*  up [--lease PID] [--timeout S] [NAME...]: returns the exit code. */
int pm_up_run (const pm_cli_t *cli, char **names, int count);

/*  down [--timeout S]: timeout is the bound in seconds (0: none). */
int pm_up_down (const pm_cli_t *cli, double timeout);

/*  is-running [-q]. */
int pm_up_is_running (const pm_cli_t *cli);

/*  lease PID (already checked to be a pid). */
int pm_up_lease (const pm_cli_t *cli, const char *pid);

#endif
