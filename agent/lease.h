/*  lease.h - client processes that keep the agent alive

    Owns: the leased pids and a pidfd for each, watched in the event loop.
    When the last leased process exits, the owner's callback runs (the
    agent shuts down gracefully): a development environment's services go
    away when its last shell closes, with no watchdog process.

    pidfds are used because leased processes are not our children: a pid
    could be recycled, a pidfd cannot.
*/
#ifndef PM_LEASE_H
#define PM_LEASE_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pm_leases_t pm_leases_t;

/*  Called once when the last lease ends. */
typedef void (pm_leases_empty_fn) (void *arg);

pm_leases_t *pm_leases_new (zloop_t *loop, pm_leases_empty_fn *on_empty,
                            void *arg);
void pm_leases_destroy (pm_leases_t **self_p);

/*  Leases pid.  Returns 0 (also if already leased), or -1 with a message
    in err (no such process, or pidfds not supported). */
int pm_leases_add (pm_leases_t *self, pid_t pid, char *err, size_t errlen);

/*  Number of live leases, and a copy of their pids (up to max). */
size_t pm_leases_count (const pm_leases_t *self);
size_t pm_leases_list (const pm_leases_t *self, int64_t *pids, size_t max);

#endif
