/*  publish.c - the PUB side (publish.h)

    Each message is two frames, topic then body, sent with ZMQ_DONTWAIT.
    The socket is an XPUB: it behaves as a PUB for subscribers, and tells
    us which topic prefixes are subscribed.  A message no subscription
    matches is not even encoded, which is most of what publishing costs a
    chatty service when nobody is listening.  Subscriptions are read before
    every decision, so one made just before a message is never missed.

    A full subscriber queue drops rather than blocks, silently (the XPUB
    does not tell us): the subscriber sees the gap in seq and fetches what
    it missed (`logs since`).
*/
#include "publish.h"
#include "agentlog.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pm_publish_t {
    zsock_t *sock;            /* XPUB, owned */
    char *agent;              /* agent name, owned */
    uint64_t agent_seq;       /* last agent event seq */
    bool unencodable;         /* a message did not encode (logged once) */
    char **prefixes;          /* subscribed topic prefixes, owned */
    size_t prefixes_count;
    pm_buffer_t *buffer;      /* encoding buffer, reused */
    zloop_t *loop;            /* watching the socket, or NULL; not owned */
};

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

pm_publish_t *
pm_publish_new (const char *endpoint, const char *agent, char *err,
                size_t errlen)
{
    zsock_t *sock = zsock_new (ZMQ_XPUB);
    if (!sock) {
        snprintf (err, errlen, "cannot create PUB socket: %s",
                  zmq_strerror (zmq_errno ()));
        return NULL;
    }
    zsock_set_sndhwm (sock, PM_PUB_HWM);
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
    self->buffer = pm_buffer_new ();
    return self;
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
    for (size_t i = 0; i < self->prefixes_count; i++)
        free (self->prefixes [i]);
    free (self->prefixes);
    pm_buffer_destroy (&self->buffer);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

//  Reads the subscription messages waiting on the XPUB: 1 + prefix to
//  subscribe, 0 + prefix to unsubscribe.  Without XPUB_VERBOSE, libzmq
//  passes only the first subscription and the last unsubscription of a
//  prefix, so the set below is the set of prefixes someone wants.
static void
s_read_subscriptions (pm_publish_t *self)
{
    void *handle = zsock_resolve (self->sock);
    char data [3 * PM_NAME_MAX + 32];
    while (true) {
        int got = zmq_recv (handle, data, sizeof data, ZMQ_DONTWAIT);
        if (got < 1)
            break;
        size_t len = (size_t) got > sizeof data ? sizeof data : (size_t) got;
        const char *prefix = data + 1;
        size_t prefix_len = len - 1;
        size_t found = self->prefixes_count;
        for (size_t i = 0; i < self->prefixes_count; i++)
            if (strlen (self->prefixes [i]) == prefix_len
            &&  memcmp (self->prefixes [i], prefix, prefix_len) == 0)
                found = i;
        if (data [0] == 1 && found == self->prefixes_count) {
            self->prefixes = realloc (self->prefixes, (self->prefixes_count + 1)
                                      * sizeof *self->prefixes);
            assert (self->prefixes);
            char *copy = malloc (prefix_len + 1);
            assert (copy);
            memcpy (copy, prefix, prefix_len);
            copy [prefix_len] = 0;
            self->prefixes [self->prefixes_count++] = copy;
        }
        else
        if (data [0] == 0 && found < self->prefixes_count) {
            free (self->prefixes [found]);
            self->prefixes [found] = self->prefixes [--self->prefixes_count];
        }
    }
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

//  True if some subscription matches topic (as last read).
static bool
s_wanted (pm_publish_t *self, const char *topic, size_t len)
{
    for (size_t i = 0; i < self->prefixes_count; i++) {
        size_t plen = strlen (self->prefixes [i]);
        if (plen <= len && memcmp (self->prefixes [i], topic, plen) == 0)
            return true;
    }
    return false;
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
    if (len >= 0 && !s_wanted (self, topic, (size_t) len)) {
        return;
    }
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_STATE;
    event.seq = seq;
    event.ts = ts;
    event.agent = self->agent;
    event.service = (char *) service;
    event.old_state = old_state;
    event.new_state = new_state;
    event.record = *record;
    s_send (self, topic, len, &event);
}

void
pm_publish_log (pm_publish_t *self, const char *service, uint64_t seq,
                double ts, pm_stream_t stream, const char *line, size_t size,
                bool partial)
{
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_LOG,
                               self->agent, service, stream);
    if (len >= 0 && !s_wanted (self, topic, (size_t) len)) {
        return;
    }
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_LOG;
    event.seq = seq;
    event.ts = ts;
    event.agent = self->agent;
    event.service = (char *) service;
    event.stream = stream;
    event.line = (char *) line;
    event.line_size = size;
    event.partial = partial;
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
    if (len >= 0 && !s_wanted (self, topic, (size_t) len)) {
        return seq;
    }
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_AGENT;
    event.seq = seq;
    event.ts = s_now ();
    event.agent = self->agent;
    event.event = (char *) name;
    event.message = (char *) message;
    s_send (self, topic, len, &event);
    return seq;
}
