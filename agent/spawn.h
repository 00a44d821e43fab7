/*  spawn.h - starting a service's process

    Owns: starting the child (clone, as vfork does: see spawn.c) and
    exec, the child's session and process group, its standard streams
    (stdin /dev/null, stdout and stderr on two pipes), its environment
    and working directory, and the close-on-exec status pipe
    that turns any failure in the child before exec (setsid, the standard
    streams, the notify descriptor, chdir, exec itself) into an error
    message instead of a service that seems to start and dies.

    Leaves to others: reading the pipes (logcap), reaping (reaper), and
    deciding when to spawn (supervisor).
*/
#ifndef PM_SPAWN_H
#define PM_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/*  What a spawn produced: the child's pid (leader of its own session and
    process group) and the read ends of its stdout and stderr pipes
    (non-blocking, close-on-exec; the caller owns them). */
typedef struct {
    pid_t pid;
    int out_fd;               /* -1 when quiet */
    int err_fd;               /* -1 when quiet */
    int notify_fd;            /* read end of the notify pipe, or -1 */
} pm_spawn_result_t;

typedef struct {
    char *const *extra_env;   /* "KEY=value" list, NULL-terminated, or NULL */
    bool quiet;               /* stdout and stderr to /dev/null, no pipes */
    int notify_fd;            /* >= 3: the write end of a pipe sits at this
                                 descriptor in the child (readiness notify) */
} pm_spawn_options_t;

/*  Runs spec.  Its environment is the agent's, then the config's
    `environment`, then options->extra_env, then PMBUS_SERVICE=<name>; a
    later one replaces an earlier one of the same key.  options may be
    NULL.  The calling thread must have SIGCHLD (and the
    agent's other signals) blocked; the child keeps them blocked through
    its setup, drops whatever arrived meanwhile (it was meant for the
    agent's process group), resets every disposition and unblocks
    everything just before exec.

    A `command` with no shell syntax is split on blanks and executed
    directly, so "not found" is an exec error; any other command runs as
    /bin/sh -c COMMAND.  `argv` is executed directly.  The PATH search is
    done before fork, so the child only calls async-signal-safe functions.

    Returns 0 and fills result once the child has exec'd; or -1 with a
    message in err naming the step that failed, such as "exec ./api: No
    such file or directory", "chdir /srv/x: Permission denied", "pipe: Too
    many open files", "dup2 onto notify_fd 200: Bad file descriptor" or
    "killed by SIGKILL before exec" (the child, if any, has been
    reaped). */
/*  Sets sig's disposition to handler (SIG_IGN or SIG_DFL) with the system
    call itself, which, unlike the C library's sigaction, also reaches the
    two signals the C library keeps for its threads (a parent may leave
    them ignored; a child resets them with this).  Does nothing on
    architectures whose kernel structure is not known here. */
void pm_spawn_set_disposition (int sig, void (*handler) (int));

int pm_spawn_run (const pm_config_service_t *spec,
                  const pm_spawn_options_t *options,
                  pm_spawn_result_t *result, char *err, size_t errlen);

/*  True if command needs a shell (it holds quoting, expansion, redirection,
    operators or comments). */
int pm_spawn_needs_shell (const char *command);

#endif
