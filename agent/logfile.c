/*  logfile.c - a service's log file (logfile.h)

    Whole entries only: a write cut short by a full disk leaves part of an
    entry at the end of the file; the file is truncated back to the last
    whole entry, so the marker and what follows start on a line of their
    own.  (If even that fails, the marker starts with a newline.)

    A failed write costs one system call per chunk of output and nothing
    else, so the service is never slowed down: its lines still go to the
    ring and to subscribers.  Errors are counted per episode, which ends
    when the marker and the entries after it are written.

    A rotation renames from the oldest backup down; the first rename that
    fails (for a reason other than a name not there yet) stops it, and
    the current file stays open: nothing already written is lost or
    overwritten, the file grows past its limit instead.
*/
#include "logfile.h"
#include "fdlimit.h"
#include "agentlog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define s_PATH_MAX 4096
#define s_TEXT_MAX (PM_NAME_MAX + 256)
#define s_MARKER_MAX (6 * s_TEXT_MAX + 6 * PM_NAME_MAX + 128)

struct pm_logfile_t {
    char *service;            /* owned */
    char *path;               /* owned */
    int fd;                   /* owned, -1 if it could not be (re)opened */
    uint64_t size;            /* bytes in the current file */
    pm_config_log_t settings;
    pm_publish_t *pub;        /* not owned, may be NULL */
    int failed;               /* errno of the write failure going on, or 0 */
    uint64_t missing;         /* entries not written since then */
    bool torn;                /* the file ends in part of an entry */
    bool rotate_failed;       /* the last rotation failed (logged) */
    uint64_t rotate_skip;     /* bytes written before that rotation failed:
                                 the next try waits for log_max_size more */
};

static int
s_mkdirs (const char *dir)
{
    char path [4096];
    snprintf (path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (path, 0755) == -1 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (path, 0755) == -1 && errno != EEXIST)
        return -1;
    return 0;
}

//  Opens path for appending, creating its directory.  Returns the fd, or
//  -1 with a message in err.
static int
s_open (const char *path, int flags, char *err, size_t errlen)
{
    char dir [4096];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (s_mkdirs (dir) == -1) {
            snprintf (err, errlen, "cannot create log directory %s: %s", dir,
                      strerror (errno));
            return -1;
        }
    }
    //  0600, like the agent's own log: services' output can hold secrets;
    //  never into the descriptors kept for clients (fdlimit.h).
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags,
                   0600);
    if (fd != -1 && pm_fdlimit_check (fd) == -1) {
        close (fd);
        fd = -1;
    }
    if (fd == -1)
        snprintf (err, errlen, "cannot open log file %s: %s", path,
                  strerror (errno));
    return fd;
}

static uint64_t
s_file_size (int fd)
{
    struct stat st;
    return fstat (fd, &st) == 0 ? (uint64_t) st.st_size : 0;
}

pm_logfile_t *
pm_logfile_new (const char *service, const char *path,
                const pm_config_log_t *settings, pm_publish_t *pub, char *err,
                size_t errlen)
{
    int fd = s_open (path, 0, err, errlen);
    if (fd == -1)
        return NULL;
    pm_logfile_t *self = calloc (1, sizeof *self);
    assert (self);
    self->service = strdup (service);
    self->path = strdup (path);
    assert (self->service && self->path);
    self->fd = fd;
    self->size = s_file_size (fd);
    self->settings = *settings;
    self->pub = pub;
    return self;
}

void
pm_logfile_destroy (pm_logfile_t **self_p)
{
    pm_logfile_t *self = *self_p;
    if (!self)
        return;
    if (self->fd != -1)
        close (self->fd);
    free (self->path);
    free (self->service);
    free (self);
    *self_p = NULL;
}

int
pm_logfile_reopen (pm_logfile_t *self, const char *path, char *err,
                   size_t errlen)
{
    if (strcmp (path, self->path) == 0)
        return 0;
    int fd = s_open (path, 0, err, errlen);
    if (fd == -1)
        return -1;
    if (self->fd != -1)
        close (self->fd);
    self->fd = fd;
    self->size = s_file_size (fd);
    self->torn = false;
    self->rotate_skip = 0;
    free (self->path);
    self->path = strdup (path);
    assert (self->path);
    return 0;
}

