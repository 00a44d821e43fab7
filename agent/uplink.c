/*  uplink.c - the agent's link to a broker (uplink.h) */
#include "uplink.h"
#include "linkmsg.h"
#include "agentlog.h"
#include "curve.h"
#include "pm_link.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

//  A refused agent asks again this many heartbeats later.
#define S_RETRY_BEATS 3
//  Until the broker answers, REGISTER is tried this often: a broker that
//  is there hears of a new agent at once.
#define S_REGISTER_MS 100
//  Messages queued for the broker before the link drops (like
//  agent.subscriber_queue's default for a local subscriber).
#define S_LINK_QUEUE 4096

struct pm_uplink_t {
    zloop_t *loop;            /* not owned */
    zsock_t *dealer;
    char *endpoint;
    pm_control_t *control;    /* not owned */
    pm_supervisor_t *sup;     /* not owned */
    pm_publish_t *pub;        /* not owned */
    char instance [PM_INSTANCE_MAX + 1];  /* this run of the agent */
    int timer;                /* heartbeat timer id */
    size_t heartbeat_ms;
    bool registered;
    bool refused;             /* the last REGISTER was refused */
    unsigned beats;           /* ticks since the last REGISTER */
    uint64_t dropped;         /* messages the full link did not take */
};

//  The broker's public certificate or this agent's secret one.
static zcert_t *
s_load_cert (const char *path, const char *what, bool with_secret,
             char *err, size_t errlen)
{
    char full [64];
    snprintf (full, sizeof full, "broker's %s", what);
    return pm_curve_load_cert (path, full, with_secret,
                               with_secret ? "agent.broker.key"
                                           : "agent.broker.server_key",
                               err, errlen);
}

int
pm_uplink_check (const char *endpoint, const char *server_key,
                 const char *key, char *err, size_t errlen)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return 0;
    zcert_t *server = s_load_cert (server_key, "public key", false, err,
                                   errlen);
    zcert_t *own = server ? s_load_cert (key, "secret key", true, err, errlen)
                          : NULL;
    int rc = server && own ? 0 : -1;
    zcert_destroy (&server);
    zcert_destroy (&own);
    return rc;
}

static void
s_send_register (pm_uplink_t *self)
{
    char *hello = NULL;
    size_t size = 0;
    if (pm_control_hello (self->control, &hello, &size) == -1)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, PM_LINK_REGISTER);
    zmsg_addstr (msg, self->instance);
    zmsg_addmem (msg, hello, size);
    free (hello);
    size_t count = pm_supervisor_size (self->sup);
    for (size_t i = 0; i < count; i++)
        zmsg_addstr (msg, pm_supervisor_name (self->sup, i));
    //  Not connected (ZMQ_IMMEDIATE) or full: the next tick tries again.
    if (zmsg_send (&msg, self->dealer) == -1)
        zmsg_destroy (&msg);
    self->beats = 0;
}

static void
s_send_word (pm_uplink_t *self, const char *word)
{
    zmq_send (zsock_resolve (self->dealer), word, strlen (word), ZMQ_DONTWAIT);
}

static int s_on_tick (zloop_t *loop, int timer_id, void *arg);

static void
s_set_heartbeat (pm_uplink_t *self, size_t ms)
{
    if (ms < 10 || ms > 600000 || ms == self->heartbeat_ms)
        return;
    self->heartbeat_ms = ms;
    zloop_timer_end (self->loop, self->timer);
    self->timer = zloop_timer (self->loop, ms, 0, s_on_tick, self);
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    pm_uplink_t *self = (pm_uplink_t *) arg;
    self->beats++;
    if (self->registered)
        s_send_word (self, PM_LINK_HEARTBEAT);
    else
    if (!self->refused) {
        //  No answer yet: try again soon, then less and less often (no
        //  broker there must not cost ten wakeups a second for ever).
        s_send_register (self);
        size_t next = self->heartbeat_ms * 2;
        s_set_heartbeat (self, next < PM_LINK_HEARTBEAT_MS
                               ? next : PM_LINK_HEARTBEAT_MS);
    }
    else
    if (self->beats >= S_RETRY_BEATS)
        s_send_register (self);
    return 0;
}


