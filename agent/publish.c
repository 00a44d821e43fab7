/*  publish.c - the events socket (publish.h)

    Each message is two frames, topic then body, sent with ZMQ_DONTWAIT.
    The socket is an XPUB: it behaves as a PUB for subscribers, and tells
    us which topic prefixes are subscribed.  A message no subscription
    matches is not even encoded, which is most of what publishing costs a
    chatty service when nobody is listening.  Subscriptions are read before
    every decision, so one made just before a message is never missed.

    The prefixes are bytes from peers: kept with their lengths (a NUL is a
    byte), and capped (prefixes.h); past the cap the filter is off and
    everything is published, so the cap never costs a subscriber a message.
    Each change is logged at debug level with the count held.

    A full subscriber queue drops rather than blocks, silently (the XPUB
    does not tell us): the subscriber sees the gap in seq and fetches what
    it missed (`logs since`).
*/
#include "publish.h"
#include "peers.h"
#include "agentlog.h"
#include "prefixes.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pm_publish_t {
    zsock_t *sock;            /* XPUB, owned */
    char *agent;              /* agent name, owned */
    char *instance;           /* this run of the agent, owned */
    uint64_t agent_seq;       /* last agent event seq */
    pm_prefixes_t *prefixes;  /* subscribed topic prefixes, owned */
    bool unencodable;         /* a message did not encode (logged once) */
    pm_buffer_t *buffer;      /* encoding buffer, reused */
    zloop_t *loop;            /* watching the socket, or NULL; not owned */
    pm_publish_relay_fn *relay;   /* a broker's copy, or NULL */
    void *relay_arg;
    pm_prefixes_t *relayed;   /* what the broker's subscribers want */
    pm_peers_t *peers;        /* TCP subscribers by key, or NULL */
};