void
pm_logfile_set_settings (pm_logfile_t *self, const pm_config_log_t *settings)
{
    self->settings = *settings;
}

bool
pm_logfile_is_full (const pm_logfile_t *self, uint64_t pending, size_t size)
{
    uint64_t max = self->settings.max_size;
    if (max == 0)
        return false;
    uint64_t total = self->size - self->rotate_skip + pending;
    return total > 0 && total + size > max;
}

uint64_t
pm_logfile_missing (const pm_logfile_t *self)
{
    return self->missing;
}

static uint64_t
s_count_lines (const char *data, size_t size)
{
    uint64_t lines = 0;
    const char *end = data + size;
    while (data < end && (data = memchr (data, '\n', (size_t) (end - data)))) {
        lines++;
        data++;
    }
    return lines;
}

//  Writes whole entries; returns 0, or -1 (errno set) after keeping in the
//  file only the entries written whole, and adding what was not to
//  missing.
static int
s_append (pm_logfile_t *self, const char *data, size_t size)
{
    size_t at = 0;
    int error = 0;
    while (at < size && !error) {
        ssize_t rc = write (self->fd, data + at, size - at);
        if (rc > 0)
            at += (size_t) rc;
        else
        if (rc == 0 || errno != EINTR)
            error = rc == 0 ? EIO : errno;
    }
    if (!error) {
        self->size += size;
        return 0;
    }
    size_t whole = at;
    while (whole > 0 && data [whole - 1] != '\n')
        whole--;
    if (whole < at) {
        if (ftruncate (self->fd, (off_t) (self->size + whole)) == 0)
            at = whole;
        else
            self->torn = true;
    }
    self->size += at;
    self->missing += s_count_lines (data + whole, size - whole);
    errno = error;
    return -1;
}

static void
s_failed (pm_logfile_t *self, int error)
{
    if (self->failed)
        return;
    self->failed = error;
    char message [s_PATH_MAX + 256];
    snprintf (message, sizeof message,
              "%s: cannot write log file %s: %s; its lines are still "
              "published and kept in memory (pmctl logs %s)", self->service,
              self->path, strerror (error), self->service);
    pm_log_error ("%s", message);
    if (self->pub)
        pm_publish_agent (self->pub, "log-write-failed", message);
}

//  The line that stands for the entries a failure kept out of the file.
static size_t
s_marker (pm_logfile_t *self, char *buf, size_t size)
{
    char text [s_TEXT_MAX];
    snprintf (text, sizeof text, "pmd: %llu line%s not written here (%s); "
              "they may still be in the agent's memory: pmctl logs %s",
              (unsigned long long) self->missing,
              self->missing == 1 ? "" : "s", strerror (self->failed),
              self->service);
    const char *lead = self->torn ? "\n" : "";
    if (self->settings.format != PM_LOG_JSON)
        return (size_t) snprintf (buf, size, "%s%s\n", lead, text);
    int n = snprintf (buf, size, "%s{\"ts\":%.6f,\"service\":", lead,
                      pm_wall_clock ());
    size_t at = (size_t) n;
    at += pm_logfile_json_string (buf + at, self->service,
                                  strnlen (self->service, PM_NAME_MAX));
    at += (size_t) snprintf (buf + at, size - at,
                             ",\"marker\":true,\"missing\":%llu,\"line\":",
                             (unsigned long long) self->missing);
    at += pm_logfile_json_string (buf + at, text, strlen (text));
    at += (size_t) snprintf (buf + at, size - at, "}\n");
    return at;
}

