/*  linkmsg.c - link messages over czmq (linkmsg.h) */
#include "linkmsg.h"

#include <stdlib.h>

int
pm_linkmsg_parse (zmsg_t *zmsg, pm_linkmsg_t *self, char *why,
                  size_t whylen)
{
    size_t count = zmsg_size (zmsg);
    self->frames = calloc (count ? count : 1, sizeof *self->frames);
    if (!self->frames)
        abort ();
    size_t i = 0;
    for (zframe_t *frame = zmsg_first (zmsg); frame && i < count;
         frame = zmsg_next (zmsg), i++) {
        self->frames [i].data = zframe_data (frame);
        self->frames [i].size = zframe_size (frame);
    }
    if (pm_link_parse (self->frames, count, &self->msg, why, whylen) == -1) {
        free (self->frames);
        self->frames = NULL;
        return -1;
    }
    return 0;
}

void
pm_linkmsg_clear (pm_linkmsg_t *self)
{
    pm_link_clear (&self->msg);
    free (self->frames);
    self->frames = NULL;
}
