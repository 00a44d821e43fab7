/*  linkmsg.h - a received link message, checked (pm_link.h) over czmq

    Owns: turning a zmsg of the agent-broker link into pm_link_parse's
    frames and back out of the way.  Used by both ends: the broker's
    agents socket and the agent's uplink.
*/
#ifndef PM_LINKMSG_H
#define PM_LINKMSG_H

#include "pm_link.h"

#include <czmq.h>

typedef struct {
    pm_link_msg_t msg;            /* the parse; its frames point into zmsg */
    pm_link_frame_t *frames;      /* owned */
} pm_linkmsg_t;

/*  Parses zmsg (the word first, no routing frame), which must outlive
    self.  Returns 0, or -1 with why set and nothing to clear. */
int pm_linkmsg_parse (zmsg_t *zmsg, pm_linkmsg_t *self, char *why,
                      size_t whylen);

void pm_linkmsg_clear (pm_linkmsg_t *self);

#endif
