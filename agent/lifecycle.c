/*  lifecycle.c - lock, pid file, stale sockets (lifecycle.h)

    The lock file is unlinked at release while still locked.  A second
    agent that opened the old file just before may then lock an unlinked
    inode; to close that race, acquire re-checks after locking that the
    path still names the inode it locked, and starts over if not.
*/
#include "lifecycle.h"
#include "agentlog.h"
#include "pm_proto.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_lifecycle_t {
    pm_paths_t paths;
    int lock_fd;              /* owned, holds the flock */
    char *sockets [4];        /* more ipc endpoints (add_socket), owned */
};

static void
s_unlink_ipc (const char *endpoint)
{
    if (strncmp (endpoint, "ipc://", 6) == 0)
        unlink (endpoint + 6);
}

//  True if pid is us or one of our ancestors.
static bool
s_is_ancestor (pid_t pid)
{
    pid_t walk = getpid ();
    for (int depth = 0; walk > 1 && depth < 64; depth++) {
        if (walk == pid)
            return true;
        char path [64];
        snprintf (path, sizeof path, "/proc/%d/stat", (int) walk);
        FILE *file = fopen (path, "re");
        if (!file)
            break;
        char buffer [512];
        size_t got = fread (buffer, 1, sizeof buffer - 1, file);
        fclose (file);
        buffer [got] = 0;
        //  "pid (comm) state ppid ...": comm may hold spaces and parens.
        char *close_paren = strrchr (buffer, ')');
        int ppid;
        if (!close_paren || sscanf (close_paren + 1, " %*c %d", &ppid) != 1)
            break;
        walk = ppid;
    }
    return false;
}

//  True if pid is gone or a zombie: not a live holder of anything.
static bool
s_dead (long pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/stat", pid);
    FILE *file = fopen (path, "re");
    if (!file)
        return true;
    char buffer [512];
    size_t got = fread (buffer, 1, sizeof buffer - 1, file);
    fclose (file);
    buffer [got] = 0;
    char *close_paren = strrchr (buffer, ')');
    return close_paren && (close_paren [2] == 'Z' || close_paren [2] == 'X');
}

//  Which of services (count of them) process pid was started for: the
//  index of the one its PMBUS_SERVICE names, when its environment also
//  holds marker_dir; with no services, 0 for any process with marker_dir;
//  -1 otherwise.
static int
s_marked_for (pid_t pid, const char *marker_dir, const char *const *services,
              size_t count)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/environ", (int) pid);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    //  The environment is NUL-separated; compare entry by entry.
    static char buffer [256 * 1024];
    ssize_t got = read (fd, buffer, sizeof buffer - 1);
    close (fd);
    if (got <= 0)
        return -1;
    buffer [got] = 0;
    bool in_dir = false;
    const char *service = NULL;
    for (char *entry = buffer; entry < buffer + got;
         entry += strlen (entry) + 1) {
        if (strcmp (entry, marker_dir) == 0)
            in_dir = true;
        else
        if (strncmp (entry, "PMBUS_SERVICE=", 14) == 0)
            service = entry + 14;
    }
    if (!in_dir)
        return -1;
    if (count == 0)
        return 0;
    for (size_t k = 0; service && k < count; k++)
        if (strcmp (service, services [k]) == 0)
            return (int) k;
    return -1;
}

//  Appends the children of every thread of pid to list.
static void
s_children (pid_t pid, pid_t **list, size_t *count, size_t *cap)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *tasks = opendir (path);
    if (!tasks)
        return;
    struct dirent *task;
    while ((task = readdir (tasks))) {
        if (task->d_name [0] == '.')
            continue;
        char file [sizeof task->d_name + 64];
        snprintf (file, sizeof file, "/proc/%d/task/%s/children", (int) pid,
                  task->d_name);
        FILE *children = fopen (file, "re");
        if (!children)
            continue;
        long child;
        while (fscanf (children, "%ld", &child) == 1) {
            if (*count == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *list = realloc (*list, *cap * sizeof **list);
                assert (*list);
            }
            (*list) [(*count)++] = (pid_t) child;
        }
        fclose (children);
    }
    closedir (tasks);
}

