/*  reaper.c - signalfd and the waitpid loop (reaper.h)

    Each exit is handed over as soon as it is reaped, before the next
    waitpid: a handler may signal other processes, and none of them may be
    one reaped but not yet recorded as gone (its pid could be reused).  A
    SIGCHLD may stand for many exits, so the loop runs until waitpid says
    there is nothing left; what follows from the exits together (one
    settle of the supervisor) is done once, after the loop.
*/
#include "reaper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct pm_reaper_t {
    zloop_t *loop;            /* not owned */
    int fd;                   /* the signalfd, owned */
    pm_reaper_exit_fn *on_exit;     /* each reaped child */
    pm_reaper_done_fn *on_done;     /* after the loop's last one */
    pm_reaper_signal_fn *on_signal; /* SIGTERM, SIGINT, SIGHUP */
    void *arg;                /* theirs, not owned */
};

static void
s_mask (sigset_t *set)
{
    sigemptyset (set);
    sigaddset (set, SIGCHLD);
    sigaddset (set, SIGTERM);
    sigaddset (set, SIGINT);
    sigaddset (set, SIGHUP);
}

int
pm_reaper_block_signals (void)
{
    sigset_t set;
    s_mask (&set);
    struct sigaction ignore;
    memset (&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    if (sigaction (SIGPIPE, &ignore, NULL) == -1)
        return -1;
    return sigprocmask (SIG_BLOCK, &set, NULL);
}

int
pm_reaper_reap (pm_reaper_t *self)
{
    int total = 0;
    while (true) {
        int status;
        pid_t pid = waitpid (-1, &status, WNOHANG);
        if (pid == -1 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        self->on_exit (self->arg, pid, status);
        total++;
    }
    if (total)
        self->on_done (self->arg);
    return total;
}

static int
s_on_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_reaper_t *self = (pm_reaper_t *) arg;
    bool child = false;
    struct signalfd_siginfo info [16];
    while (true) {
        ssize_t got = read (self->fd, info, sizeof info);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (size_t i = 0; i < (size_t) got / sizeof info [0]; i++) {
            if (info [i].ssi_signo == SIGCHLD)
                child = true;
            else
                self->on_signal (self->arg, (int) info [i].ssi_signo);
        }
    }
    if (child)
        pm_reaper_reap (self);
    return 0;
}

pm_reaper_t *
pm_reaper_new (zloop_t *loop, pm_reaper_exit_fn *on_exit,
               pm_reaper_done_fn *on_done, pm_reaper_signal_fn *on_signal,
               void *arg)
{
    sigset_t set;
    s_mask (&set);
    int fd = signalfd (-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        return NULL;
    pm_reaper_t *self = calloc (1, sizeof *self);
    if (!self) {
        close (fd);
        return NULL;
    }
    self->loop = loop;
    self->fd = fd;
    self->on_exit = on_exit;
    self->on_done = on_done;
    self->on_signal = on_signal;
    self->arg = arg;
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    if (zloop_poller (loop, &item, s_on_readable, self) == 0)
        zloop_poller_set_tolerant (loop, &item);
    else {
        close (fd);
        free (self);
        return NULL;
    }
    return self;
}

void
pm_reaper_destroy (pm_reaper_t **self_p)
{
    pm_reaper_t *self = *self_p;
    if (!self)
        return;
    zmq_pollitem_t item = { NULL, self->fd, ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &item);
    close (self->fd);
    free (self);
    *self_p = NULL;
}
