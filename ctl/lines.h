/*  lines.h - how pmctl prints service log lines

    Owns: the output of `pmctl logs`: lines written as raw bytes, the
    "name | " prefix (padded, coloured on a terminal, " ! " for standard
    error), pieces of a cut line joined back, the --json form of a line
    (with its escaping of bytes that are not UTF-8), and the messages for
    lines that can no longer be had.

    Leaves to others: which lines to print and in which order (logs.c).
    No system calls besides writing to the streams.
*/
#ifndef PM_LINES_H
#define PM_LINES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pm_proto.h"

typedef struct pm_lines_t pm_lines_t;

/*  A printer on out (lines) and err (messages).  json: one object per
    line; color: ANSI colours in prefixes; prefix: "name | " before each
    line (several services). */
pm_lines_t *pm_lines_new (FILE *out, FILE *err, bool json, bool color,
                          bool prefix);
/*  Ends a line left open by a cut piece, then frees; NULL does nothing. */
void pm_lines_destroy (pm_lines_t **self_p);

/*  Makes prefixes at least as wide as service. */
void pm_lines_widen (pm_lines_t *self, const char *service);

/*  Prints one line (or piece, line->partial) of service. */
void pm_lines_print (pm_lines_t *self, const char *service,
                     const pm_line_t *line);

/*  Why lines cannot be printed. */
typedef enum {
    PM_LINES_GONE = 0,            /* no longer in the agent's memory */
    PM_LINES_TOO_LARGE            /* held, but no reply can carry it */
} pm_lines_loss_t;

/*  Says that lines from..to of service cannot be printed, and why: on
    err, "-- web: 6 lines (5..10) are no longer in memory (see the log
    file) --", or a {"service", "gone": [from, to]} object on out with
    json. */
void pm_lines_gone (pm_lines_t *self, const char *service, uint64_t from,
                    uint64_t to, pm_lines_loss_t loss);

/*  Flushes out (call when nothing more is ready to print). */
void pm_lines_flush (pm_lines_t *self);

#endif
