/*  publish.h - the events socket: events, topics, sequence numbers

    Owns: the agent's XPUB socket and its settings (high-water mark,
    linger), the topic prefixes its subscribers asked for (read from the
    socket, kept in a pm_prefixes_t), which messages are encoded and sent,
    and the agent event stream's sequence number.  Leaves to others:
    building topics and encoding bodies (libpmproto), and the service
    state and log sequence numbers, which belong to the service and the
    log capture and are passed in.

    Publishing never blocks: a subscriber past its high-water mark loses
    messages (and sees the gap in seq), the agent and the services never
    wait for it.  The socket drops those silently, so the agent cannot
    count them, and does not pretend to.
*/
#ifndef PM_PUBLISH_H
#define PM_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pm_proto.h"
#include <czmq.h>

#include "curve.h"

/*  How long, at shutdown, the socket keeps trying to deliver what is
    queued (milliseconds). */
#define PM_PUB_LINGER 2000

typedef struct pm_publish_t pm_publish_t;

/*  Binds an XPUB socket to endpoint, queueing up to queue messages per
    subscriber (agent.subscriber_queue) before that subscriber loses some.
    A log message holds at most PM_LOGBATCH_BYTES of lines or a single
    longer line, so a subscriber that stops reading costs at most about
    queue x 8 KiB.  Returns NULL with a message in err. */
pm_publish_t *pm_publish_new (const char *endpoint, const char *agent,
                              const char *instance, size_t queue,
                              char *err, size_t errlen);

/*  A copy of every message a broker's subscribers want, encoded once:
    topic (len bytes) and body.  The relay must not block. */
typedef void (pm_publish_relay_fn) (void *arg, const char *topic, size_t len,
                                    const void *body, size_t size);

/*  Messages on a topic a relayed prefix starts also go to relay (the
    uplink to a broker), and count as heard: encoded though no local
    subscriber wants them. */
void pm_publish_set_relay (pm_publish_t *self, pm_publish_relay_fn *relay,
                           void *arg);
/*  The broker's subscribers want (subscribe) or no longer want the
    prefix; pm_publish_relay_clear forgets them all (a new broker
    session sends its whole set). */
void pm_publish_relay_subscribe (pm_publish_t *self, const void *prefix,
                                 size_t size, bool subscribe);
void pm_publish_relay_clear (pm_publish_t *self);

/*  Binds the events socket to a TCP endpoint too, as a CURVE server with
    curve's keys (a subscriber is admitted by the same handshake as a
    control client).  Returns 0, or -1 with a message in err. */
int pm_publish_bind_tcp (pm_publish_t *self, const char *endpoint,
                         const pm_curve_t *curve, char *err, size_t errlen);
void pm_publish_destroy (pm_publish_t **self_p);

/*  Cuts the TCP subscribers whose key curve no longer allows (after a
    reload of the keys): ZeroMQ has no call to drop one subscriber, so
    their connections are shut down (peers.h); they reconnect, and their
    handshake is refused.  Returns how many were cut. */
size_t pm_publish_cut_revoked (pm_publish_t *self, const pm_curve_t *curve);

/*  Reads the subscriptions the socket has for us now.  Log lines are
    published only on topics someone subscribed to, as last read: the log
    capture calls this once per chunk it reads. */
void pm_publish_refresh (pm_publish_t *self);

/*  Also reads subscriptions whenever the socket signals them.  Returns 0,
    or -1 with a message in err. */
int pm_publish_watch (pm_publish_t *self, zloop_t *loop, char *err,
                      size_t errlen);

/*  Publishes a state transition of service (record borrowed). */
void pm_publish_state (pm_publish_t *self, const char *service, uint64_t seq,
                       double ts, pm_state_t old_state, pm_state_t new_state,
                       const pm_record_t *record);

/*  True if someone subscribed to the log topic of service's stream (as
    last read): lines nobody listens to need not even be batched. */
bool pm_publish_log_heard (pm_publish_t *self, const char *service,
                           pm_stream_t stream);

/*  Publishes count consecutive lines of service's stream (PROTOCOL.md
    8.2), the first with seq, as one message; only each line's line,
    line_size and partial are read (lines borrowed). */
void pm_publish_log (pm_publish_t *self, const char *service, uint64_t seq,
                     double ts, pm_stream_t stream, const pm_line_t *lines,
                     size_t count);

/*  Publishes an agent event ("started", "shutdown", ...); message may be
    NULL.  Returns its seq. */
uint64_t pm_publish_agent (pm_publish_t *self, const char *event,
                           const char *message);

#endif
