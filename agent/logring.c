/*  logring.c - recent lines of one service (logring.h)

    A circular array of line slots, oldest at head.  Because sequence
    numbers are consecutive, the line with seq s sits at
    head + (s - first), so a replay from any seq is a direct index.
*/
#include "logring.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct pm_logring_t {
    pm_logline_t *slots;
    size_t capacity;          /* max lines */
    size_t max_bytes;
    size_t head;              /* index of the oldest line */
    size_t count;
    size_t bytes;             /* line data held */
};

pm_logring_t *
pm_logring_new (size_t max_lines, size_t max_bytes)
{
    pm_logring_t *self = calloc (1, sizeof *self);
    assert (self);
    self->capacity = max_lines;
    self->max_bytes = max_bytes;
    if (max_lines) {
        self->slots = calloc (max_lines, sizeof *self->slots);
        assert (self->slots);
    }
    return self;
}

static void
s_drop_oldest (pm_logring_t *self)
{
    pm_logline_t *line = &self->slots [self->head];
    self->bytes -= line->size;
    free (line->data);
    line->data = NULL;
    self->head = (self->head + 1) % self->capacity;
    self->count--;
}

void
pm_logring_destroy (pm_logring_t **self_p)
{
    pm_logring_t *self = *self_p;
    if (!self)
        return;
    while (self->count)
        s_drop_oldest (self);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

void
pm_logring_push (pm_logring_t *self, uint64_t seq, double ts, int stream,
                 bool partial, const char *data, size_t size)
{
    if (self->capacity == 0 || size > self->max_bytes) {
        //  Nothing can be kept: what was held is no longer contiguous
        //  with what comes next, so let it all go.
        while (self->count)
            s_drop_oldest (self);
        return;
    }
    assert (self->count == 0 || seq == pm_logring_last (self) + 1);
    while (self->count == self->capacity
       ||  (self->count && self->bytes + size > self->max_bytes))
        s_drop_oldest (self);
    pm_logline_t *line = &self->slots [(self->head + self->count)
                                       % self->capacity];
    line->seq = seq;
    line->ts = ts;
    line->stream = stream;
    line->partial = partial;
    line->size = size;
    line->data = malloc (size ? size : 1);
    assert (line->data);
    memcpy (line->data, data, size);
    self->count++;
    self->bytes += size;
}

uint64_t
pm_logring_first (const pm_logring_t *self)
{
    return self->count ? self->slots [self->head].seq : 0;
}

uint64_t
pm_logring_last (const pm_logring_t *self)
{
    return self->count
         ? self->slots [(self->head + self->count - 1) % self->capacity].seq
         : 0;
}

size_t
pm_logring_count (const pm_logring_t *self)
{
    return self->count;
}

size_t
pm_logring_bytes (const pm_logring_t *self)
{
    return self->bytes;
}

const pm_logline_t *
pm_logring_get (const pm_logring_t *self, uint64_t seq)
{
    uint64_t first = pm_logring_first (self);
    if (self->count == 0 || seq < first || seq - first >= self->count)
        return NULL;
    return &self->slots [(self->head + (size_t) (seq - first))
                         % self->capacity];
}
