/*  logring.h - the recent lines of one service, kept for replay

    Owns: a bounded ring of the last lines a service wrote (at most
    max_lines lines and max_bytes bytes of line data), indexed by their
    sequence numbers, which are consecutive.  A subscriber that joined
    late or saw a gap asks for what it missed (`logs` with `since`); what
    has left the ring is reported as a range, never skipped silently.

    Pure data structure: no I/O.
*/
#ifndef PM_LOGRING_H
#define PM_LOGRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seq;
    double ts;
    int stream;               /* pm_stream_t */
    bool partial;             /* a cut piece of a longer line */
    size_t size;
    char *data;               /* size bytes, owned by the ring */
} pm_logline_t;

typedef struct pm_logring_t pm_logring_t;

/*  A ring holding at most max_lines lines and max_bytes bytes of line
    data (0 lines: keeps nothing). */
pm_logring_t *pm_logring_new (size_t max_lines, size_t max_bytes);
void pm_logring_destroy (pm_logring_t **self_p);

/*  Adds a line; seq must be one more than the last one pushed (the first
    may be anything).  The oldest lines leave to make room. */
void pm_logring_push (pm_logring_t *self, uint64_t seq, double ts, int stream,
                      bool partial, const char *data, size_t size);

/*  Oldest and newest seq held; 0 when empty. */
uint64_t pm_logring_first (const pm_logring_t *self);
uint64_t pm_logring_last (const pm_logring_t *self);
size_t pm_logring_count (const pm_logring_t *self);
size_t pm_logring_bytes (const pm_logring_t *self);

/*  The line with sequence number seq, or NULL if not held (borrowed,
    valid until the next push). */
const pm_logline_t *pm_logring_get (const pm_logring_t *self, uint64_t seq);

#endif
