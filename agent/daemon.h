/*  daemon.h - going into the background, and saying how the start went

    Owns: the double fork of `pmd --daemon` and `pmbroker --daemon`, and
    the pipe by which the process in the background tells the one that
    started it whether it came up.  The starting process waits for one
    line, "<exit code> <message>", and exits with that code (printing the
    message when it is not 0); EOF without a line (the daemon died) is
    exit 1.  So `--daemon` returns only once the daemon is bound and
    serving, or with its own error and exit code.
*/
#ifndef PM_DAEMON_H
#define PM_DAEMON_H

#include <stddef.h>

/*  Longest message that reaches the starting process. */
#define PM_DAEMON_MESSAGE_MAX 2048

/*  Forks into the background (new session, stdin on /dev/null, working
    directory "/").  Call before any thread exists.  Returns, in the
    daemon, the pipe's write end for pm_daemon_notify; the starting
    process never returns (it exits with what the daemon says).  program
    names the caller in the starting process's messages. */
int pm_daemon_start (const char *program);

/*  Tells the starting process how the start went (code 0: ready), then
    closes *fd and sets it to -1.  Does nothing when *fd is -1 (in the
    foreground, or already told). */
void pm_daemon_notify (int *fd, int code, const char *message);

/*  After the daemon said it is ready: stdout and stderr go to /dev/null
    (nothing more reaches the terminal it was started from), and the log
    stops writing to stderr. */
void pm_daemon_detach_stdio (void);

/*  A path given on the command line, made absolute while the current
    directory is still the caller's (a daemon works from "/").  Returns
    0, or -1 when it does not fit in size. */
int pm_daemon_absolute (const char *path, char *out, size_t size);

#endif
