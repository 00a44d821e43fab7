/*  lifecycle.h - a daemon's claim on its runtime directory

    Owns: the runtime directory's lock, pid file and socket files, for
    pmd and for pmbroker alike (their files are named in pm_paths_t).  The
    lock is taken before anything is bound: libzmq unlinks whatever sits
    at an ipc:// path when it binds, so an agent that bound first would
    silently steal a live agent's endpoints.  Holding the lock proves
    liveness; sockets found while we hold it were left by a dead agent and
    are removed.
*/
#ifndef PM_LIFECYCLE_H
#define PM_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pm_rundir.h"

typedef struct pm_lifecycle_t pm_lifecycle_t;

/*  Creates the runtime directory, takes its lock, removes stale socket
    files and writes the pid file.  Returns NULL with a message in err;
    if another agent holds the lock, *holder is set to its pid (or -1 if
    unknown) and err names it. */
pm_lifecycle_t *pm_lifecycle_acquire (const pm_paths_t *paths, long *holder,
                                      char *err, size_t errlen);

/*  Kills (SIGKILL) every process whose initial environment holds
    PMBUS_RUNTIME_DIR=<paths->dir>, except ourselves and our ancestors:
    what an agent that died without shutting down left running.  Returns
    how many were killed.  Called by acquire when a stale pid file is
    found. */
int pm_lifecycle_kill_leftovers (const pm_paths_t *paths);

/*  Kills (SIGKILL) every process started with PMBUS_RUNTIME_DIR=dir and,
    with services_count services, PMBUS_SERVICE=one of them in its
    environment (except ourselves and our ancestors), counting in
    killed_each (services_count ints, or NULL) how many per service; each
    environment is read once, however many services: among our
    descendants only when
    descendants is true (cheap: what our services left), else among all
    processes (what a dead agent left).  Among our descendants, the
    subtrees of the skip_count pids in skip (the running services' main
    processes, whose processes carry their own service's marks) are not
    looked into: a sweep after one run ends reads the environment of
    what escaped, not of every service's processes.  Returns how many. */
int pm_lifecycle_kill_marked (const char *dir, const char *const *services,
                              size_t services_count, int *killed_each,
                              bool descendants, const pid_t *skip,
                              size_t skip_count);

/*  Replaces the file at path with size bytes of data: a temporary file
    beside it (path.tmp, mode 0600), then rename, so a reader (pmctl,
    another agent) sees the old content or the new, never half of it.
    Returns 0, or -1 with errno set; the temporary file is removed on
    failure. */
int pm_lifecycle_write_file (const char *path, const void *data,
                             size_t size);

/*  Writes the daemon's record <dir>/config (pm_loaded_t in pm_rundir.h):
    the absolute path of the config file it loaded, that file's identity
    as it was read (id, or NULL when unknown), and the endpoints.  A
    client finds the daemon by it without parsing the file while the
    file is the one loaded, and even when the file no longer parses.
    Atomic (a temporary file renamed over it).  Returns 0, or -1 with
    errno set. */
int pm_lifecycle_write_config (pm_lifecycle_t *self, const char *config_path,
                               const pm_file_id_t *id);

/*  Rewrites the pid file (after a fork into the background), atomically
    like the config file.  Returns 0, or -1 with errno set. */
int pm_lifecycle_write_pid (pm_lifecycle_t *self);

/*  One more ipc socket of the daemon's (the broker's agents endpoint):
    its file, which we hold the lock for, is removed now (a dead
    daemon's) and at release.  Up to 4; not ipc:// endpoints are
    ignored. */
void pm_lifecycle_add_socket (pm_lifecycle_t *self, const char *endpoint);

/*  Removes the socket files, the pid file and the lock file, then drops
    the lock. */
void pm_lifecycle_release (pm_lifecycle_t **self_p);

#endif