pm_publish_t *
pm_publish_new (const char *endpoint, const char *agent,
                const char *instance, size_t queue, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new (ZMQ_XPUB);
    if (!sock) {
        snprintf (err, errlen, "cannot create the events socket: %s",
                  zmq_strerror (zmq_errno ()));
        return NULL;
    }
    zsock_set_sndhwm (sock, (int) queue);
    zsock_set_linger (sock, PM_PUB_LINGER);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        snprintf (err, errlen, "cannot bind events socket %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    pm_publish_t *self = calloc (1, sizeof *self);
    assert (self);
    self->sock = sock;
    self->agent = strdup (agent);
    self->instance = strdup (instance);
    assert (self->agent && self->instance);
    self->prefixes = pm_prefixes_new (PM_PREFIXES_MAX);
    self->buffer = pm_buffer_new ();
    return self;
}

int
pm_publish_bind_tcp (pm_publish_t *self, const char *endpoint,
                     const pm_curve_t *curve, char *err, size_t errlen)
{
    pm_curve_server (curve, self->sock, PM_CURVE_CLIENTS);
    //  Every subscription message, not only a prefix's first: each
    //  subscriber is then seen, with its key (peers.h).
    zsock_set_xpub_verbose (self->sock, 1);
    if (!self->peers)
        self->peers = pm_peers_new ();
    int rc = zsock_bind (self->sock, "%s", endpoint);
    if (rc == -1)
        snprintf (err, errlen, "cannot bind events socket %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
    return rc == -1 ? -1 : 0;
}

void
pm_publish_set_relay (pm_publish_t *self, pm_publish_relay_fn *relay,
                      void *arg)
{
    self->relay = relay;
    self->relay_arg = arg;
    if (!self->relayed)
        self->relayed = pm_prefixes_new (PM_PREFIXES_MAX);
}

void
pm_publish_relay_subscribe (pm_publish_t *self, const void *prefix,
                            size_t size, bool subscribe)
{
    if (!self->relayed)
        return;
    if (subscribe)
        pm_prefixes_add (self->relayed, prefix, size);
    else
        pm_prefixes_remove (self->relayed, prefix, size);
}

void
pm_publish_relay_clear (pm_publish_t *self)
{
    if (!self->relayed)
        return;
    pm_prefixes_destroy (&self->relayed);
    self->relayed = pm_prefixes_new (PM_PREFIXES_MAX);
}

void
pm_publish_destroy (pm_publish_t **self_p)
{
    pm_publish_t *self = *self_p;
    if (!self)
        return;
    if (self->loop)
        zloop_reader_end (self->loop, self->sock);
    zsock_destroy (&self->sock);
    pm_prefixes_destroy (&self->prefixes);
    pm_prefixes_destroy (&self->relayed);
    pm_peers_destroy (&self->peers);
    pm_buffer_destroy (&self->buffer);
    free (self->agent);
    free (self->instance);
    free (self);
    *self_p = NULL;
}

//  A prefix as log text: printable ASCII as it is, any other byte (and the
//  backslash and quote) as \xNN.  buf holds 4 * PM_TOPIC_MAX + 1 bytes.
static const char *
s_printable (char *buf, const unsigned char *data, size_t size)
{
    size_t at = 0;
    for (size_t i = 0; i < size && i < PM_TOPIC_MAX; i++) {
        if (data [i] >= 0x20 && data [i] < 0x7f
        &&  data [i] != '\\' && data [i] != '\'')
            buf [at++] = (char) data [i];
        else
            at += (size_t) sprintf (buf + at, "\\x%02x", data [i]);
    }
    buf [at] = 0;
    return buf;
}

//  One subscription change: 1 + prefix or 0 + prefix (size >= 1).
static void
s_subscription (pm_publish_t *self, const unsigned char *data, size_t size)
{
    const unsigned char *prefix = data + 1;
    size_t prefix_size = size - 1;
    bool subscribe = data [0] == 1;
    bool was_full = pm_prefixes_overflowed (self->prefixes);
    int rc = subscribe
           ? pm_prefixes_add (self->prefixes, prefix, prefix_size)
           : pm_prefixes_remove (self->prefixes, prefix, prefix_size);
    char text [4 * PM_TOPIC_MAX + 1];
    if (rc == 1)
        pm_log_debug ("events: %s '%s' (%zu prefixes held)",
                      subscribe ? "subscribed to" : "unsubscribed from",
                      s_printable (text, prefix, prefix_size),
                      pm_prefixes_count (self->prefixes));
    else
    if (rc == -1 && !was_full)
        pm_log_warn ("events: a subscription to '%s' is past the %d "
                     "prefixes the agent tracks; from now on every "
                     "message is published, listened to or not",
                     s_printable (text, prefix, prefix_size),
                     PM_PREFIXES_MAX);
}

//  Reads the subscription messages waiting on the XPUB: 1 + prefix to
//  subscribe, 0 + prefix to unsubscribe.  Without XPUB_VERBOSE, libzmq
//  passes only the first subscription and the last unsubscription of a
//  prefix, so the set is the set of prefixes someone wants.  It also
//  passes on, as they are, frames an XSUB sent that are not subscriptions:
//  libzmq treats any frame starting with 0 or 1 as a subscription change,
//  even inside a multi-frame message, so each frame is judged alone.
static void
s_read_subscriptions (pm_publish_t *self)
{
    void *handle = zsock_resolve (self->sock);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) != -1) {
        const unsigned char *data = zmq_msg_data (&msg);
        size_t size = zmq_msg_size (&msg);
        if (size == 0 || (data [0] != 0 && data [0] != 1))
            continue;
        if (self->peers && data [0] == 1)
            pm_peers_note (self->peers, &msg);
        //  Cut to PM_TOPIC_MAX + 1 bytes, a longer prefix is still too
        //  long to start a topic, and is not held (prefixes.h).
        if (size > 1 + PM_TOPIC_MAX + 1)
            size = 1 + PM_TOPIC_MAX + 1;
        s_subscription (self, data, size);
    }
    zmq_msg_close (&msg);
}

size_t
pm_publish_cut_revoked (pm_publish_t *self, const pm_curve_t *curve)
{
    //  What waits is read first: a subscriber that just subscribed is
    //  noted before the cut.
    s_read_subscriptions (self);
    return self->peers ? pm_peers_cut (self->peers, pm_curve_client_allowed,
                                       (void *) curve)
                       : 0;
}

void
pm_publish_refresh (pm_publish_t *self)
{
    s_read_subscriptions (self);
}

static int
s_on_subscription (zloop_t *loop, zsock_t *sock, void *arg)
{
    s_read_subscriptions ((pm_publish_t *) arg);
    return 0;
}

