/*  pm_rundir.c - agent naming and runtime directory rule (see pm_rundir.h)

    Shared by pmd and the clients so both compute the same paths.  No
    state; the lock itself is taken by the agent (agent/lifecycle), this
    file only tests it.
*/
#include "pm_rundir.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t
s_fnv1a (const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        hash ^= *p;
        hash *= 1099511628211ULL;
    }
    return hash;
}

static int
s_name_char (int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int
pm_agent_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 64 || name [0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!s_name_char ((unsigned char) name [i]))
            return 0;
    return 1;
}

int
pm_agent_name_derive (const char *config_path, char *out, size_t size)
{
    //  The stem: the file name without its extension, or the directory's
    //  name for the conventional pmbus.cfg, which says nothing by itself.
    const char *slash = strrchr (config_path, '/');
    const char *file = slash ? slash + 1 : config_path;
    const char *stem = file;
    size_t stem_len = strcspn (file, ".");
    if (stem_len == 0)
        stem_len = strlen (file);
    if (strncmp (file, "pmbus", stem_len) == 0 && stem_len == 5 && slash) {
        const char *end = slash;
        const char *start = end;
        while (start > config_path && start [-1] != '/')
            start--;
        if (end > start) {
            stem = start;
            stem_len = (size_t) (end - start);
        }
    }
    char clean [33];
    size_t n = 0;
    for (size_t i = 0; i < stem_len && n < 32; i++) {
        int c = (unsigned char) stem [i];
        clean [n++] = s_name_char (c) ? (char) c : '_';
    }
    if (n == 0 || clean [0] == '.')
        clean [0] = '_';
    if (n == 0)
        n = 1;
    clean [n] = 0;
    int len = snprintf (out, size, "%s-%08" PRIx32, clean,
                        (uint32_t) (s_fnv1a (config_path) >> 32));
    return len < 0 || (size_t) len >= size ? -1 : 0;
}

static int
s_check_ipc (const char *endpoint, const char *what, char *err, size_t errlen)
{
    if (strncmp (endpoint, "ipc://", 6) != 0)
        return 0;
    size_t len = strlen (endpoint + 6);
    if (len > PM_SUN_PATH_MAX) {
        snprintf (err, errlen,
                  "%s socket path is %zu bytes, over the %d that a Unix "
                  "socket allows: %s (use a shorter --runtime-dir or "
                  "agent.name)", what, len, PM_SUN_PATH_MAX, endpoint + 6);
        return -1;
    }
    return 0;
}

int
pm_rundir_base (char *out, size_t size)
{
    const char *xdg = getenv ("XDG_RUNTIME_DIR");
    int len;
    if (xdg && *xdg == '/')
        len = snprintf (out, size, "%s/pmbus", xdg);
    else
        len = snprintf (out, size, "/tmp/pmbus-%u", (unsigned) getuid ());
    return len < 0 || (size_t) len >= size ? -1 : 0;
}

void
pm_file_id_of (const struct stat *st, pm_file_id_t *id)
{
    id->dev = (uint64_t) st->st_dev;
    id->ino = (uint64_t) st->st_ino;
    id->size = (uint64_t) st->st_size;
    id->mtime_ns = (int64_t) st->st_mtim.tv_sec * 1000000000
                 + st->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t) st->st_ctim.tv_sec * 1000000000
                 + st->st_ctim.tv_nsec;
}

