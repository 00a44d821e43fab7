/*  probe.h - readiness and liveness probes of one service run

    Owns: the schedule of one probe (initial delay, attempts every
    interval, a timeout per attempt, a deadline for readiness, a count of
    failures in a row for liveness) and the attempts themselves, all inside
    the event loop: exec probes are child processes (reaped through the
    reaper, killed on timeout), tcp and http probes are non-blocking
    sockets, log probes look at the service's lines, notify_fd probes read
    a pipe the service writes to.

    Leaves to others: what a verdict means (the supervisor moves the
    service), reaping (the supervisor hands probe pids back through
    pm_probe_on_exit), creating the notify pipe (spawn).
*/
#ifndef PM_PROBE_H
#define PM_PROBE_H

#include <czmq.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

typedef struct pm_probe_t pm_probe_t;

/*  The verdict.  Readiness: passed once, or failed at the deadline.
    Liveness: failed after `failures` failed attempts in a row (passes are
    not reported).  reason says why (the last attempt's error).  After a
    verdict the probe does nothing more; destroy it. */
typedef void (pm_probe_fn) (void *arg, pm_probe_t *probe, bool passed,
                            const char *reason);

/*  A probe for one run of service, not started yet.  What it needs of
    service and config is copied; env ("KEY=value", NULL-terminated, may
    be NULL) is borrowed and passed to exec probes after the service's
    environment. */
pm_probe_t *pm_probe_new (zloop_t *loop, const pm_config_service_t *service,
                          const pm_config_probe_t *config, bool alive,
                          char *const *env, pm_probe_fn *verdict, void *arg);

/*  Stops everything: timers, sockets, a running exec probe (SIGKILL to its
    process group; it is reaped later like any child). */
void pm_probe_destroy (pm_probe_t **self_p);

/*  Starts the schedule. */
void pm_probe_start (pm_probe_t *self);

/*  A child was reaped: returns true if it was this probe's exec attempt. */
bool pm_probe_on_exit (pm_probe_t *self, pid_t pid, int status);

/*  A line of the service's output (log probes look at it). */
void pm_probe_line (pm_probe_t *self, const char *line, size_t size);

/*  The read end of the service's notify pipe (notify_fd probes); taken. */
void pm_probe_set_notify_fd (pm_probe_t *self, int fd);

/*  Attempts made so far, and wakeups (timers and socket events handled);
    for tests and the idle-wakeup figure. */
unsigned long pm_probe_attempts (const pm_probe_t *self);

#endif
