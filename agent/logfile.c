/*  logfile.c - a service's log file (logfile.h) */
#include "logfile.h"
#include "agentlog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_logfile_t {
    char *service;            /* owned */
    char *path;               /* owned */
    int fd;                   /* owned, -1 if it could not be (re)opened */
    uint64_t size;            /* bytes in the current file */
    pm_config_log_t settings;
    pm_publish_t *pub;        /* not owned, may be NULL */
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
    //  0600, like the agent's own log: services' output can hold secrets.
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags,
                   0600);
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
    uint64_t total = self->size + pending;
    return total > 0 && total + size > max;
}

void
pm_logfile_write (pm_logfile_t *self, const char *data, size_t size)
{
    if (self->fd == -1)
        return;
    size_t at = 0;
    while (at < size) {
        ssize_t rc = write (self->fd, data + at, size - at);
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0) {
            pm_log_error ("%s: cannot write log file %s: %s", self->service,
                          self->path, strerror (errno));
            break;
        }
        at += (size_t) rc;
    }
    self->size += at;
}

void
pm_logfile_rotate (pm_logfile_t *self)
{
    if (self->fd != -1)
        close (self->fd);
    size_t len = strlen (self->path) + 16;
    char *from = malloc (len), *to = malloc (len);
    assert (from && to);
    unsigned backups = self->settings.backups;
    if (backups == 0)
        unlink (self->path);
    else {
        snprintf (to, len, "%s.%u", self->path, backups);
        unlink (to);
        for (unsigned k = backups; k > 1; k--) {
            snprintf (from, len, "%s.%u", self->path, k - 1);
            snprintf (to, len, "%s.%u", self->path, k);
            rename (from, to);
        }
        snprintf (to, len, "%s.1", self->path);
        rename (self->path, to);
    }
    free (from);
    free (to);
    char err [4096 + 64];
    self->fd = s_open (self->path, O_TRUNC, err, sizeof err);
    if (self->fd == -1)
        pm_log_error ("%s: after rotation: %s", self->service, err);
    self->size = 0;
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
