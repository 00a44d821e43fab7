/*  publish.c - the PUB socket (publish.h)

    Each message is two frames, topic then body, sent with ZMQ_DONTWAIT.
    A PUB socket drops rather than blocks when a subscriber's queue is
    full, so the only failure seen here is an internal one; it is counted.
*/
#include "publish.h"
#include "agentlog.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pm_publish_t {
    zsock_t *sock;            /* PUB, owned */
    char *agent;              /* agent name, owned */
    uint64_t agent_seq;       /* last agent event seq */
    uint64_t sent;
    uint64_t dropped;
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
    zsock_t *sock = zsock_new (ZMQ_PUB);
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
    return self;
}

void
pm_publish_destroy (pm_publish_t **self_p)
{
    pm_publish_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

static void
s_send (pm_publish_t *self, const pm_event_t *event)
{
    char topic [3 * PM_NAME_MAX + 16];
    int len = pm_topic_format (topic, sizeof topic, event->kind, event->agent,
                               event->service, event->stream);
    char *data = NULL;
    size_t size = 0;
    if (len < 0 || pm_event_encode (event, &data, &size) == -1) {
        //  Cannot happen within the config's limits; say so if it does.
        if (self->dropped++ == 0)
            pm_log_error ("cannot publish on %s: the message does not "
                          "encode (over 1 MiB?); counting such drops",
                          len < 0 ? "(topic too long)" : topic);
        free (data);
        return;
    }
    void *handle = zsock_resolve (self->sock);
    if (zmq_send (handle, topic, (size_t) len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (handle, data, size, ZMQ_DONTWAIT) == -1)
        self->dropped++;
    else
        self->sent++;
    free (data);
}

void
pm_publish_state (pm_publish_t *self, const char *service, uint64_t seq,
                  double ts, pm_state_t old_state, pm_state_t new_state,
                  const pm_record_t *record)
{
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
    s_send (self, &event);
}

void
pm_publish_log (pm_publish_t *self, const char *service, uint64_t seq,
                double ts, pm_stream_t stream, const char *line, size_t size,
                bool partial)
{
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
    s_send (self, &event);
}

uint64_t
pm_publish_agent (pm_publish_t *self, const char *name, const char *message)
{
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_AGENT;
    event.seq = ++self->agent_seq;
    event.ts = s_now ();
    event.agent = self->agent;
    event.event = (char *) name;
    event.message = (char *) message;
    s_send (self, &event);
    return event.seq;
}

uint64_t
pm_publish_sent (const pm_publish_t *self)
{
    return self->sent;
}

uint64_t
pm_publish_dropped (const pm_publish_t *self)
{
    return self->dropped;
}
