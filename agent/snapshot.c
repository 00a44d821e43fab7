/*  snapshot.c - the status snapshot file (snapshot.h) */
#include "snapshot.h"
#include "agentlog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pm_snapshot_t {
    char *path;               /* <dir>/status.snapshot, owned */
    char *temp;               /* <dir>/status.snapshot.tmp, owned */
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
    if (asprintf (&self->path, "%s/status.snapshot", dir) < 0
    ||  asprintf (&self->temp, "%s/status.snapshot.tmp", dir) < 0)
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
    unlink (self->temp);
    free (self->path);
    free (self->temp);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

//  Writes size bytes of data to a new temporary file, then renames it
//  over the snapshot.  Returns 0, or -1 with errno set and what failed.
static int
s_replace (pm_snapshot_t *self, const char *data, size_t size,
           const char **what)
{
    *what = "open";
    int fd = open (self->temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0600);
    if (fd == -1)
        return -1;
    size_t done = 0;
    *what = "write";
    while (done < size) {
        ssize_t rc = write (fd, data + done, size - done);
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0) {
            if (rc == 0)
                errno = EIO;
            int saved = errno;
            close (fd);
            unlink (self->temp);
            errno = saved;
            return -1;
        }
        done += (size_t) rc;
    }
    *what = "close";
    if (close (fd) == -1) {
        int saved = errno;
        unlink (self->temp);
        errno = saved;
        return -1;
    }
    //  The rename is what makes it whole for readers: the old file or
    //  the new one, never a mix.
    *what = "rename";
    if (rename (self->temp, self->path) == -1) {
        int saved = errno;
        unlink (self->temp);
        errno = saved;
        return -1;
    }
    return 0;
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
    const char *what;
    int rc = s_replace (self, data, size, &what);
    free (data);
    if (rc == -1) {
        if (!self->failing)
            pm_log_error ("status snapshot: %s %s: %s (pmctl status asks "
                          "the agent instead)", what, self->temp,
                          strerror (errno));
        self->failing = true;
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
