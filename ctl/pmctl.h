/*  pmctl.h - what pmctl's modules share: its exit codes

    Owns: the exit code table printed by `pmctl --help` and documented in
    the README.  main.c, client.c and render.c each decide some of them;
    they all use these names so the table stays in one place.
*/
#ifndef PMCTL_H
#define PMCTL_H

typedef enum {
    /* success, notes such as already-running included */
    PM_EXIT_OK = 0,
    /* a target failed: "failed", "not-running", exited while starting */
    PM_EXIT_FAILED = 1,
    /* usage, unknown service, bad config, request refused */
    PM_EXIT_USAGE = 2,
    /* no agent, not answering, or exited before answering */
    PM_EXIT_UNREACHABLE = 3,
    /* a wait's timeout passed (the agent's, or pmctl's own) */
    PM_EXIT_TIMEOUT = 4
} pm_exit_t;

#endif