//  The broker's copy of what the agent publishes.
static void
s_relay_publish (void *arg, const char *topic, size_t len, const void *body,
                 size_t size)
{
    pm_uplink_t *self = (pm_uplink_t *) arg;
    if (!self->registered)
        return;
    void *handle = zsock_resolve (self->dealer);
    if (zmq_send (handle, PM_LINK_PUBLISH, strlen (PM_LINK_PUBLISH),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        //  Subscribers through the broker see the gap in seq.
        if (self->dropped++ == 0)
            pm_log_warn ("broker %s: the link is full, messages for the "
                         "broker's subscribers are being dropped (they see "
                         "the gap)", self->endpoint);
        return;
    }
    //  A message once begun is queued whole.
    zmq_send (handle, topic, len, ZMQ_SNDMORE);
    zmq_send (handle, body, size, 0);
}

//  A reply to a request the broker relayed.
static void
s_relay_reply (void *arg, const void *token, size_t token_size,
               const void *reply, size_t size)
{
    pm_uplink_t *self = (pm_uplink_t *) arg;
    void *handle = zsock_resolve (self->dealer);
    if (zmq_send (handle, PM_LINK_REPLY, strlen (PM_LINK_REPLY),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return;
    zmq_send (handle, token, token_size, ZMQ_SNDMORE);
    zmq_send (handle, reply, size, 0);
}

static void
s_on_registered (pm_uplink_t *self, const pm_link_msg_t *link)
{
    if (!self->registered || self->refused)
        pm_log_info ("broker %s: registered", self->endpoint);
    self->registered = true;
    self->refused = false;
    pm_publish_relay_clear (self->pub);
    for (size_t i = 0; i < link->prefixes_count; i++)
        pm_publish_relay_subscribe (self->pub, link->prefixes [i].data,
                                    link->prefixes [i].size, true);
    s_set_heartbeat (self, (size_t) link->heartbeat_ms);
}

static int
s_on_message (zloop_t *loop, zsock_t *dealer, void *arg)
{
    pm_uplink_t *self = (pm_uplink_t *) arg;
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg)
        return 0;
    pm_linkmsg_t link;
    char why [320];
    if (pm_linkmsg_parse (msg, &link, why, sizeof why) == -1) {
        pm_log_debug ("broker %s: ignored a malformed message: %s",
                      self->endpoint, why);
        zmsg_destroy (&msg);
        return 0;
    }
    const pm_link_msg_t *in = &link.msg;
    switch (in->word) {
        case PM_LINK_W_REQUEST: {
            //  A fresh frame: nothing of the link's own metadata.
            zframe_t *body = zframe_new (in->body.data, in->body.size);
            pm_control_relayed (self->control, &in->token, sizeof in->token,
                                &body);
            break;
        }
        case PM_LINK_W_SUBSCRIBE:
        case PM_LINK_W_UNSUBSCRIBE:
            pm_publish_relay_subscribe (self->pub, in->prefixes [0].data,
                                        in->prefixes [0].size,
                                        in->word == PM_LINK_W_SUBSCRIBE);
            break;
        case PM_LINK_W_REGISTERED:
            s_on_registered (self, in);
            break;
        case PM_LINK_W_UNKNOWN:
            //  A broker that does not know us (it restarted): register
            //  again.
            if (self->registered)
                pm_log_info ("broker %s does not know this agent (it "
                             "restarted?): registering again",
                             self->endpoint);
            self->registered = false;
            s_send_register (self);
            s_set_heartbeat (self, S_REGISTER_MS);
            break;
        case PM_LINK_W_REFUSED:
            if (!self->refused)
                pm_log_warn ("broker %s refused this agent: %.*s (asking "
                             "again every %d heartbeats)", self->endpoint,
                             in->body.size ? (int) in->body.size : 15,
                             in->body.size ? (const char *) in->body.data
                                           : "no reason given",
                             S_RETRY_BEATS);
            self->registered = false;
            self->refused = true;
            s_set_heartbeat (self, PM_LINK_HEARTBEAT_MS);
            break;
        default:
            pm_log_debug ("broker %s: ignored a %.*s message", self->endpoint,
                          (int) link.frames [0].size,
                          (const char *) link.frames [0].data);
            break;
    }
    pm_linkmsg_clear (&link);
    zmsg_destroy (&msg);
    return 0;
}

pm_uplink_t *
pm_uplink_new (zloop_t *loop, const char *endpoint, const char *server_key,
               const char *key, const char *instance, pm_control_t *control,
               pm_supervisor_t *sup, pm_publish_t *pub, char *err,
               size_t errlen)
{
    pm_uplink_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->endpoint = strdup (endpoint);
    self->control = control;
    self->sup = sup;
    self->pub = pub;
    self->timer = -1;
    snprintf (self->instance, sizeof self->instance, "%s", instance);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        snprintf (err, errlen, "cannot create the broker socket");
        pm_uplink_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    //  Nothing queues for a broker that is not there, and no send waits:
    //  with no connection (or a full one) it fails at once (EAGAIN).
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndtimeo (self->dealer, 0);
    //  Room for bursts of lines while the broker catches up: each log
    //  message holds at most 8 KiB of lines (logbatch.h).
    zsock_set_sndhwm (self->dealer, S_LINK_QUEUE);
    zsock_set_maxmsgsize (self->dealer, 2 * PM_FRAME_MAX);
    zsock_set_heartbeat_ivl (self->dealer, 2000);
    zsock_set_heartbeat_timeout (self->dealer, 6000);
    if (strncmp (endpoint, "tcp://", 6) == 0) {
        zcert_t *server = s_load_cert (server_key, "public key", false, err,
                                       errlen);
        zcert_t *own = server ? s_load_cert (key, "secret key", true, err,
                                             errlen) : NULL;
        if (!own) {
            zcert_destroy (&server);
            pm_uplink_destroy (&self);
            return NULL;
        }
        zcert_apply (own, self->dealer);
        zsock_set_curve_serverkey (self->dealer, zcert_public_txt (server));
        zsock_set_handshake_ivl (self->dealer, 5000);
        zcert_destroy (&server);
        zcert_destroy (&own);
    }
    if (zsock_connect (self->dealer, "%s", endpoint) == -1
    ||  zloop_reader (loop, self->dealer, s_on_message, self) == -1) {
        snprintf (err, errlen, "cannot connect to the broker at %s: %s",
                  endpoint, zmq_strerror (zmq_errno ()));
        pm_uplink_destroy (&self);
        return NULL;
    }
    zloop_reader_set_tolerant (loop, self->dealer);
    self->heartbeat_ms = S_REGISTER_MS;
    self->timer = zloop_timer (loop, self->heartbeat_ms, 0, s_on_tick, self);
    pm_control_set_relay (control, s_relay_reply, self);
    pm_publish_set_relay (pub, s_relay_publish, self);
    pm_log_info ("broker %s: connecting (instance %s)", endpoint,
                 self->instance);
    s_send_register (self);
    return self;
}

void
pm_uplink_destroy (pm_uplink_t **self_p)
{
    pm_uplink_t *self = *self_p;
    if (!self)
        return;
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    if (self->dealer) {
        zloop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
    }
    if (self->control)
        pm_control_set_relay (self->control, NULL, NULL);
    if (self->pub)
        pm_publish_set_relay (self->pub, NULL, NULL);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
pm_uplink_services_changed (pm_uplink_t *self)
{
    if (self->registered)
        s_send_register (self);
}
