/*  logbatch.h - a service's log lines on their way to subscribers

    Owns: gathering consecutive lines of one stream of one service into
    one published message (PROTOCOL.md 8.2), so a subscriber pays ZeroMQ's
    per-message cost once per batch, not once per line, and a burst queues
    a few messages per subscriber instead of one per line.  A batch is
    sent when the stream changes, when it is full (PM_LOGBATCH_BYTES of
    lines or PM_LOGBATCH_LINES lines), and when its owner says so: the log
    capture sends after every read and before a service's exit is told,
    so no line waits for the next one and every line still goes out before
    the state event of the exit.  Lines nobody subscribed to are counted
    past, not kept.

    Leaves to others: topics, encoding and the socket (publish), the lines
    themselves and their seq (logcap).
*/
#ifndef PM_LOGBATCH_H
#define PM_LOGBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "publish.h"

#define PM_LOGBATCH_BYTES (8 * 1024)
#define PM_LOGBATCH_LINES 1024

typedef struct pm_logbatch_t pm_logbatch_t;

/*  A batch for service (copied) published through pub (not owned). */
pm_logbatch_t *pm_logbatch_new (pm_publish_t *pub, const char *service);
/*  Sends what is held, then frees; does nothing on NULL. */
void pm_logbatch_destroy (pm_logbatch_t **self_p);

/*  Adds line (size bytes, may hold NULs; copied) with seq, read at ts, of
    stream.  The held batch is sent first when this line does not continue
    it (another stream or time, or a seq that is not the next). */
void pm_logbatch_add (pm_logbatch_t *self, uint64_t seq, double ts,
                      pm_stream_t stream, const char *line, size_t size,
                      bool partial);

/*  Publishes what is held, if anything. */
void pm_logbatch_send (pm_logbatch_t *self);

#endif
