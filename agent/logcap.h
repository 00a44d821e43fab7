/*  logcap.h - a service's output: pipes, lines, log file, publishing

    Owns: the read ends of one service's stdout and stderr pipes, splitting
    what arrives into lines (with a sequence number per service, shared by
    both streams), formatting them as log file entries (text or JSON), and
    handing each line to the ring, the publisher and the echo.

    Leaves to others: creating the pipes (spawn), knowing when the service
    exited (the supervisor calls pm_logcap_drain before it records the
    exit, so the last lines always come before the exit event), the file
    itself, its rotation and its write errors (logfile), stdout (echo).
*/
#ifndef PM_LOGCAP_H
#define PM_LOGCAP_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "publish.h"

#include "logring.h"

typedef struct pm_logcap_t pm_logcap_t;

/*  A capture for service, writing to path (its directory is created) as
    settings say (format, timestamps, rotation, line limit, ring), and
    publishing through pub (may be NULL).  settings is copied.  Returns
    NULL with a message in err if the file cannot be opened. */
pm_logcap_t *pm_logcap_new (zloop_t *loop, const char *service,
                            const char *path, const pm_config_log_t *settings,
                            pm_publish_t *pub, char *err, size_t errlen);

/*  Applies new settings after a reload: a new path opens that file (its
    directory is created); new ring bounds start a new ring (the lines
    held so far are dropped from memory, not from the file); a smaller
    line limit ends unfinished lines now.  Returns 0, or -1 with a message
    in err (the old file is kept then). */
int pm_logcap_update (pm_logcap_t *self, const char *path,
                      const pm_config_log_t *settings, char *err,
                      size_t errlen);

/*  Called with every line as it is captured (readiness by log line). */
typedef void (pm_logcap_line_fn) (void *arg, const char *line, size_t size);
void pm_logcap_set_line_fn (pm_logcap_t *self, pm_logcap_line_fn *fn,
                            void *arg);

/*  The ring of recent lines (borrowed). */
const pm_logring_t *pm_logcap_ring (const pm_logcap_t *self);

/*  Bytes read from the service's pipes since the agent started. */
uint64_t pm_logcap_bytes_in (const pm_logcap_t *self);

/*  Drains what can be read without waiting, writes any unfinished line,
    closes the pipes and the file. */
void pm_logcap_destroy (pm_logcap_t **self_p);

/*  Takes the read ends of a new run's pipes (non-blocking), and starts
    reading them.  Pipes of a previous run still open (held by a leftover
    grandchild) are drained and closed first. */
void pm_logcap_attach (pm_logcap_t *self, int out_fd, int err_fd);

/*  Reads both pipes until they are empty or closed, and writes any
    unfinished last line.  Call when the service's main process has
    exited: everything it wrote is in the pipes by then. */
void pm_logcap_drain (pm_logcap_t *self);

/*  Also print every line to stdout as "name | line" (foreground
    --follow-logs, through echo.h, which must be open), name padded to
    width. */
void pm_logcap_set_echo (pm_logcap_t *self, bool echo, int width);

/*  Sequence number of the last line (0: none yet). */
uint64_t pm_logcap_seq (const pm_logcap_t *self);

/*  Continues the line sequence from seq (before any line is captured). */
void pm_logcap_set_seq (pm_logcap_t *self, uint64_t seq);

/*  True while a pipe is still open. */
bool pm_logcap_is_open (const pm_logcap_t *self);

#endif