bool
pm_file_id_equal (const pm_file_id_t *a, const pm_file_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size
        && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int
pm_loaded_format (const pm_loaded_t *self, char *buf, size_t size)
{
    char id [128] = "-";
    if (self->has_id)
        snprintf (id, sizeof id, "%" PRIu64 " %" PRIu64 " %" PRIu64
                  " %" PRId64 " %" PRId64, self->id.dev, self->id.ino,
                  self->id.size, self->id.mtime_ns, self->id.ctime_ns);
    int len = snprintf (buf, size, "%s\n%s\n%s\n%s\n", self->path, id,
                        self->control, self->events);
    return len < 0 || (size_t) len >= size ? -1 : len;
}

//  Reads one line of file into buf without its newline.  Returns 0, or
//  -1 at the end of the file or for a line too long.
static int
s_read_line (FILE *file, char *buf, size_t size)
{
    if (!fgets (buf, (int) size, file))
        return -1;
    size_t len = strlen (buf);
    if (len == 0 || buf [len - 1] != '\n')
        return -1;
    buf [len - 1] = 0;
    return 0;
}

int
pm_loaded_read (const char *file, pm_loaded_t *self)
{
    memset (self, 0, sizeof *self);
    FILE *stream = fopen (file, "re");
    if (!stream)
        return -1;
    char id [128];
    int rc = s_read_line (stream, self->path, sizeof self->path);
    if (rc == 0 && s_read_line (stream, id, sizeof id) == 0
    &&  s_read_line (stream, self->control, sizeof self->control) == 0
    &&  s_read_line (stream, self->events, sizeof self->events) == 0) {
        pm_file_id_t *p = &self->id;
        char end;
        self->has_id = sscanf (id, "%" SCNu64 " %" SCNu64 " %" SCNu64
                               " %" SCNd64 " %" SCNd64 "%c", &p->dev,
                               &p->ino, &p->size, &p->mtime_ns, &p->ctime_ns,
                               &end) == 5;
    }
    else {
        //  The path alone (an older agent's record).
        self->control [0] = self->events [0] = 0;
    }
    fclose (stream);
    return rc;
}

//  pm_rundir_agent_running on the lock file at path.
static int
s_lock_held (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT ? 0 : -1;
    int running;
    if (flock (fd, LOCK_SH | LOCK_NB) == 0)
        running = 0;
    else
        running = errno == EWOULDBLOCK ? 1 : -1;
    close (fd);
    return running;
}

int
pm_rundir_find_by_config (const char *config_path, char *name, size_t size,
                          pm_loaded_t *loaded)
{
    char base [PM_PATH_MAX];
    if (pm_rundir_base (base, sizeof base) == -1)
        return -1;
    DIR *dir = opendir (base);
    if (!dir)
        return -1;
    int rc = -1;
    struct dirent *entry;
    pm_loaded_t *record = malloc (sizeof *record);
    while (record && rc == -1 && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.' || !pm_agent_name_valid (entry->d_name))
            continue;
        //  The two files by hand, not pm_paths_init: this runs for every
        //  agent's directory on every pmctl command.
        char file [PM_PATH_MAX + 32], lock [PM_PATH_MAX + 32];
        if (snprintf (file, sizeof file, "%s/%s/config", base, entry->d_name)
            >= (int) sizeof file
        ||  snprintf (lock, sizeof lock, "%s/%s/pmd.lock", base, entry->d_name)
            >= (int) sizeof lock)
            continue;
        if (pm_loaded_read (file, record) == 0
        &&  strcmp (record->path, config_path) == 0
        &&  s_lock_held (lock) == 1
        &&  (size_t) snprintf (name, size, "%s", entry->d_name) < size) {
            if (loaded)
                *loaded = *record;
            rc = 0;
        }
    }
    free (record);
    closedir (dir);
    return rc;
}

int
pm_paths_init (pm_paths_t *paths, const char *name, const char *rundir,
               const char *control, const char *events,
               char *err, size_t errlen)
{
    memset (paths, 0, sizeof *paths);
    int len;
    if (rundir && *rundir)
        len = snprintf (paths->dir, sizeof paths->dir, "%s", rundir);
    else {
        const char *xdg = getenv ("XDG_RUNTIME_DIR");
        if (xdg && *xdg == '/')
            len = snprintf (paths->dir, sizeof paths->dir, "%s/pmbus/%s",
                            xdg, name);
        else
            len = snprintf (paths->dir, sizeof paths->dir,
                            "/tmp/pmbus-%u/%s", (unsigned) getuid (), name);
    }
    if (len < 0 || (size_t) len >= sizeof paths->dir) {
        snprintf (err, errlen, "runtime directory path too long");
        return -1;
    }
    //  Strip trailing slashes so the derived paths read cleanly.
    while (len > 1 && paths->dir [len - 1] == '/')
        paths->dir [--len] = 0;
    snprintf (paths->lock, sizeof paths->lock, "%s/pmd.lock", paths->dir);
    snprintf (paths->pidfile, sizeof paths->pidfile, "%s/pmd.pid", paths->dir);
    snprintf (paths->snapshot, sizeof paths->snapshot, "%s/status.snapshot",
              paths->dir);
    snprintf (paths->config, sizeof paths->config, "%s/config", paths->dir);
    if (control && *control)
        len = snprintf (paths->control, sizeof paths->control, "%s", control);
    else
        len = snprintf (paths->control, sizeof paths->control,
                        "ipc://%s/control.sock", paths->dir);
    if (len < 0 || (size_t) len >= sizeof paths->control) {
        snprintf (err, errlen, "control endpoint too long");
        return -1;
    }
    if (events && *events)
        len = snprintf (paths->events, sizeof paths->events, "%s", events);
    else
        len = snprintf (paths->events, sizeof paths->events,
                        "ipc://%s/events.sock", paths->dir);
    if (len < 0 || (size_t) len >= sizeof paths->events) {
        snprintf (err, errlen, "events endpoint too long");
        return -1;
    }
    if (s_check_ipc (paths->control, "control", err, errlen)
    ||  s_check_ipc (paths->events, "events", err, errlen))
        return -1;
    return 0;
}

static int
s_mkdir_private (const char *path, char *err, size_t errlen)
{
    if (mkdir (path, 0700) == -1 && errno != EEXIST) {
        snprintf (err, errlen, "cannot create runtime directory %s: %s",
                  path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (lstat (path, &st) == -1) {
        snprintf (err, errlen, "cannot stat %s: %s", path, strerror (errno));
        return -1;
    }
    if (!S_ISDIR (st.st_mode)) {
        snprintf (err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    if (st.st_uid != getuid ()) {
        snprintf (err, errlen, "%s is owned by uid %u, not by us (uid %u)",
                  path, (unsigned) st.st_uid, (unsigned) getuid ());
        return -1;
    }
    if ((st.st_mode & 077) && chmod (path, 0700) == -1) {
        snprintf (err, errlen, "cannot make %s private: %s", path,
                  strerror (errno));
        return -1;
    }
    return 0;
}

int
pm_rundir_make (const pm_paths_t *paths, char *err, size_t errlen)
{
    //  Create each missing component; only the last two (base and agent
    //  directory) are ours to check for ownership and mode.
    char path [PM_PATH_MAX];
    snprintf (path, sizeof path, "%s", paths->dir);
    char *slash = strrchr (path, '/');
    if (slash && slash != path) {
        *slash = 0;
        struct stat st;
        if (stat (path, &st) == -1) {
            //  Make the parents (only the base is normally missing).
            for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                    continue;
                *p = 0;
                if (mkdir (path, 0700) == -1 && errno != EEXIST) {
                    snprintf (err, errlen, "cannot create %s: %s", path,
                              strerror (errno));
                    return -1;
                }
                *p = '/';
            }
            if (s_mkdir_private (path, err, errlen))
                return -1;
        }
    }
    return s_mkdir_private (paths->dir, err, errlen);
}

int
pm_rundir_agent_running (const pm_paths_t *paths)
{
    return s_lock_held (paths->lock);
}

long
pm_rundir_read_pid (const pm_paths_t *paths)
{
    FILE *file = fopen (paths->pidfile, "re");
    if (!file)
        return 0;
    long pid = 0;
    if (fscanf (file, "%ld", &pid) != 1 || pid < 0)
        pid = 0;
    fclose (file);
    return pid;
}
