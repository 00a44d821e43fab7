/*  lease.h - client processes that keep the agent alive

    Owns: the leased pids and a pidfd for each, watched in the event loop.
    When the last leased process exits, the owner's callback runs (the
    agent shuts down gracefully): a development environment's services go
    away when its last shell closes, with no watchdog process.  Every
    change of the set is told to the owner (status replies and the status
    snapshot list the leases).

    pidfds are used because leased processes are not our children: a pid
    could be recycled, a pidfd cannot.
*/
#ifndef PM_LEASE_H
#define PM_LEASE_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pm_proto.h"

typedef struct pm_leases_t pm_leases_t;

/*  Called after every change of the set (a pid leased, a leased process
    ended) with the number of leases left: 0 means the last lease ended. */
typedef void (pm_leases_change_fn) (void *arg, size_t count);

pm_leases_t *pm_leases_new (zloop_t *loop, pm_leases_change_fn *on_change,
                            void *arg);
void pm_leases_destroy (pm_leases_t **self_p);

/*  Leases pid.  Returns 0 (also if already leased), or -1 with a message
    in err (no such process, or pidfds not supported). */
int pm_leases_add (pm_leases_t *self, pid_t pid, char *err, size_t errlen);

/*  Number of live leases, and a copy of their pids (up to max). */
size_t pm_leases_count (const pm_leases_t *self);
size_t pm_leases_list (const pm_leases_t *self, int64_t *pids, size_t max);

/*  Sets reply's `leases` to the leased pids (an empty list when self is
    NULL), as hello, status and lease replies carry them. */
void pm_leases_to_reply (const pm_leases_t *self, pm_reply_t *reply);

#endif
