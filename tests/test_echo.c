/*  test_echo.c - service lines on a stdout that stalls

    The echo goes into a pipe of one page that the test reads only when it
    says so.  While nobody reads, queuing lines never blocks (a blocking
    write would hang the test until ctest's timeout), whole lines are
    dropped and counted; once the test reads, the rest comes out with a
    marker exactly where lines are missing.
*/
#include "echo.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define s_LINES 2000

//  Reads what the pipe holds into out (appending at *size).
static void
s_read_pipe (int fd, char *out, size_t *size, size_t cap)
{
    while (*size < cap) {
        ssize_t got = read (fd, out + *size, cap - *size);
        if (got <= 0)
            break;
        *size += (size_t) got;
    }
}

static void
test_stalled_pipe (void)
{
    int fds [2];
    CHECK (pipe2 (fds, O_CLOEXEC) == 0);
    fcntl (fds [1], F_SETPIPE_SZ, 4096);
    //  The test reads without waiting; the echo gets its own description.
    CHECK (fcntl (fds [0], F_SETFL, O_NONBLOCK) == 0);
    CHECK (pm_echo_open (NULL, fds [1], 8192) == 0);
    //  The shared description stays blocking (the shell's terminal would).
    CHECK ((fcntl (fds [1], F_GETFL) & O_NONBLOCK) == 0);
    char line [64];
    for (int i = 0; i < s_LINES; i++) {
        int len = snprintf (line, sizeof line, "line %05d", i);
        pm_echo_line ("svc", 5, line, (size_t) len);
        if (i % 10 == 9)
            pm_echo_flush ();
    }
    uint64_t dropped = pm_echo_dropped ();
    CHECK (dropped > 0 && dropped < s_LINES);
    //  Now the reader catches up.
    size_t cap = 1 << 20, size = 0;
    char *out = malloc (cap);
    for (int round = 0; round < 1000; round++) {
        s_read_pipe (fds [0], out, &size, cap);
        pm_echo_flush ();
    }
    s_read_pipe (fds [0], out, &size, cap);
    out [size < cap ? size : cap - 1] = 0;
    //  Every line whole and in order, or counted by the marker in its
    //  place: the numbers after a marker go on exactly past the gap.
    int next = 0, markers = 0;
    uint64_t counted = 0;
    char *p = out;
    while (*p) {
        char *end = strchr (p, '\n');
        CHECK (end != NULL);
        if (!end)
            break;
        *end = 0;
        int number;
        unsigned long long n;
        if (sscanf (p, "svc   | line %d", &number) == 1) {
            CHECK (number == next);
            next = number + 1;
        }
        else
        if (sscanf (p, "pmd: %llu lines not shown", &n) == 1) {
            next += (int) n;
            counted += n;
            markers++;
        }
        else
            CHECK (!"a line neither echoed nor a marker");
        p = end + 1;
    }
    CHECK (next == s_LINES);
    CHECK (markers >= 1 && counted == dropped);
    free (out);
    pm_echo_close (0);
    //  Closed: nothing is queued, nothing written.
    pm_echo_line ("svc", 5, "late", 4);
    char byte;
    CHECK (read (fds [0], &byte, 1) == -1 && errno == EAGAIN);
    close (fds [0]);
    close (fds [1]);
}

//  A reader that goes away stops the echo, and nothing blocks or dies
//  (SIGPIPE is ignored by the agent, and here).
static void
test_reader_gone (void)
{
    int fds [2];
    CHECK (pipe2 (fds, O_CLOEXEC) == 0);
    CHECK (pm_echo_open (NULL, fds [1], 8192) == 0);
    close (fds [0]);
    pm_echo_line ("svc", 0, "x", 1);
    pm_echo_flush ();
    pm_echo_line ("svc", 0, "y", 1);
    pm_echo_flush ();
    pm_echo_close (100);
    close (fds [1]);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    test_stalled_pipe ();
    test_reader_gone ();
    return check_report ("test_echo");
}
