/*  broker.h - pmbroker: many agents behind one pair of endpoints

    Owns: the clients' ROUTER and XPUB, the agents' ROUTER, the registry
    of agents (by name: connected or unreachable, by heartbeats), the
    requests in flight to agents, and the subscriptions forwarded to
    them.  A client's request is checked whole against the registry
    (every name known and reachable) before any agent is sent anything,
    then split per agent, and the agents' replies are merged into one.
    Every message an agent publishes reaches the broker's subscribers
    with topic and body unchanged.  PROTOCOL.md 13 is the contract.

    Keeps nothing it cannot rebuild from the agents: a restarted broker
    learns everything again as they register.

    Leaves to others: the config file (bconfig.c), keys (curve.c).
*/
#ifndef PM_BROKER_H
#define PM_BROKER_H

#include <czmq.h>

#include "bconfig.h"

typedef struct pm_broker_t pm_broker_t;

/*  Binds the three endpoints (TCP ones as CURVE servers, with the keys
    loaded now).  Returns NULL with a message in err. */
pm_broker_t *pm_broker_new (zloop_t *loop, const pm_bconfig_t *config,
                            char *err, size_t errlen);
void pm_broker_destroy (pm_broker_t **self_p);

/*  Reads the key directories again (SIGHUP). */
void pm_broker_reload_keys (pm_broker_t *self);

#endif