int
pm_publish_watch (pm_publish_t *self, zloop_t *loop, char *err,
                  size_t errlen)
{
    errno = 0;
    if (zloop_reader (loop, self->sock, s_on_subscription, self) == -1) {
        int error = errno;
        snprintf (err, errlen, "cannot watch the events socket for "
                  "subscriptions: zloop_reader failed%s%s",
                  error ? ": " : "", error ? strerror (error) : "");
        return -1;
    }
    self->loop = loop;
    return 0;
}

//  True if the message on topic (len bytes, or -1: it could not be built)
//  goes on to be encoded and sent; s_send reports a topic that could not
//  be built.
static bool
s_relayed (pm_publish_t *self, const char *topic, int len)
{
    return self->relay && len >= 0
        && pm_prefixes_match (self->relayed, topic, (size_t) len);
}

static bool
s_heard (pm_publish_t *self, const char *topic, int len)
{
    return len < 0 || pm_prefixes_match (self->prefixes, topic, (size_t) len)
        || s_relayed (self, topic, len);
}

static void
s_send (pm_publish_t *self, const char *topic, int len,
        const pm_event_t *event)
{
    if (len < 0 || pm_event_encode_to (event, self->buffer) == -1) {
        //  Cannot happen within the config's limits; say so if it does.
        if (!self->unencodable)
            pm_log_error ("cannot publish on %s: the message does not "
                          "encode (over 1 MiB?); not saying it again",
                          len < 0 ? "(bad topic)" : topic);
        self->unencodable = true;
        return;
    }
    //  Never fails for lack of room: an XPUB drops, silently, for each
    //  subscriber at its high-water mark.
    void *handle = zsock_resolve (self->sock);
    if (zmq_send (handle, topic, (size_t) len, ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1)
        zmq_send (handle, pm_buffer_data (self->buffer),
                  pm_buffer_size (self->buffer), ZMQ_DONTWAIT);
    if (s_relayed (self, topic, len))
        self->relay (self->relay_arg, topic, (size_t) len,
                     pm_buffer_data (self->buffer),
                     pm_buffer_size (self->buffer));
}

void
pm_publish_state (pm_publish_t *self, const char *service, uint64_t seq,
                  double ts, pm_state_t old_state, pm_state_t new_state,
                  const pm_record_t *record)
{
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_STATE,
                               self->agent, service, PM_STREAM_OUT);
    s_read_subscriptions (self);
    if (!s_heard (self, topic, len))
        return;
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_STATE;
    event.seq = seq;
    event.ts = ts;
    event.agent = self->agent;
    event.instance = self->instance;
    event.service = (char *) service;
    event.old_state = old_state;
    event.new_state = new_state;
    event.record = *record;
    s_send (self, topic, len, &event);
}

bool
pm_publish_log_heard (pm_publish_t *self, const char *service,
                      pm_stream_t stream)
{
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_LOG,
                               self->agent, service, stream);
    return s_heard (self, topic, len);
}

void
pm_publish_log (pm_publish_t *self, const char *service, uint64_t seq,
                double ts, pm_stream_t stream, const pm_line_t *lines,
                size_t count)
{
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_LOG,
                               self->agent, service, stream);
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_LOG;
    event.seq = seq;
    event.ts = ts;
    event.agent = self->agent;
    event.instance = self->instance;
    event.service = (char *) service;
    event.stream = stream;
    event.lines = (pm_line_t *) lines;
    event.lines_count = count;
    s_send (self, topic, len, &event);
}

uint64_t
pm_publish_agent (pm_publish_t *self, const char *name, const char *message)
{
    //  Agent events are numbered whether or not anyone listens: a later
    //  subscriber can tell how many it missed.
    uint64_t seq = ++self->agent_seq;
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_AGENT,
                               self->agent, NULL, PM_STREAM_OUT);
    s_read_subscriptions (self);
    if (!s_heard (self, topic, len))
        return seq;
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_AGENT;
    event.seq = seq;
    event.ts = pm_wall_clock ();
    event.agent = self->agent;
    event.instance = self->instance;
    event.event = (char *) name;
    event.message = (char *) message;
    s_send (self, topic, len, &event);
    return seq;
}