static int
s_compare_pids (const void *a, const void *b)
{
    pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
    return (x > y) - (x < y);
}

//  Removes from pids [0 .. *count) those in skip (sorted).
static void
s_drop_skipped (pid_t *pids, size_t *count, const pid_t *skip,
                size_t skip_count)
{
    size_t kept = 0;
    for (size_t i = 0; i < *count; i++)
        if (!bsearch (&pids [i], skip, skip_count, sizeof *skip,
                      s_compare_pids))
            pids [kept++] = pids [i];
    *count = kept;
}

//  Kills the processes in pids that s_marked_for finds, counting them per
//  service in killed (services_count of them, or one).
static void
s_kill_carrying (const pid_t *pids, size_t count, const char *marker_dir,
                 const char *const *services, size_t services_count,
                 int *killed)
{
    for (size_t i = 0; i < count; i++) {
        if (pids [i] <= 1)
            continue;
        int k = s_marked_for (pids [i], marker_dir, services, services_count);
        if (k >= 0 && !s_is_ancestor (pids [i]) && kill (pids [i], SIGKILL) == 0)
            killed [k]++;
    }
}

int
pm_lifecycle_kill_marked (const char *dir, const char *const *services,
                          size_t services_count, int *killed_each,
                          bool descendants, const pid_t *skip,
                          size_t skip_count)
{
    //  Every service gets PMBUS_RUNTIME_DIR=<dir> and PMBUS_SERVICE=<name>
    //  (spawn, supervisor), and /proc/<pid>/environ shows the environment a
    //  process started with: that finds processes that left their
    //  service's process group (setsid, double fork), or that an agent
    //  killed with SIGKILL left behind, without trusting pids.
    char marker_dir [PM_PATH_MAX + 32];
    snprintf (marker_dir, sizeof marker_dir, "PMBUS_RUNTIME_DIR=%s", dir);
    pid_t *pids = NULL;
    size_t count = 0, cap = 0;
    if (descendants) {
        //  The agent is a subreaper: whatever a service started and left
        //  is a descendant of ours, so only those need looking at.
        s_children (getpid (), &pids, &count, &cap);
        if (skip_count) {
            pid_t *sorted = malloc (skip_count * sizeof *sorted);
            assert (sorted);
            memcpy (sorted, skip, skip_count * sizeof *sorted);
            qsort (sorted, skip_count, sizeof *sorted, s_compare_pids);
            s_drop_skipped (pids, &count, sorted, skip_count);
            free (sorted);
        }
        for (size_t i = 0; i < count; i++)
            s_children (pids [i], &pids, &count, &cap);
    }
    else {
        DIR *proc = opendir ("/proc");
        if (!proc)
            return 0;
        struct dirent *entry;
        while ((entry = readdir (proc))) {
            char *end;
            long pid = strtol (entry->d_name, &end, 10);
            if (*end || pid <= 1)
                continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                pids = realloc (pids, cap * sizeof *pids);
                assert (pids);
            }
            pids [count++] = (pid_t) pid;
        }
        closedir (proc);
    }
    int one = 0;
    int *killed = killed_each ? killed_each : &one;
    if (killed_each)
        memset (killed_each, 0, (services_count ? services_count : 1)
                                * sizeof *killed_each);
    s_kill_carrying (pids, count, marker_dir, services, services_count,
                     killed);
    free (pids);
    int total = 0;
    for (size_t k = 0; k < (services_count ? services_count : 1); k++)
        total += killed [k];
    return killed_each ? total : one;
}

int
pm_lifecycle_kill_leftovers (const pm_paths_t *paths)
{
    return pm_lifecycle_kill_marked (paths->dir, NULL, 0, NULL, false, NULL,
                                     0);
}

