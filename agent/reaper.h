/*  reaper.h - signals and child exits, through one signalfd

    Owns: the agent's signal mask, the signalfd in the event loop, and the
    waitpid loop.  Each exit is handed to the exit callback as soon as it
    is reaped, before the next waitpid (so no pid is ever reaped but not
    yet known to be gone), and the done callback once the loop has reaped
    them all (so what follows from many exits is done once); SIGTERM, SIGINT and SIGHUP go to the signal
    callback.

    Leaves to others: what an exit or a signal means (supervisor, main).
*/
#ifndef PM_REAPER_H
#define PM_REAPER_H

#include <czmq.h>
#include <sys/types.h>

typedef struct pm_reaper_t pm_reaper_t;

/*  pid exited with wait status `status`. */
typedef void (pm_reaper_exit_fn) (void *arg, pid_t pid, int status);
/*  The waitpid loop has reaped every child that had exited (called only
    after it reaped at least one). */
typedef void (pm_reaper_done_fn) (void *arg);
/*  A signal other than SIGCHLD arrived. */
typedef void (pm_reaper_signal_fn) (void *arg, int signum);

/*  Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP and ignores SIGPIPE in the
    calling thread.  Call before any other thread exists (before the first
    ZeroMQ socket), so libzmq's threads inherit the mask.  Returns 0 or -1. */
int pm_reaper_block_signals (void);

/*  A reaper reading its signalfd in loop.  Returns NULL on failure. */
pm_reaper_t *pm_reaper_new (zloop_t *loop, pm_reaper_exit_fn *on_exit,
                            pm_reaper_done_fn *on_done,
                            pm_reaper_signal_fn *on_signal, void *arg);
void pm_reaper_destroy (pm_reaper_t **self_p);

/*  Runs the waitpid loop now (also done on every SIGCHLD), then the done
    callback if it reaped any.  Returns the number of children reaped. */
int pm_reaper_reap (pm_reaper_t *self);

#endif
