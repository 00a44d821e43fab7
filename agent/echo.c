/*  echo.c - service lines on stdout, never blocking (echo.h)

    The buffer is one block: lines are appended at used and written from
    head; when the end has no room, what is unwritten moves to the front.
    A line is queued whole or not at all, so what a reader sees is always
    whole lines, with a marker where some were dropped.  The marker waits
    for room like a line; until it is queued, later lines are dropped too
    (and counted), so it always stands exactly where lines are missing.
*/
#include "echo.h"
#include "agentlog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
    zloop_t *loop;            /* not owned */
    int fd;                   /* where lines go, -1 while closed */
    bool own_fd;              /* fd is our own reopened description */
    int restore_flags;        /* fd's flags to put back at close, or -1 */
    char *buf;                /* owned, cap bytes */
    size_t head;              /* first byte not written yet */
    size_t used;              /* end of the queued bytes */
    size_t cap;
    uint64_t dropped;         /* lines dropped since the last marker */
    uint64_t dropped_total;   /* since open */
    bool watching;            /* a poller waits for fd to take more */
} s_echo = { .fd = -1, .restore_flags = -1 };

static int s_on_writable (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_watch (bool on)
{
    if (on == s_echo.watching || !s_echo.loop)
        return;
    zmq_pollitem_t item = { NULL, s_echo.fd, ZMQ_POLLOUT, 0 };
    if (!on)
        zloop_poller_end (s_echo.loop, &item);
    else
    if (zloop_poller (s_echo.loop, &item, s_on_writable, NULL) == 0)
        //  A reader that went away shows as POLLERR: the write says why.
        zloop_poller_set_tolerant (s_echo.loop, &item);
    else {
        pm_log_error ("cannot watch stdout: %s", strerror (errno));
        return;
    }
    s_echo.watching = on;
}

//  Stops echoing; what is queued is dropped.
static void
s_stop (void)
{
    s_watch (false);
    if (s_echo.restore_flags != -1)
        fcntl (s_echo.fd, F_SETFL, s_echo.restore_flags);
    if (s_echo.own_fd && s_echo.fd != -1)
        close (s_echo.fd);
    free (s_echo.buf);
    s_echo.buf = NULL;
    s_echo.fd = -1;
    s_echo.own_fd = false;
    s_echo.restore_flags = -1;
    s_echo.head = s_echo.used = s_echo.cap = 0;
    s_echo.loop = NULL;
}

//  Room for size more bytes at the end, moving the unwritten bytes to the
//  front if that makes it.
static bool
s_room (size_t size)
{
    if (s_echo.used + size <= s_echo.cap)
        return true;
    if (s_echo.used - s_echo.head + size > s_echo.cap)
        return false;
    memmove (s_echo.buf, s_echo.buf + s_echo.head, s_echo.used - s_echo.head);
    s_echo.used -= s_echo.head;
    s_echo.head = 0;
    return true;
}

//  Queues the marker for the lines dropped, if there is room for it.
static void
s_mark (void)
{
    if (s_echo.dropped == 0)
        return;
    char marker [64];
    int len = snprintf (marker, sizeof marker, "pmd: %llu line%s not shown\n",
                        (unsigned long long) s_echo.dropped,
                        s_echo.dropped == 1 ? "" : "s");
    if (!s_room ((size_t) len))
        return;
    memcpy (s_echo.buf + s_echo.used, marker, (size_t) len);
    s_echo.used += (size_t) len;
    s_echo.dropped = 0;
}

//  Writes until fd would block.  Returns -1 if echoing stopped.
static int
s_write_out (void)
{
    while (s_echo.head < s_echo.used) {
        ssize_t rc = write (s_echo.fd, s_echo.buf + s_echo.head,
                            s_echo.used - s_echo.head);
        if (rc > 0) {
            s_echo.head += (size_t) rc;
            continue;
        }
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        pm_log_error ("cannot write to stdout: %s; no more service lines "
                      "are shown there", rc == 0 ? "nothing written"
                      : strerror (errno));
        s_stop ();
        return -1;
    }
    if (s_echo.head == s_echo.used)
        s_echo.head = s_echo.used = 0;
    return 0;
}

int
pm_echo_open (zloop_t *loop, int fd, size_t capacity)
{
    pm_echo_close (0);
    struct stat st;
    if (fstat (fd, &st) == -1)
        return -1;
    int out = fd;
    bool own = false;
    int restore = -1;
    //  A file takes what it is given without waiting for a reader.
    if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
        //  Our own open file description of the same pipe or terminal:
        //  O_NONBLOCK on the shared one would reach every process that
        //  shares it (the shell, on a terminal).
        char proc [64];
        snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
        out = open (proc, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (out != -1)
            own = true;
        else {
            //  A socket cannot be reopened: share it, and put it back.
            out = fd;
            restore = fcntl (fd, F_GETFL);
            if (restore == -1
            ||  fcntl (fd, F_SETFL, restore | O_NONBLOCK) == -1)
                return -1;
        }
    }
    s_echo.loop = loop;
    s_echo.fd = out;
    s_echo.own_fd = own;
    s_echo.restore_flags = restore;
    s_echo.cap = capacity;
    s_echo.buf = malloc (capacity);
    assert (s_echo.buf);
    s_echo.head = s_echo.used = 0;
    s_echo.dropped = s_echo.dropped_total = 0;
    return 0;
}

void
pm_echo_line (const char *name, int width, const char *line, size_t size)
{
    if (s_echo.fd == -1)
        return;
    s_mark ();
    size_t name_len = strlen (name);
    size_t pad = width > 0 && (size_t) width > name_len
               ? (size_t) width - name_len : 0;
    size_t need = name_len + pad + 3 + size + 1;
    if (s_echo.dropped || !s_room (need)) {
        s_echo.dropped++;
        s_echo.dropped_total++;
        return;
    }
    char *p = s_echo.buf + s_echo.used;
    memcpy (p, name, name_len);
    memset (p + name_len, ' ', pad);
    p += name_len + pad;
    memcpy (p, " | ", 3);
    memcpy (p + 3, line, size);
    p [3 + size] = '\n';
    s_echo.used += need;
}

void
pm_echo_flush (void)
{
    if (s_echo.fd == -1 || s_write_out () == -1)
        return;
    //  Written out: room for the marker, maybe.
    s_mark ();
    if (s_write_out () == -1)
        return;
    s_watch (s_echo.head < s_echo.used);
}

static int
s_on_writable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_echo_flush ();
    return 0;
}

static double
s_clock (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

void
pm_echo_close (int timeout_ms)
{
    if (s_echo.fd == -1)
        return;
    double end = s_clock () + timeout_ms / 1000.0;
    while (s_write_out () == 0) {
        s_mark ();
        if (s_echo.head == s_echo.used && s_echo.dropped == 0)
            break;
        int left = (int) ((end - s_clock ()) * 1000);
        struct pollfd item = { s_echo.fd, POLLOUT, 0 };
        if (left <= 0 || poll (&item, 1, left) <= 0)
            break;
    }
    s_stop ();
}

uint64_t
pm_echo_dropped (void)
{
    return s_echo.dropped_total;
}