pm_lifecycle_t *
pm_lifecycle_acquire (const pm_paths_t *paths, long *holder, char *err,
                      size_t errlen)
{
    *holder = 0;
    if (pm_rundir_make (paths, err, errlen) == -1)
        return NULL;
    int fd = -1;
    int waited_ms = 0;
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
            long pid = error == EWOULDBLOCK ? pm_rundir_read_pid (paths) : 0;
            //  The holder named is dead, yet the lock is held: a child it
            //  was starting still has the descriptor (it goes at exec,
            //  or when the child sees its parent gone).  Moments.
            if (pid > 0 && s_dead (pid) && waited_ms < 2000) {
                usleep (10 * 1000);
                waited_ms += 10;
                attempt--;
                continue;
            }
            if (error == EWOULDBLOCK) {
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
    //  We hold the lock, so any socket file here belongs to a dead agent,
    //  and so do any processes it left.
    s_unlink_ipc (paths->control);
    s_unlink_ipc (paths->events);
    if (access (paths->pidfile, F_OK) == 0) {
        int killed = pm_lifecycle_kill_leftovers (paths);
        if (killed)
            pm_log_warn ("killed %d process%s left by a previous agent of "
                         "%s", killed, killed == 1 ? "" : "es", paths->dir);
    }

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
pm_lifecycle_write_file (const char *path, const void *data, size_t size)
{
    //  No fsync: the runtime directory is volatile by design (a reboot
    //  empties XDG_RUNTIME_DIR, and a dead agent's files are rewritten by
    //  the next), so only atomicity matters.
    char temp [PM_PATH_MAX + 48];
    if ((size_t) snprintf (temp, sizeof temp, "%s.tmp", path) >= sizeof temp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    const char *bytes = (const char *) data;
    size_t done = 0;
    while (done < size) {
        ssize_t rc = write (fd, bytes + done, size - done);
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0) {
            if (rc == 0)
                errno = EIO;
            break;
        }
        done += (size_t) rc;
    }
    int error = done == size ? 0 : errno;
    if (close (fd) == -1 && !error)
        error = errno;
    if (!error && rename (temp, path) == -1)
        error = errno;
    if (error) {
        unlink (temp);
        errno = error;
        return -1;
    }
    return 0;
}

int
pm_lifecycle_write_config (pm_lifecycle_t *self, const char *config_path,
                           const pm_file_id_t *id)
{
    pm_loaded_t *record = calloc (1, sizeof *record);
    size_t size = sizeof *record + 256;
    char *text = malloc (size);
    assert (record && text);
    snprintf (record->path, sizeof record->path, "%s", config_path);
    record->has_id = id != NULL;
    if (id)
        record->id = *id;
    snprintf (record->control, sizeof record->control, "%s",
              self->paths.control);
    snprintf (record->events, sizeof record->events, "%s",
              self->paths.events);
    int len = pm_loaded_format (record, text, size);
    int rc = -1;
    if (len == -1)
        errno = ENAMETOOLONG;
    else
        rc = pm_lifecycle_write_file (self->paths.config, text, (size_t) len);
    free (text);
    free (record);
    return rc;
}

int
pm_lifecycle_write_pid (pm_lifecycle_t *self)
{
    char text [32];
    snprintf (text, sizeof text, "%ld\n", (long) getpid ());
    return pm_lifecycle_write_file (self->paths.pidfile, text, strlen (text));
}

void
pm_lifecycle_add_socket (pm_lifecycle_t *self, const char *endpoint)
{
    size_t count = sizeof self->sockets / sizeof self->sockets [0];
    for (size_t i = 0; i < count; i++)
        if (!self->sockets [i]) {
            s_unlink_ipc (endpoint);
            self->sockets [i] = strdup (endpoint);
            assert (self->sockets [i]);
            return;
        }
    assert (!"too many sockets");
}

void
pm_lifecycle_release (pm_lifecycle_t **self_p)
{
    pm_lifecycle_t *self = *self_p;
    if (!self)
        return;
    s_unlink_ipc (self->paths.control);
    s_unlink_ipc (self->paths.events);
    for (size_t i = 0; i < sizeof self->sockets / sizeof self->sockets [0]
                       && self->sockets [i]; i++) {
        s_unlink_ipc (self->sockets [i]);
        free (self->sockets [i]);
    }
    unlink (self->paths.pidfile);
    unlink (self->paths.config);
    unlink (self->paths.lock);
    close (self->lock_fd);
    free (self);
    *self_p = NULL;
}
