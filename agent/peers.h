/*  peers.h - the subscribers of an events socket, by connection

    Owns: knowing which TCP connection of an XPUB belongs to which CURVE
    key, so that a subscriber whose key was taken out of the clients
    directory can be cut off.  ZeroMQ gives a publisher no call to drop
    one subscriber, and an open CURVE session outlives its key: the
    handshake is the only check.  Every subscription message carries the
    descriptor it came in on (ZMQ_SRCFD) and its session's User-Id, so
    each subscriber that subscribes is noted (the socket needs
    ZMQ_XPUB_VERBOSE, or a second subscriber to a prefix is never seen);
    a cut shuts that descriptor down (shutdown(2)), which libzmq takes
    for the peer going away.  The subscriber's reconnection then meets
    the handshake, which refuses the key.

    A descriptor is reused once its connection closes; before it is cut,
    the connection is checked to still be the one noted (the same peer
    address and port), so nobody else's is ever touched.
*/
#ifndef PM_PEERS_H
#define PM_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

typedef struct pm_peers_t pm_peers_t;

pm_peers_t *pm_peers_new (void);
void pm_peers_destroy (pm_peers_t **self_p);

/*  Notes the connection msg came in on, with its session's key.  A
    message with no key (ipc) or no descriptor is ignored. */
void pm_peers_note (pm_peers_t *self, zmq_msg_t *msg);

/*  Cuts every noted connection, still open, whose key allowed (arg,
    key) refuses.  Returns how many were cut. */
size_t pm_peers_cut (pm_peers_t *self,
                     bool (*allowed) (void *arg, const char *key),
                     void *arg);

/*  Connections noted now (still open or not yet found closed). */
size_t pm_peers_count (const pm_peers_t *self);

#endif
