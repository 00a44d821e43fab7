/*  lease.c - leased client processes (lease.h)

    A pidfd becomes readable when its process exits; the lease ends then.
    The callback fires on the transition to zero leases only, so an agent
    started without leases never shuts down for lack of them.
*/
#include "lease.h"
#include "agentlog.h"
#include "fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define s_LEASES_MAX 256

typedef struct {
    pid_t pid;
    int fd;                   /* pidfd, owned */
} s_lease_t;

struct pm_leases_t {
    zloop_t *loop;            /* not owned */
    s_lease_t leases [s_LEASES_MAX];
    size_t count;
    pm_leases_change_fn *on_change;
    void *arg;
};

static int
s_pidfd_open (pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int) syscall (SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

pm_leases_t *
pm_leases_new (zloop_t *loop, pm_leases_change_fn *on_change, void *arg)
{
    pm_leases_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->on_change = on_change;
    self->arg = arg;
    return self;
}

static void
s_remove (pm_leases_t *self, size_t i)
{
    zmq_pollitem_t item = { NULL, self->leases [i].fd, ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &item);
    close (self->leases [i].fd);
    self->leases [i] = self->leases [--self->count];
}

void
pm_leases_destroy (pm_leases_t **self_p)
{
    pm_leases_t *self = *self_p;
    if (!self)
        return;
    while (self->count)
        s_remove (self, self->count - 1);
    free (self);
    *self_p = NULL;
}

static int
s_on_exit (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_leases_t *self = (pm_leases_t *) arg;
    for (size_t i = 0; i < self->count; i++) {
        if (self->leases [i].fd != item->fd)
            continue;
        pm_log_info ("leased process %d exited; %zu lease%s left",
                     (int) self->leases [i].pid, self->count - 1,
                     self->count - 1 == 1 ? "" : "s");
        s_remove (self, i);
        if (self->on_change)
            self->on_change (self->arg, self->count);
        break;
    }
    return 0;
}

int
pm_leases_add (pm_leases_t *self, pid_t pid, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->leases [i].pid == pid)
            return 0;
    if (self->count == s_LEASES_MAX) {
        snprintf (err, errlen, "too many leases (%d at most)", s_LEASES_MAX);
        return -1;
    }
    int fd = s_pidfd_open (pid);
    if (fd != -1 && pm_fdlimit_check (fd) == -1) {
        close (fd);
        fd = -1;
    }
    if (fd == -1) {
        if (errno == ESRCH)
            snprintf (err, errlen, "no process %d", (int) pid);
        else
            snprintf (err, errlen, "cannot watch process %d: %s", (int) pid,
                      strerror (errno));
        return -1;
    }
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    //  Tolerant: an exited process's pidfd reports POLLHUP, which zloop
    //  would otherwise count as an error and drop.
    if (zloop_poller (self->loop, &item, s_on_exit, self) == 0)
        zloop_poller_set_tolerant (self->loop, &item);
    else {
        close (fd);
        snprintf (err, errlen, "cannot watch process %d", (int) pid);
        return -1;
    }
    self->leases [self->count].pid = pid;
    self->leases [self->count].fd = fd;
    self->count++;
    pm_log_info ("leased to process %d (%zu lease%s)", (int) pid,
                 self->count, self->count == 1 ? "" : "s");
    if (self->on_change)
        self->on_change (self->arg, self->count);
    return 0;
}

size_t
pm_leases_count (const pm_leases_t *self)
{
    return self->count;
}

size_t
pm_leases_list (const pm_leases_t *self, int64_t *pids, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count && n < max; i++)
        pids [n++] = self->leases [i].pid;
    return n;
}

void
pm_leases_to_reply (const pm_leases_t *self, pm_reply_t *reply)
{
    size_t count = self ? self->count : 0;
    free (reply->leases);
    reply->leases = calloc (count + 1, sizeof *reply->leases);
    assert (reply->leases);
    reply->leases_count = count ? pm_leases_list (self, reply->leases, count)
                                : 0;
}
