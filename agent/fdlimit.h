/*  fdlimit.h - the agent's file descriptor limit, and the descriptors it
    keeps free for its clients

    Owns: raising the agent's soft RLIMIT_NOFILE to its hard limit at
    startup (a supervisor holds two pipes and a log file per service),
    the limit services get instead (the soft limit the agent started
    with: a service should not notice what its supervisor needed), and
    the headroom check every descriptor the agent opens for itself
    passes.

    Why the headroom: libzmq 4.3 aborts the whole process when accept on
    an ipc:// listener fails with EMFILE (an assertion in
    ipc_listener.cpp), so one `pmctl status` while the agent is out of
    descriptors would kill it.  The agent must never be the one that
    takes the last descriptors: its own (spawn pipes, log files, probe
    sockets, lease pidfds) fail with EMFILE while a reserve is still
    free, and that reserve is left to libzmq's accepts.

    Leaves to others: what to do with a descriptor that does not fit
    (each caller turns it into its own error: a failed start, a refused
    lease, a probe attempt that fails).
*/
#ifndef PM_FDLIMIT_H
#define PM_FDLIMIT_H

#include <sys/resource.h>

/*  Descriptors kept free by pm_fdlimit_check once the agent set them. */
#define PM_FDLIMIT_RESERVE 16

/*  At startup: remembers the soft limit for services, raises the agent's
    own to its hard limit, and keeps reserve descriptors free from then
    on.  Without this call (unit tests) nothing is kept free and services
    get the current limit.  Returns 0, or -1 with errno set if the limit
    could not be read or raised (the reserve applies anyway). */
int pm_fdlimit_init (int reserve);

/*  The descriptors kept free (0 before pm_fdlimit_init). */
int pm_fdlimit_reserve (void);

/*  The RLIMIT_NOFILE a service gets: the soft limit the agent started
    with, within the agent's current hard limit.  Returns 0 and fills
    limit, or -1 if services keep the agent's limit (no init). */
int pm_fdlimit_for_services (struct rlimit *limit);

/*  After opening descriptors for itself, the highest of them fd: 0 if the
    reserve is still free, else -1 with errno EMFILE (the caller closes
    what it just opened).  It counts the open descriptors under the soft
    limit (/proc/self/fd), taking none of the reserve itself but the one
    it reads with; except, in a table of more than 1024, for a new
    descriptor in its lower half while the table was not seen half full
    since: the kernel hands out the lowest free number, so the reserve is
    out of reach then (unless libzmq alone filled the upper half), and
    counting for every open would make a start of 1,000 services
    quadratic. */
int pm_fdlimit_check (int fd);

#endif
