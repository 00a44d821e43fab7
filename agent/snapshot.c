/*  snapshot.c - the status snapshot file (snapshot.h) */
#include "snapshot.h"
#include "agentlog.h"
#include "lifecycle.h"
#include "pm_frame.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pm_snapshot_t {
    char *path;               /* <dir>/status.snapshot, owned */
    char *agent;              /* the agent's name, owned */
    double started_at;        /* the agent's start, epoch seconds */
    char *instance;           /* this run of the agent, owned */
    uint64_t generation;      /* last written, 0: none */
    bool failing;             /* the last write failed (logged once) */
};

pm_snapshot_t *
pm_snapshot_new (const char *dir, const char *agent, double started_at,
                 const char *instance)
{
    pm_snapshot_t *self = calloc (1, sizeof *self);
    assert (self);
    if (asprintf (&self->path, "%s/status.snapshot", dir) < 0)
        abort ();
    self->agent = strdup (agent);
    assert (self->agent);
    self->started_at = started_at;
    self->instance = strdup (instance);
    assert (self->instance);
    return self;
}

void
pm_snapshot_destroy (pm_snapshot_t **self_p)
{
    pm_snapshot_t *self = *self_p;
    if (!self)
        return;
    if (self->generation)
        unlink (self->path);
    free (self->path);
    free (self->agent);
    free (self->instance);
    free (self);
    *self_p = NULL;
}

void
pm_snapshot_record_set (pm_snapshot_record_t *cached, const pm_record_t *record)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    pm_record_pack (&pk, record);
    //  Kept at its size: the buffer starts at 8 KiB, a record is ~265 bytes.
    free (cached->data);
    cached->data = malloc (buffer.size);
    assert (cached->data);
    memcpy (cached->data, buffer.data, buffer.size);
    cached->size = buffer.size;
    msgpack_sbuffer_destroy (&buffer);
}

void
pm_snapshot_record_clear (pm_snapshot_record_t *cached)
{
    free (cached->data);
    cached->data = NULL;
    cached->size = 0;
}

//  The generation's frame: what pm_reply_encode makes of a status reply
//  with the agent's fields, the records copied in as they are.
static void
s_pack (const pm_snapshot_t *self, msgpack_sbuffer *buffer,
        const pm_snapshot_record_t *const *records, size_t count,
        const int64_t *leases, size_t leases_count)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 11);
    pm_pack_str (&pk, "v");
    msgpack_pack_uint64 (&pk, PM_PROTOCOL_VERSION);
    pm_pack_str (&pk, "id");
    msgpack_pack_uint64 (&pk, 0);
    pm_pack_str (&pk, "ok");
    msgpack_pack_true (&pk);
    pm_pack_str (&pk, "services");
    msgpack_pack_array (&pk, (uint32_t) count);
    for (size_t i = 0; i < count; i++)
        msgpack_sbuffer_write (buffer, records [i]->data, records [i]->size);
    pm_pack_str (&pk, "leases");
    msgpack_pack_array (&pk, (uint32_t) leases_count);
    for (size_t i = 0; i < leases_count; i++)
        msgpack_pack_int64 (&pk, leases [i]);
    pm_pack_str (&pk, "agent");
    pm_pack_str (&pk, self->agent);
    pm_pack_str (&pk, "version");
    pm_pack_str (&pk, PM_VERSION);
    pm_pack_str (&pk, "pid");
    msgpack_pack_int64 (&pk, (int64_t) getpid ());
    pm_pack_str (&pk, "started_at");
    msgpack_pack_double (&pk, self->started_at);
    pm_pack_str (&pk, "generation");
    msgpack_pack_uint64 (&pk, self->generation + 1);
    pm_pack_str (&pk, "instance");
    pm_pack_str (&pk, self->instance);
}

int
pm_snapshot_write (pm_snapshot_t *self,
                   const pm_snapshot_record_t *const *records, size_t count,
                   const int64_t *leases, size_t leases_count)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_pack (self, &buffer, records, count, leases, leases_count);
    char *data = buffer.data;
    size_t size = buffer.size;
    int rc = pm_lifecycle_write_file (self->path, data, size);
    free (data);
    if (rc == -1) {
        if (!self->failing)
            pm_log_error ("status snapshot: cannot write %s: %s (pmctl "
                          "status asks the agent instead)", self->path,
                          strerror (errno));
        self->failing = true;
        //  An older generation must not pass for the truth: readers find
        //  no file and ask the agent.
        if (unlink (self->path) == -1 && errno != ENOENT)
            pm_log_error ("status snapshot: cannot remove the stale %s: %s",
                          self->path, strerror (errno));
        return -1;
    }
    if (self->failing)
        pm_log_info ("status snapshot: written again (%s)", self->path);
    self->failing = false;
    self->generation++;
    return 0;
}

uint64_t
pm_snapshot_generation (const pm_snapshot_t *self)
{
    return self->generation;
}

const char *
pm_snapshot_path (const pm_snapshot_t *self)
{
    return self->path;
}
