/*  snapshot.h - the status snapshot file in the runtime directory

    Owns: <runtime dir>/status.snapshot, the agent's answer to `status`
    for every service, kept as a file so that a reader (pmctl status, a
    shell prompt, a monitoring script) needs no round trip: a status
    reply encoded as on the wire, plus the agent's name, pid, version,
    start time and a generation number that grows by one per write
    (PROTOCOL.md section 12).

    Every write goes to a temporary file that is then renamed over the
    snapshot, so a reader that opens it sees one whole generation, never
    a torn one.  The supervisor writes once per loop pass in which a
    record changed, before any reply or event of that pass goes out.

    Leaves to others: what the records say and when to write (supervisor).
*/
#ifndef PM_SNAPSHOT_H
#define PM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "pm_proto.h"

typedef struct pm_snapshot_t pm_snapshot_t;

/*  The snapshot of agent (started at started_at, this run called
    instance) in dir.  Writes nothing yet. */
pm_snapshot_t *pm_snapshot_new (const char *dir, const char *agent,
                                double started_at, const char *instance);

/*  Removes the file (the agent is gone: a reader asks the lock, then
    finds no snapshot) and frees; NULL does nothing. */
void pm_snapshot_destroy (pm_snapshot_t **self_p);

/*  One service's record as the snapshot holds it: encoded when the record
    changed, and reused by every write until it changes again, so a write
    costs a copy per record, not an encoding (the caller keeps one per
    service; zeroed is empty). */
typedef struct {
    char *data;
    size_t size;
} pm_snapshot_record_t;

/*  Encodes record into cached, replacing what it held. */
void pm_snapshot_record_set (pm_snapshot_record_t *cached,
                             const pm_record_t *record);
void pm_snapshot_record_clear (pm_snapshot_record_t *cached);

/*  Writes the next generation: a status reply of the count records (in
    that order) and the leases, plus the agent's fields and the
    generation.  A failure is logged once until a write works again, and
    removes the file.  Returns 0 or -1. */
int pm_snapshot_write (pm_snapshot_t *self,
                       const pm_snapshot_record_t *const *records,
                       size_t count, const int64_t *leases,
                       size_t leases_count);

/*  The last generation written, 0 before the first. */
uint64_t pm_snapshot_generation (const pm_snapshot_t *self);

/*  The file's path. */
const char *pm_snapshot_path (const pm_snapshot_t *self);

#endif
