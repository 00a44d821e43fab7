/*  echo.h - --follow-logs: service lines on the agent's stdout

    Owns: the agent's standard output while it follows logs: every service
    line as "name | line", through a bounded buffer that is written only
    as fast as stdout takes it, never blocking the loop.  When a terminal
    or pipe stalls and the buffer is full, whole lines are dropped and
    counted; once output moves again, a line "pmd: N lines not shown"
    stands where they were.

    Leaves to others: which lines are echoed and when a batch ends
    (logcap), the loop (main passes it in).  Process-wide, like agentlog:
    a process has one stdout.
*/
#ifndef PM_ECHO_H
#define PM_ECHO_H

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

/*  Bytes of lines waiting for a slow stdout before lines are dropped. */
#define PM_ECHO_BUFFER (1024 * 1024)

/*  Echoes to fd from now on, buffering up to capacity bytes, and waits in
    loop for a full fd to drain.  A pipe or terminal is reopened
    non-blocking (through /proc, so the shell sharing a terminal keeps its
    blocking one); a socket is set non-blocking until pm_echo_close.
    Returns 0, or -1 (errno set; nothing is echoed). */
int pm_echo_open (zloop_t *loop, int fd, size_t capacity);

/*  Queues "name | line\n" (name padded to width), or drops and counts it
    if the buffer cannot take it whole.  Does nothing while closed. */
void pm_echo_line (const char *name, int width, const char *line,
                   size_t size);

/*  Writes what stdout takes now; the rest is written when it drains. */
void pm_echo_flush (void);

/*  Writes what is left (with a last marker if lines were dropped) for at
    most timeout_ms while stdout takes it, then stops echoing. */
void pm_echo_close (int timeout_ms);

/*  Lines dropped since pm_echo_open. */
uint64_t pm_echo_dropped (void);

#endif
