/*  lifecycle.c - lock, pid file, stale sockets (lifecycle.h)

    The lock file is unlinked at release while still locked.  A second
    agent that opened the old file just before may then lock an unlinked
    inode; to close that race, acquire re-checks after locking that the
    path still names the inode it locked, and starts over if not.
*/
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_lifecycle_t {
    pm_paths_t paths;
    int lock_fd;              /* owned, holds the flock */
};

static void
s_unlink_ipc (const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) == 0)
        unlink (endpoint + 6);
}

pm_lifecycle_t *
pm_lifecycle_acquire (const pm_paths_t *paths, long *holder, char *err,
                      size_t errlen)
{
    *holder = 0;
    if (pm_rundir_make (paths, err, errlen) == -1)
        return NULL;
    int fd = -1;
    for (int attempt = 0; attempt < 10; attempt++) {
        fd = open (paths->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd == -1) {
            snprintf (err, errlen, "cannot open lock file %s: %s",
                      paths->lock, strerror (errno));
            return NULL;
        }
        if (flock (fd, LOCK_EX | LOCK_NB) == -1) {
            int error = errno;
            close (fd);
            if (error == EWOULDBLOCK) {
                long pid = pm_rundir_read_pid (paths);
                *holder = pid ? pid : -1;
                if (pid)
                    snprintf (err, errlen, "already running (pid %ld) with "
                              "runtime directory %s", pid, paths->dir);
                else
                    snprintf (err, errlen, "already running with runtime "
                              "directory %s", paths->dir);
            }
            else
                snprintf (err, errlen, "cannot lock %s: %s", paths->lock,
                          strerror (error));
            return NULL;
        }
        struct stat locked, named;
        if (fstat (fd, &locked) == 0 && stat (paths->lock, &named) == 0
        &&  locked.st_ino == named.st_ino && locked.st_dev == named.st_dev)
            break;
        //  The file was removed (its agent just exited) between our open
        //  and our lock: try again on the new one.
        close (fd);
        fd = -1;
    }
    if (fd == -1) {
        snprintf (err, errlen, "cannot take the lock %s: it keeps changing",
                  paths->lock);
        return NULL;
    }
    //  We hold the lock, so any socket file here belongs to a dead agent.
    s_unlink_ipc (paths->control);
    s_unlink_ipc (paths->events);

    pm_lifecycle_t *self = calloc (1, sizeof *self);
    if (!self) {
        close (fd);
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->paths = *paths;
    self->lock_fd = fd;
    if (pm_lifecycle_write_pid (self) == -1) {
        snprintf (err, errlen, "cannot write pid file %s: %s", paths->pidfile,
                  strerror (errno));
        pm_lifecycle_release (&self);
        return NULL;
    }
    return self;
}

int
pm_lifecycle_write_pid (pm_lifecycle_t *self)
{
    //  Write a temporary file and rename it, so a reader never sees a
    //  half-written pid.
    char temp [sizeof self->paths.pidfile + 8];
    snprintf (temp, sizeof temp, "%s.tmp", self->paths.pidfile);
    FILE *file = fopen (temp, "we");
    if (!file)
        return -1;
    fprintf (file, "%ld\n", (long) getpid ());
    if (fclose (file) != 0 || rename (temp, self->paths.pidfile) == -1) {
        unlink (temp);
        return -1;
    }
    return 0;
}

void
pm_lifecycle_release (pm_lifecycle_t **self_p)
{
    pm_lifecycle_t *self = *self_p;
    if (!self)
        return;
    s_unlink_ipc (self->paths.control);
    s_unlink_ipc (self->paths.events);
    unlink (self->paths.pidfile);
    unlink (self->paths.lock);
    close (self->lock_fd);
    free (self);
    *self_p = NULL;
}
