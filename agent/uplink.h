/*  uplink.h - the agent's link to a broker (agent.broker)

    Owns: the DEALER connected to the broker's agents endpoint (a CURVE
    client over TCP), registering (at start, after each reload, and
    whenever the broker does not know us: it restarted), heartbeats, the
    requests the broker relays (handed to the control module, answered
    through it) and the broker's subscriptions (handed to the publisher,
    which copies what they ask for to the link).  The link words are in
    pm_link.h, the rules in PROTOCOL.md 13.

    Never in the way: nothing here blocks (a full or missing link drops),
    and losing the broker changes nothing for the services or the local
    clients; the link reconnects for ever.

    Leaves to others: what a request does (control.c), what is published
    (publish.c).
*/
#ifndef PM_UPLINK_H
#define PM_UPLINK_H

#include <czmq.h>

#include "control.h"
#include "publish.h"
#include "supervisor.h"

typedef struct pm_uplink_t pm_uplink_t;

/*  What pm_uplink_new would say of the key files (NULL for ipc), without
    an event loop.  Returns 0, or -1 with a message naming the file. */
int pm_uplink_check (const char *endpoint, const char *server_key,
                     const char *key, char *err, size_t errlen);

/*  Connects to the broker at endpoint and registers the agent served by
    control and sup (this run of it called instance), relaying pub's
    messages.  Returns NULL with err. */
pm_uplink_t *pm_uplink_new (zloop_t *loop, const char *endpoint,
                            const char *server_key, const char *key,
                            const char *instance,
                            pm_control_t *control, pm_supervisor_t *sup,
                            pm_publish_t *pub, char *err, size_t errlen);
void pm_uplink_destroy (pm_uplink_t **self_p);

/*  The services changed (a reload): register them again. */
void pm_uplink_services_changed (pm_uplink_t *self);

#endif
