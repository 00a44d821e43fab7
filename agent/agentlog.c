/*  agentlog.c - the agent's own log (agentlog.h)

    Each line is formatted once and written with one write() per
    destination, so lines from the agent are never torn.

    A full disk (or any failed write to the file) costs a line, never a
    wait: lines the file did not take are counted, and the first one it
    takes again comes after a warning saying how many are missing there.
*/
#include "agentlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    char agent [128];
    const char *program;      /* "pmd", or "pmbroker" */
    bool json;
    pm_log_level_t level;
    int fd;                   /* log file, or -1 */
    bool quiet;               /* no stderr */
    unsigned long missing;    /* lines the file did not take since it last did */
    int error;                /* errno of the last of them */
    bool torn;                /* the file ends in part of a line */
} s_log = { "pmd", "pmd", false, PM_LOG_INFO, -1, false, 0, 0, false };

static const char *s_level_names [] = { "debug", "info", "warn", "error" };

void
pm_log_set_program (const char *program)
{
    s_log.program = program;
}

void
pm_log_setup (const char *agent, bool json, pm_log_level_t level)
{
    snprintf (s_log.agent, sizeof s_log.agent, "%s", agent ? agent : "pmd");
    s_log.json = json;
    s_log.level = level;
}

int
pm_log_open_file (const char *path)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    if (s_log.fd != -1)
        close (s_log.fd);
    s_log.fd = fd;
    s_log.missing = 0;
    s_log.torn = false;
    return 0;
}

void
pm_log_quiet_stderr (bool quiet)
{
    s_log.quiet = quiet;
}

void
pm_log_close (void)
{
    if (s_log.fd != -1)
        close (s_log.fd);
    s_log.fd = -1;
}

//  Appends text to buf as the inside of a JSON string.
static size_t
s_json_escape (char *buf, size_t size, size_t at, const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text;
         *p && at + 8 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf [at++] = '\\';
            buf [at++] = (char) *p;
        }
        else
        if (*p < 0x20)
            at += (size_t) snprintf (buf + at, size - at, "\\u%04x", *p);
        else
            buf [at++] = (char) *p;
    }
    return at;
}

//  Formats one line of the log into line (size bytes, ended by a newline,
//  cut if need be); returns its length.
static size_t
s_format (pm_log_level_t level, const char *message, char *line, size_t size)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char stamp [40];
    size_t n = strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000);

    size_t len;
    if (s_log.json) {
        len = (size_t) snprintf (line, size,
                                 "{\"ts\":%.3f,\"level\":\"%s\",\"agent\":\"",
                                 (double) now.tv_sec + now.tv_nsec / 1e9,
                                 s_level_names [level]);
        len = s_json_escape (line, size, len, s_log.agent);
        len += (size_t) snprintf (line + len, size - len,
                                  "\",\"message\":\"");
        len = s_json_escape (line, size, len, message);
        len += (size_t) snprintf (line + len, size - len, "\"}\n");
    }
    else
        len = (size_t) snprintf (line, size, "%s %s[%s] %s: %s\n",
                                 stamp, s_log.program, s_log.agent,
                                 s_level_names [level], message);
    if (len >= size) {
        len = size - 1;
        line [len - 1] = '\n';
    }
    return len;
}

//  Returns true if the file took the whole of line.
static bool
s_write_file (const char *line, size_t len)
{
    ssize_t rc = write (s_log.fd, line, len);
    if (rc == (ssize_t) len)
        return true;
    s_log.missing++;
    s_log.error = rc == -1 ? errno : EIO;
    if (rc > 0)
        s_log.torn = true;
    return false;
}

static void
s_to_file (const char *line, size_t len)
{
    if (s_log.missing) {
        char note [128];
        snprintf (note, sizeof note, "%lu line%s of this log not written "
                  "here (%s)", s_log.missing, s_log.missing == 1 ? "" : "s",
                  strerror (s_log.error));
        char marker [512];
        marker [0] = '\n';
        size_t lead = s_log.torn ? 1 : 0;
        size_t n = s_format (PM_LOG_WARN, note, marker + lead,
                             sizeof marker - lead);
        unsigned long missing = s_log.missing;
        if (!s_write_file (marker, n + lead)) {
            //  The marker is not one of the lines it counts.
            s_log.missing = missing + 1;
            return;
        }
        s_log.missing = 0;
        s_log.torn = false;
    }
    s_write_file (line, len);
}

void
pm_log (pm_log_level_t level, const char *fmt, ...)
{
    if (level < s_log.level)
        return;
    int saved = errno;
    char message [2048];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);

    char line [4096 + 256];
    size_t len = s_format (level, message, line, sizeof line);
    if (!s_log.quiet) {
        ssize_t rc = write (STDERR_FILENO, line, len);
        (void) rc;
    }
    if (s_log.fd != -1)
        s_to_file (line, len);
    errno = saved;
}