void
pm_logfile_write (pm_logfile_t *self, const char *data, size_t size)
{
    if (size == 0)
        return;
    if (self->fd == -1) {
        //  A rotation could not open the new file: try again now.
        char err [s_PATH_MAX + 64];
        self->fd = s_open (self->path, O_TRUNC, err, sizeof err);
        if (self->fd == -1) {
            self->missing += s_count_lines (data, size);
            s_failed (self, errno);
            return;
        }
        self->size = 0;
    }
    uint64_t missing = self->missing;
    if (self->failed) {
        //  Room for the text and the service's name, escaped 6 for 1.
        char marker [s_MARKER_MAX];
        size_t len = s_marker (self, marker, sizeof marker);
        if (s_append (self, marker, len) == -1) {
            //  The marker was one entry, and not one of the service's.
            self->missing = missing + s_count_lines (data, size);
            return;
        }
        self->torn = false;
        self->missing = 0;
    }
    if (s_append (self, data, size) == -1) {
        s_failed (self, errno);
        return;
    }
    if (self->failed) {
        char message [s_PATH_MAX + 256];
        snprintf (message, sizeof message, "%s: writing log file %s again; "
                  "%llu line%s missing there", self->service, self->path,
                  (unsigned long long) missing, missing == 1 ? " is" : "s are");
        pm_log_info ("%s", message);
        if (self->pub)
            pm_publish_agent (self->pub, "log-write-resumed", message);
        self->failed = 0;
    }
}

static void
s_rotate_failed (pm_logfile_t *self, const char *from, const char *to)
{
    if (!self->rotate_failed)
        pm_log_error ("%s: cannot rotate log file %s: %s %s%s%s: %s; "
                      "writing on to %s", self->service, self->path,
                      to ? "rename" : "unlink", from, to ? " to " : "",
                      to ? to : "", strerror (errno), self->path);
    self->rotate_failed = true;
    self->rotate_skip = self->size;
}

//  rename, or unlink when to is NULL; a name that does not exist is fine.
static int
s_move (pm_logfile_t *self, const char *from, const char *to)
{
    int rc = to ? rename (from, to) : unlink (from);
    if (rc == -1 && errno != ENOENT) {
        s_rotate_failed (self, from, to);
        return -1;
    }
    return 0;
}

void
pm_logfile_rotate (pm_logfile_t *self)
{
    size_t len = strlen (self->path) + 16;
    char *from = malloc (len), *to = malloc (len);
    assert (from && to);
    unsigned backups = self->settings.backups;
    int rc = 0;
    if (backups == 0)
        rc = s_move (self, self->path, NULL);
    else {
        snprintf (to, len, "%s.%u", self->path, backups);
        rc = s_move (self, to, NULL);
        for (unsigned k = backups; rc == 0 && k > 1; k--) {
            snprintf (from, len, "%s.%u", self->path, k - 1);
            snprintf (to, len, "%s.%u", self->path, k);
            rc = s_move (self, from, to);
        }
        snprintf (to, len, "%s.1", self->path);
        if (rc == 0)
            rc = s_move (self, self->path, to);
    }
    free (from);
    free (to);
    //  The current file is kept when the chain broke: nothing is lost,
    //  the file just grows past its limit until a rotation works.
    if (rc == -1)
        return;
    if (self->rotate_failed)
        pm_log_info ("%s: rotating log file %s again", self->service,
                     self->path);
    self->rotate_failed = false;
    self->rotate_skip = 0;
    if (self->fd != -1)
        close (self->fd);
    char err [s_PATH_MAX + 64];
    self->fd = s_open (self->path, O_TRUNC, err, sizeof err);
    if (self->fd == -1)
        s_failed (self, errno);     //  and tried again at the next write
    self->size = 0;
    self->torn = false;
}

size_t
pm_logfile_json_string (char *dst, const char *text, size_t size)
{
    char *p = dst;
    *p++ = '"';
    const unsigned char *bytes = (const unsigned char *) text;
    size_t i = 0;
    while (i < size) {
        unsigned char c = bytes [i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;
            i++;
        }
        else
        if (c < 0x20 || c == 0x7f) {
            p += sprintf (p, "\\u%04x", c);
            i++;
        }
        else
        if (c < 0x80) {
            *p++ = (char) c;
            i++;
        }
        else {
            size_t len = pm_utf8_next (bytes + i, size - i);
            if (len == 0) {
                memcpy (p, "\\ufffd", 6);
                p += 6;
                i++;
            }
            else {
                memcpy (p, bytes + i, len);
                p += len;
                i += len;
            }
        }
    }
    *p++ = '"';
    return (size_t) (p - dst);
}
