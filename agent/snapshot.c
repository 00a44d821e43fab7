/*  snapshot.c - the status snapshot file (snapshot.h) */
#include "snapshot.h"
#include "agentlog.h"
#include "lifecycle.h"

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
    uint64_t generation;      /* last written, 0: none */
    bool failing;             /* the last write failed (logged once) */
};

pm_snapshot_t *
pm_snapshot_new (const char *dir, const char *agent, double started_at)
{
    pm_snapshot_t *self = calloc (1, sizeof *self);
    assert (self);
    if (asprintf (&self->path, "%s/status.snapshot", dir) < 0)
        abort ();
    self->agent = strdup (agent);
    assert (self->agent);
    self->started_at = started_at;
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
    free (self);
    *self_p = NULL;
}

int
pm_snapshot_write (pm_snapshot_t *self, pm_reply_t *reply)
{
    free (reply->agent);
    reply->agent = strdup (self->agent);
    free (reply->version);
    reply->version = strdup (PM_VERSION);
    assert (reply->agent && reply->version);
    reply->agent_pid = getpid ();
    reply->started_at = self->started_at;
    reply->generation = self->generation + 1;
    char *data = NULL;
    size_t size = 0;
    if (pm_reply_encode (reply, &data, &size) == -1) {
        if (!self->failing)
            pm_log_error ("status snapshot: cannot encode generation %llu",
                          (unsigned long long) reply->generation);
        self->failing = true;
        return -1;
    }
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
