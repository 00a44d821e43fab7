/*  logbatch.c - log lines batched for subscribers (logbatch.h)

    The lines' bytes are copied end to end into one buffer, and their
    places kept as offsets (the buffer may move as it grows); the line
    array handed to pm_publish_log points into the buffer only at send.
    Whether anyone listens is asked once per batch: a batch begun for
    nobody holds no bytes, and the next begins with a fresh question.
*/
#include "logbatch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t offset;            /* into data */
    size_t size;
    bool partial;
} s_place_t;

struct pm_logbatch_t {
    pm_publish_t *pub;        /* not owned */
    char *service;            /* owned */
    uint64_t first;           /* seq of the first line held; 0: none */
    size_t count;             /* lines in the batch */
    bool heard;               /* someone listens to this batch's topic */
    double ts;
    pm_stream_t stream;
    char *data;               /* heard lines' bytes, end to end */
    size_t data_size, data_cap;
    s_place_t *places;        /* count entries when heard */
    size_t places_cap;
    pm_line_t *lines;         /* built at send */
    size_t lines_cap;
};

pm_logbatch_t *
pm_logbatch_new (pm_publish_t *pub, const char *service)
{
    pm_logbatch_t *self = calloc (1, sizeof *self);
    assert (self);
    self->pub = pub;
    self->service = strdup (service);
    assert (self->service);
    return self;
}

void
pm_logbatch_destroy (pm_logbatch_t **self_p)
{
    pm_logbatch_t *self = *self_p;
    if (!self)
        return;
    pm_logbatch_send (self);
    free (self->service);
    free (self->data);
    free (self->places);
    free (self->lines);
    free (self);
    *self_p = NULL;
}

//  Grows *array (of elem-byte elements, *cap of them) to hold need.
static void
s_reserve (void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t cap_new = *cap ? *cap : 64;
    while (cap_new < need)
        cap_new *= 2;
    *array = realloc (*array, cap_new * elem);
    assert (*array);
    *cap = cap_new;
}

void
pm_logbatch_send (pm_logbatch_t *self)
{
    if (self->count && self->heard) {
        s_reserve ((void **) &self->lines, &self->lines_cap, self->count,
                   sizeof *self->lines);
        for (size_t i = 0; i < self->count; i++) {
            pm_line_t *line = &self->lines [i];
            memset (line, 0, sizeof *line);
            line->line = self->data + self->places [i].offset;
            line->line_size = self->places [i].size;
            line->partial = self->places [i].partial;
        }
        pm_publish_log (self->pub, self->service, self->first, self->ts,
                        self->stream, self->lines, self->count);
    }
    self->first = 0;
    self->count = 0;
    self->data_size = 0;
}

void
pm_logbatch_add (pm_logbatch_t *self, uint64_t seq, double ts,
                 pm_stream_t stream, const char *line, size_t size,
                 bool partial)
{
    if (self->count
    &&  (stream != self->stream || ts != self->ts
      || seq != self->first + self->count
      || self->count == PM_LOGBATCH_LINES
      || self->data_size + size > PM_LOGBATCH_BYTES))
        pm_logbatch_send (self);
    if (self->count == 0) {
        self->first = seq;
        self->ts = ts;
        self->stream = stream;
        self->heard = pm_publish_log_heard (self->pub, self->service, stream);
    }
    self->count++;
    if (!self->heard)
        return;
    s_reserve ((void **) &self->places, &self->places_cap, self->count,
               sizeof *self->places);
    s_reserve ((void **) &self->data, &self->data_cap,
               self->data_size + size + 1, 1);
    if (size)
        memcpy (self->data + self->data_size, line, size);
    self->places [self->count - 1] =
        (s_place_t) { self->data_size, size, partial };
    self->data_size += size;
}
