/*  broker.c - agents, clients and the requests between them (broker.h)

    Races and faults closed here:
    - Names are checked against the registry as it is when the request
      arrives; an agent that vanishes after the check is answered for by
      the broker: its targets get agent-unreachable, "outcome unknown"
      (PROTOCOL.md 13.4), the moment it is found unreachable.
    - Agents are told apart by routing id, never by name: a new process of
      an agent arrives under a new routing id (and instance), and takes
      the name over only from an agent that is no longer live.
    - Sends to agents never block (ROUTER_MANDATORY with DONTWAIT: a gone
      peer is EHOSTUNREACH, a full one EAGAIN, both a failed part); every
      part in flight has a deadline, so a frozen agent that still holds
      its connection cannot hold a client for ever.
*/
#include "broker.h"
#include "linkmsg.h"
#include "peers.h"
#include "agentlog.h"
#include "curve.h"
#include "pm_link.h"
#include "pm_proto.h"
#include "pm_rundir.h"
#include "prefixes.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  A part that waits for nothing is given this long.
#define S_ANSWER_MS 10000
//  On top of a waiting request's own timeout.
#define S_MARGIN_MS 2000


typedef struct {
    char *name;
    zframe_t *route;          /* routing id on the agents socket */
    char *instance;
    char *version;
    char *address;
    int64_t pid;
    char **services;
    size_t services_count;
    bool connected;
    double since;             /* when connected changed */
    int64_t seen_ms;          /* the last message from it */
} s_agent_t;

typedef struct {
    char *agent;              /* the agent's name */
    zframe_t *route;          /* the routing id it was sent to */
    uint64_t token;
    pm_reply_t *reply;        /* its answer, or NULL */
    bool lost;                /* the agent became unreachable */
} s_part_t;

typedef struct {
    zmsg_t *envelope;         /* the client's, for the reply */
    uint64_t id;
    pm_cmd_t cmd;
    s_part_t *parts;
    size_t count;
    size_t waiting;
    int64_t deadline_ms;      /* -1: none */
} s_pending_t;

struct pm_broker_t {
    zloop_t *loop;
    char *name;
    char *control_endpoint;
    char *events_endpoint;
    double started_at;
    size_t heartbeat_ms;
    size_t queue;             /* broker.subscriber_queue */
    pm_curve_t *curve;        /* NULL: ipc only */
    zsock_t *control;         /* clients: ROUTER */
    zsock_t *events;          /* clients: XPUB */
    zsock_t *agents;          /* agents: ROUTER */
    zlistx_t *registry;       /* s_agent_t, registration order */
    zlistx_t *pending;        /* s_pending_t */
    zhashx_t *prefixes;       /* subscribed prefixes (text) */
    pm_peers_t *peers;        /* TCP subscribers by key, or NULL */
    uint64_t tokens;
    uint64_t agent_seq;
    int timer;
    pm_buffer_t *buffer;
};

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

/* ------------------------------------------------------------------ */
/*  The registry                                                       */
/* ------------------------------------------------------------------ */

static void
s_agent_free (s_agent_t **agent_p)
{
    s_agent_t *agent = *agent_p;
    if (!agent)
        return;
    free (agent->name);
    zframe_destroy (&agent->route);
    free (agent->instance);
    free (agent->version);
    free (agent->address);
    for (size_t i = 0; i < agent->services_count; i++)
        free (agent->services [i]);
    free (agent->services);
    free (agent);
    *agent_p = NULL;
}

static s_agent_t *
s_agent_by_name (pm_broker_t *self, const char *name)
{
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry))
        if (strcmp (agent->name, name) == 0)
            return agent;
    return NULL;
}

static s_agent_t *
s_agent_by_route (pm_broker_t *self, zframe_t *route)
{
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry))
        if (agent->route && zframe_eq (agent->route, route))
            return agent;
    return NULL;
}

static bool
s_has_service (const s_agent_t *agent, const char *service)
{
    for (size_t i = 0; i < agent->services_count; i++)
        if (strcmp (agent->services [i], service) == 0)
            return true;
    return false;
}

//  agent/<name>/ event, from the broker.
static void
s_publish_agent (pm_broker_t *self, const s_agent_t *agent, const char *what)
{
    char topic [PM_TOPIC_MAX + 1];
    int len = pm_topic_format (topic, sizeof topic, PM_EVENT_AGENT,
                               agent->name, NULL, PM_STREAM_OUT);
    if (len < 0)
        return;
    char message [256];
    snprintf (message, sizeof message, "broker %s: agent %s %s", self->name,
              agent->name, what);
    pm_event_t event;
    memset (&event, 0, sizeof event);
    event.kind = PM_EVENT_AGENT;
    event.seq = ++self->agent_seq;
    event.ts = pm_wall_clock ();
    event.agent = agent->name;
    event.instance = agent->instance;
    event.event = (char *) what;
    event.message = message;
    if (pm_event_encode_to (&event, self->buffer) == -1)
        return;
    void *handle = zsock_resolve (self->events);
    if (zmq_send (handle, topic, (size_t) len, ZMQ_SNDMORE | ZMQ_DONTWAIT)
        != -1)
        zmq_send (handle, pm_buffer_data (self->buffer),
                  pm_buffer_size (self->buffer), ZMQ_DONTWAIT);
}

//  Sends the agent at route a message: word, then frames (may be NULL).
//  Returns 0, or -1 when the peer is gone or full.
static int
s_send_agent (pm_broker_t *self, zframe_t *route, const char *word,
              zmsg_t **frames_p)
{
    zmsg_t *msg = frames_p && *frames_p ? *frames_p : zmsg_new ();
    if (frames_p)
        *frames_p = NULL;
    zmsg_pushstr (msg, word);
    zframe_t *to = zframe_dup (route);
    zmsg_prepend (msg, &to);
    void *handle = zsock_resolve (self->agents);
    int rc = 0;
    zframe_t *frame = zmsg_first (msg);
    //  All DONTWAIT: a mandatory ROUTER fails the first frame at once for
    //  a peer that is gone or full, and then sends the rest whole.
    size_t left = zmsg_size (msg);
    while (frame) {
        int flags = --left ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT;
        if (zmq_send (handle, zframe_data (frame), zframe_size (frame),
                      flags) == -1) {
            rc = -1;
            break;
        }
        frame = zmsg_next (msg);
    }
    zmsg_destroy (&msg);
    return rc;
}

static void s_part_lost (pm_broker_t *self, const char *agent);

static void
s_set_connected (pm_broker_t *self, s_agent_t *agent, bool connected)
{
    if (agent->connected == connected)
        return;
    agent->connected = connected;
    agent->since = pm_wall_clock ();
    if (connected)
        pm_log_info ("agent %s (pid %lld) connected again", agent->name,
                     (long long) agent->pid);
    else
        pm_log_warn ("agent %s (pid %lld) unreachable: no heartbeat for "
                     "%zu ms", agent->name, (long long) agent->pid,
                     PM_LINK_MISSED * self->heartbeat_ms);
    s_publish_agent (self, agent, connected ? "connected" : "unreachable");
    if (!connected)
        s_part_lost (self, agent->name);
}

static void
s_registered (pm_broker_t *self, zframe_t *route)
{
    zmsg_t *frames = zmsg_new ();
    zmsg_addstrf (frames, "%zu", self->heartbeat_ms);
    for (void *item = zhashx_first (self->prefixes); item;
         item = zhashx_next (self->prefixes))
        zmsg_addstr (frames, (const char *) zhashx_cursor (self->prefixes));
    s_send_agent (self, route, PM_LINK_REGISTERED, &frames);
}

//  REGISTER instance hello name..., checked by pm_link_parse; takes
//  the names.
static void
s_on_register (pm_broker_t *self, zframe_t *route, pm_link_msg_t *link,
               const char *address)
{
    const pm_reply_t *hello = link->hello;
    const char *instance = link->instance;
    s_agent_t *holder = s_agent_by_name (self, hello->agent);
    s_agent_t *same = s_agent_by_route (self, route);
    if (holder && holder != same && holder->connected) {
        pm_log_warn ("agent %s (pid %lld, from %s) refused: the name is held "
                     "by a live agent (pid %lld, instance %s)", hello->agent,
                     (long long) hello->agent_pid, address, (long long)
                     holder->pid, holder->instance);
        zmsg_t *frames = zmsg_new ();
        zmsg_addstrf (frames, "the name %s is held by a live agent (pid "
                      "%lld) at broker %s", hello->agent,
                      (long long) holder->pid, self->name);
        s_send_agent (self, route, PM_LINK_REFUSED, &frames);
        return;
    }
    if (same && same != holder) {
        //  The same connection under another name (a new config): the
        //  old name goes.
        zlistx_delete (self->registry, zlistx_find (self->registry, same));
    }
    s_agent_t *agent = holder;
    bool fresh = !agent;
    if (fresh) {
        agent = calloc (1, sizeof *agent);
        assert (agent);
        agent->name = strdup (hello->agent);
        zlistx_add_end (self->registry, agent);
    }
    bool new_run = !agent->instance || strcmp (agent->instance, instance);
    if (agent->route && !zframe_eq (agent->route, route))
        //  A new process (or connection) under the name: what the old one
        //  was asked is lost.
        s_part_lost (self, agent->name);
    zframe_destroy (&agent->route);
    agent->route = zframe_dup (route);
    free (agent->instance);
    agent->instance = strdup (instance);
    free (agent->version);
    agent->version = strdup (hello->version ? hello->version : "");
    free (agent->address);
    agent->address = strdup (address);
    agent->pid = hello->agent_pid;
    for (size_t i = 0; i < agent->services_count; i++)
        free (agent->services [i]);
    free (agent->services);
    agent->services = link->names;
    agent->services_count = link->names_count;
    link->names = NULL;
    link->names_count = 0;
    agent->seen_ms = s_now_ms ();
    if (fresh || new_run || !agent->connected) {
        pm_log_info ("agent %s registered (pid %lld, instance %s, %zu "
                     "services, from %s)", agent->name,
                     (long long) agent->pid, agent->instance,
                     agent->services_count, agent->address);
        agent->connected = true;
        agent->since = pm_wall_clock ();
        s_publish_agent (self, agent, "connected");
    }
    s_registered (self, route);
}

/* ------------------------------------------------------------------ */
/*  Requests in flight                                                 */
/* ------------------------------------------------------------------ */

static void
s_pending_free (s_pending_t **pending_p)
{
    s_pending_t *pending = *pending_p;
    if (!pending)
        return;
    zmsg_destroy (&pending->envelope);
    for (size_t i = 0; i < pending->count; i++) {
        free (pending->parts [i].agent);
        zframe_destroy (&pending->parts [i].route);
        pm_reply_destroy (&pending->parts [i].reply);
    }
    free (pending->parts);
    free (pending);
    *pending_p = NULL;
}

static void
s_send_client (pm_broker_t *self, zmsg_t **envelope_p, pm_reply_t *reply)
{
    char *data = NULL;
    size_t size = 0;
    if (pm_reply_encode (reply, &data, &size) == -1) {
        pm_reply_t *fallback = pm_reply_new (reply->id);
        pm_reply_set_error (fallback, PM_ERR_INTERNAL, "reply too large");
        pm_reply_encode (fallback, &data, &size);
        pm_reply_destroy (&fallback);
    }
    zmsg_t *msg = *envelope_p;
    *envelope_p = NULL;
    zmsg_addmem (msg, data, size);
    free (data);
    if (zmsg_send (&msg, self->control) == -1)
        zmsg_destroy (&msg);
}

static char *
s_qualify (const char *service, const char *agent)
{
    char *name = NULL;
    if (asprintf (&name, "%s@%s", service, agent) < 0)
        abort ();
    return name;
}

//  The one reply made of the parts' replies.
static void
s_finish (pm_broker_t *self, s_pending_t *pending)
{
    //  A command for one agent: its reply as it is.
    bool single = pending->cmd == PM_CMD_HELLO || pending->cmd == PM_CMD_RELOAD
               || pending->cmd == PM_CMD_SHUTDOWN
               || pending->cmd == PM_CMD_LEASE;
    if (single && pending->count == 1 && pending->parts [0].reply) {
        pm_reply_t *got = pending->parts [0].reply;
        got->id = pending->id;
        s_send_client (self, &pending->envelope, got);
        return;
    }
    pm_reply_t *reply = pm_reply_new (pending->id);
    reply->ok = true;
    size_t lost = 0;
    s_part_t *failed = NULL;
    for (size_t i = 0; i < pending->count; i++)
        if (!pending->parts [i].reply)
            lost++;
    for (size_t i = 0; i < pending->count; i++) {
        s_part_t *part = &pending->parts [i];
        pm_reply_t *got = part->reply;
        if (!got) {
            pm_reply_add_err_name (reply, part->agent);
            continue;
        }
        if (pending->cmd == PM_CMD_STATUS && got->services_count) {
            size_t at = reply->services_count;
            reply->services = realloc (reply->services,
                                       (at + got->services_count)
                                       * sizeof *reply->services);
            assert (reply->services);
            for (size_t k = 0; k < got->services_count; k++) {
                reply->services [at + k] = got->services [k];
                reply->services [at + k].agent = strdup (part->agent);
                reply->services [at + k].instance = got->instance
                                                  ? strdup (got->instance)
                                                  : NULL;
            }
            reply->services_count += got->services_count;
            free (got->services);
            got->services = NULL;
            got->services_count = 0;
        }
        if (pending->cmd == PM_CMD_STATUS && !reply->services)
            reply->services = calloc (1, sizeof *reply->services);
        for (size_t k = 0; k < got->results_count; k++) {
            pm_result_t *result = &got->results [k];
            char *name = s_qualify (result->name, part->agent);
            pm_reply_add_result (reply, name, result->ok, result->state,
                                 result->note, result->error);
            free (name);
        }
        if (got->logs_count) {
            size_t at = reply->logs_count;
            reply->logs = realloc (reply->logs, (at + got->logs_count)
                                                * sizeof *reply->logs);
            assert (reply->logs);
            for (size_t k = 0; k < got->logs_count; k++) {
                reply->logs [at + k] = got->logs [k];
                char *name = s_qualify (got->logs [k].service, part->agent);
                free (reply->logs [at + k].service);
                reply->logs [at + k].service = name;
                reply->logs [at + k].instance = got->instance
                                              ? strdup (got->instance) : NULL;
            }
            reply->logs_count += got->logs_count;
            free (got->logs);
            got->logs = NULL;
            got->logs_count = 0;
        }
        if (!got->ok && reply->ok) {
            reply->ok = false;
            reply->err = got->err;
            if (asprintf (&reply->message, "agent %s: %s", part->agent,
                          got->message ? got->message
                                       : pm_err_name (got->err)) < 0)
                abort ();
            failed = part;
        }
    }
    //  The first agent that failed its part says why, its names
    //  qualified (an agent reloaded between the check and the act
    //  answers unknown-service itself, PROTOCOL.md 13.4).
    for (size_t k = 0; !lost && failed && k < failed->reply->err_names_count;
         k++) {
        char *name = s_qualify (failed->reply->err_names [k], failed->agent);
        pm_reply_add_err_name (reply, name);
        free (name);
    }
    if (lost) {
        //  What those agents did with their part is not known.
        char *names = NULL;
        for (size_t i = 0; i < reply->err_names_count; i++) {
            char *joined = NULL;
            if (asprintf (&joined, "%s%s%s", names ? names : "",
                          names ? ", " : "", reply->err_names [i]) < 0)
                abort ();
            free (names);
            names = joined;
        }
        pm_reply_set_error (reply, PM_ERR_AGENT_UNREACHABLE, "agent%s %s "
                            "became unreachable while the request waited on "
                            "%s: outcome unknown there", lost == 1 ? "" : "s",
                            names, lost == 1 ? "it" : "them");
        free (names);
    }
    else
    if (reply->ok && reply->err_names_count == 0) {
        free (reply->err_names);
        reply->err_names = NULL;
    }
    s_send_client (self, &pending->envelope, reply);
    pm_reply_destroy (&reply);
}

static void
s_part_done (pm_broker_t *self, s_pending_t *pending)
{
    if (--pending->waiting > 0)
        return;
    s_finish (self, pending);
    zlistx_delete (self->pending, zlistx_find (self->pending, pending));
}

//  Every part in flight on agent is lost: answered for now.
static void
s_part_lost (pm_broker_t *self, const char *agent)
{
    s_pending_t *pending = zlistx_first (self->pending);
    while (pending) {
        s_pending_t *next = zlistx_next (self->pending);
        for (size_t i = 0; i < pending->count; i++) {
            s_part_t *part = &pending->parts [i];
            if (!part->reply && !part->lost && strcmp (part->agent, agent) == 0) {
                part->lost = true;
                s_part_done (self, pending);
                break;
            }
        }
        pending = next;
    }
}

//  REPLY token reply
//  REPLY token reply
static void
s_on_reply (pm_broker_t *self, const pm_link_msg_t *link)
{
    if (link->token == 0)
        return;               //  never one of ours (tokens start at 1)
    for (s_pending_t *pending = zlistx_first (self->pending); pending;
         pending = zlistx_next (self->pending))
        for (size_t i = 0; i < pending->count; i++) {
            s_part_t *part = &pending->parts [i];
            if (part->token != link->token || part->reply || part->lost)
                continue;
            char why [256];
            pm_reply_t *reply = NULL;
            if (pm_reply_decode (link->body.data, link->body.size, &reply,
                                 why, sizeof why) != PM_OK) {
                reply = pm_reply_new (0);
                pm_reply_set_error (reply, PM_ERR_INTERNAL, "malformed reply "
                                    "from agent %s", part->agent);
            }
            part->reply = reply;
            s_part_done (self, pending);
            return;
        }
}

/* ------------------------------------------------------------------ */
/*  The agents socket                                                  */
/* ------------------------------------------------------------------ */

static int
s_on_agent (zloop_t *loop, zsock_t *sock, void *arg)
{
    pm_broker_t *self = (pm_broker_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return 0;
    zframe_t *route = zmsg_pop (msg);
    zframe_t *word_frame = zmsg_first (msg);
    const char *key = word_frame ? zframe_meta (word_frame, "User-Id") : NULL;
    const char *peer = word_frame ? zframe_meta (word_frame, "Peer-Address")
                                  : NULL;
    char address [128];
    snprintf (address, sizeof address, "%s", peer && *peer ? peer : "local");
    pm_linkmsg_t link = { { 0 }, NULL };
    char why [320];
    if (!route || !word_frame)
        goto done;
    if (pm_linkmsg_parse (msg, &link, why, sizeof why) == -1) {
        //  A registration that fails is worth a line: the agent's
        //  operator will look for it.  Other junk is only counted out.
        if (zframe_streq (word_frame, PM_LINK_REGISTER))
            pm_log_warn ("a malformed registration from %s was ignored: %s",
                         address, why);
        else
            pm_log_debug ("a malformed link message from %s was ignored: %s",
                          address, why);
        goto done;
    }
    //  A key taken out of the agents directory since its handshake.
    if (key && *key && self->curve
    &&  !pm_curve_allowed (self->curve, key, PM_CURVE_AGENTS)) {
        pm_log_warn ("agent key %s is no longer authorised: message "
                     "ignored", key);
        goto done;
    }
    if (link.msg.word == PM_LINK_W_REGISTER) {
        s_on_register (self, route, &link.msg, address);
        goto done;
    }
    s_agent_t *agent = s_agent_by_route (self, route);
    if (!agent) {
        s_send_agent (self, route, PM_LINK_UNKNOWN, NULL);
        goto done;
    }
    agent->seen_ms = s_now_ms ();
    s_set_connected (self, agent, true);
    if (link.msg.word == PM_LINK_W_PUBLISH) {
        void *events = zsock_resolve (self->events);
        if (zmq_send (events, link.msg.topic.data, link.msg.topic.size,
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1)
            zmq_send (events, link.msg.body.data, link.msg.body.size,
                      ZMQ_DONTWAIT);
    }
    else
    if (link.msg.word == PM_LINK_W_REPLY)
        s_on_reply (self, &link.msg);
done:
    pm_linkmsg_clear (&link);
    zframe_destroy (&route);
    zmsg_destroy (&msg);
    return 0;
}

/* ------------------------------------------------------------------ */
/*  The clients' sockets                                               */
/* ------------------------------------------------------------------ */

static int
s_on_subscription (zloop_t *loop, zsock_t *sock, void *arg)
{
    pm_broker_t *self = (pm_broker_t *) arg;
    void *handle = zsock_resolve (sock);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) != -1) {
        const unsigned char *data = zmq_msg_data (&msg);
        size_t got = zmq_msg_size (&msg);
        //  Only what can start a topic is forwarded: text, not too long
        //  (libzmq 4.3.4 garbles replayed subscriptions of 246 to 255
        //  bytes, and nothing that long starts a topic).
        if (got < 1 || got > 1 + PM_TOPIC_MAX || (data [0] != 0 && data [0] != 1)
        ||  memchr (data + 1, 0, got - 1))
            continue;
        bool subscribe = data [0] == 1;
        if (subscribe && self->peers)
            pm_peers_note (self->peers, &msg);
        char prefix [PM_TOPIC_MAX + 1];
        memcpy (prefix, data + 1, got - 1);
        prefix [got - 1] = 0;
        //  With XPUB_VERBOSE every subscriber's subscription arrives; the
        //  agents need each prefix once.
        if (subscribe && zhashx_lookup (self->prefixes, prefix))
            continue;
        if (subscribe)
            zhashx_update (self->prefixes, prefix, (void *) 1);
        else
            zhashx_delete (self->prefixes, prefix);
        for (s_agent_t *agent = zlistx_first (self->registry); agent;
             agent = zlistx_next (self->registry)) {
            if (!agent->route)
                continue;
            zmsg_t *frames = zmsg_new ();
            zmsg_addstr (frames, prefix);
            s_send_agent (self, agent->route, subscribe ? PM_LINK_SUBSCRIBE
                                                        : PM_LINK_UNSUBSCRIBE,
                          &frames);
        }
    }
    zmq_msg_close (&msg);
    return 0;
}

static void
s_hello (pm_broker_t *self, pm_reply_t *reply)
{
    reply->ok = true;
    reply->agent = strdup (self->name);
    reply->version = strdup (PM_VERSION);
    reply->agent_pid = (int64_t) getpid ();
    reply->config = strdup ("");
    reply->control = strdup (self->control_endpoint);
    reply->events = strdup (self->events_endpoint);
    reply->started_at = self->started_at;
    reply->leases = calloc (1, sizeof *reply->leases);
    reply->broker = true;
}

static void
s_agents (pm_broker_t *self, pm_reply_t *reply)
{
    reply->ok = true;
    size_t count = zlistx_size (self->registry);
    reply->agents = calloc (count + 1, sizeof *reply->agents);
    assert (reply->agents);
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry)) {
        pm_agent_info_t *info = &reply->agents [reply->agents_count++];
        info->name = strdup (agent->name);
        info->connected = agent->connected;
        info->since = agent->since;
        info->address = strdup (agent->address ? agent->address : "");
        info->version = strdup (agent->version ? agent->version : "");
        info->instance = strdup (agent->instance ? agent->instance : "");
        info->pid = agent->pid;
        info->services = agent->services_count;
    }
}

//  Whether request covers agent: no agents named, or agent among them.
static bool
s_covered (const pm_request_t *request, const s_agent_t *agent)
{
    if (request->agents_count == 0)
        return true;
    for (size_t i = 0; i < request->agents_count; i++)
        if (strcmp (request->agents [i], agent->name) == 0)
            return true;
    return false;
}

//  The agent part of one target name: service@agent, or a bare service
//  exactly one connected agent has.  Returns the agent, with the bare
//  service in *service, or NULL with the reply's error set (names added).
static s_agent_t *
s_resolve (pm_broker_t *self, const pm_request_t *request, const char *name,
           char *service, size_t size, pm_reply_t *reply, pm_err_t *err)
{
    const char *at = strrchr (name, '@');
    if (at) {
        snprintf (service, size, "%.*s", (int) (at - name), name);
        s_agent_t *agent = s_agent_by_name (self, at + 1);
        if (!agent) {
            *err = PM_ERR_UNKNOWN_AGENT;
            pm_reply_add_err_name (reply, at + 1);
            return NULL;
        }
        if (!s_has_service (agent, service)) {
            *err = PM_ERR_UNKNOWN_SERVICE;
            pm_reply_add_err_name (reply, name);
            return NULL;
        }
        if (!agent->connected) {
            *err = PM_ERR_AGENT_UNREACHABLE;
            pm_reply_add_err_name (reply, agent->name);
            return NULL;
        }
        return agent;
    }
    snprintf (service, size, "%s", name);
    s_agent_t *found = NULL;
    size_t candidates = 0;
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry))
        if (agent->connected && s_covered (request, agent)
        &&  s_has_service (agent, name)) {
            found = agent;
            candidates++;
        }
    if (candidates == 1)
        return found;
    if (candidates == 0) {
        //  Known, but only on agents that are not there now.
        *err = PM_ERR_UNKNOWN_SERVICE;
        for (s_agent_t *agent = zlistx_first (self->registry); agent;
             agent = zlistx_next (self->registry))
            if (s_covered (request, agent) && s_has_service (agent, name)) {
                *err = PM_ERR_AGENT_UNREACHABLE;
                pm_reply_add_err_name (reply, agent->name);
            }
        if (*err == PM_ERR_UNKNOWN_SERVICE)
            pm_reply_add_err_name (reply, name);
        return NULL;
    }
    *err = PM_ERR_AMBIGUOUS;
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry))
        if (agent->connected && s_covered (request, agent)
        &&  s_has_service (agent, name)) {
            char *qualified = s_qualify (name, agent->name);
            pm_reply_add_err_name (reply, qualified);
            free (qualified);
        }
    return NULL;
}

//  What a failed check found, by kind, worst first: the reply's code is
//  the worst kind's, error.names its names, the message says every kind.
enum { S_UNKNOWN_AGENT, S_UNREACHABLE, S_AMBIGUOUS, S_UNKNOWN_SERVICE,
       S_KINDS };

typedef struct {
    pm_reply_t *names [S_KINDS];  /* scratch replies holding err_names */
} s_check_t;

static int
s_kind (pm_err_t err)
{
    return err == PM_ERR_UNKNOWN_AGENT ? S_UNKNOWN_AGENT
         : err == PM_ERR_AGENT_UNREACHABLE ? S_UNREACHABLE
         : err == PM_ERR_AMBIGUOUS ? S_AMBIGUOUS : S_UNKNOWN_SERVICE;
}

static void
s_check_error (pm_reply_t *reply, s_check_t *check)
{
    static const pm_err_t codes [S_KINDS] = {
        PM_ERR_UNKNOWN_AGENT, PM_ERR_AGENT_UNREACHABLE, PM_ERR_AMBIGUOUS,
        PM_ERR_UNKNOWN_SERVICE
    };
    static const char *what [S_KINDS] = {
        "unknown agents", "agents unreachable",
        "more than one agent has it (name one)", "unknown services"
    };
    char message [2048] = "";
    size_t used = 0;
    int worst = -1;
    for (int k = 0; k < S_KINDS; k++) {
        pm_reply_t *names = check->names [k];
        if (!names || !names->err_names_count)
            continue;
        if (worst < 0)
            worst = k;
        used += (size_t) snprintf (message + used, sizeof message - used,
                                   "%s%s: ", used ? "; " : "", what [k]);
        for (size_t i = 0; i < names->err_names_count && used < sizeof message;
             i++)
            used += (size_t) snprintf (message + used, sizeof message - used,
                                       "%s%s", i ? ", " : "",
                                       names->err_names [i]);
        if (used >= sizeof message)
            used = sizeof message - 1;
    }
    for (size_t i = 0; i < check->names [worst]->err_names_count; i++)
        pm_reply_add_err_name (reply, check->names [worst]->err_names [i]);
    pm_reply_set_error (reply, codes [worst], "%s (nothing was done)",
                        message);
}

//  Sends each agent its part; parts that cannot be sent are lost at once.
static void
s_forward (pm_broker_t *self, s_pending_t *pending, pm_request_t **requests)
{
    zlistx_add_end (self->pending, pending);
    pending->waiting = pending->count;
    //  Each part answered at once (a gone agent) may finish the whole.
    size_t count = pending->count;
    for (size_t i = 0; i < count; i++) {
        s_part_t *part = &pending->parts [i];
        part->token = ++self->tokens;
        requests [i]->id = part->token;
        char *data = NULL;
        size_t size = 0;
        int rc = pm_request_encode (requests [i], &data, &size);
        if (rc == 0) {
            zmsg_t *frames = zmsg_new ();
            zmsg_addmem (frames, &part->token, sizeof part->token);
            zmsg_addmem (frames, data, size);
            rc = s_send_agent (self, part->route, PM_LINK_REQUEST, &frames);
        }
        free (data);
        if (rc == -1) {
            part->lost = true;
            if (pending->waiting == 1) {
                //  The last one: finishing frees pending.
                s_part_done (self, pending);
                return;
            }
            pending->waiting--;
        }
    }
}

static void
s_dispatch (pm_broker_t *self, zmsg_t *envelope, pm_request_t *request)
{
    pm_reply_t *reply = pm_reply_new (request->id);
    pm_request_t **requests = NULL;
    s_pending_t *pending = NULL;
    bool single = request->cmd == PM_CMD_RELOAD
               || request->cmd == PM_CMD_SHUTDOWN
               || request->cmd == PM_CMD_LEASE
               || (request->cmd == PM_CMD_HELLO && request->agent);
    switch (request->cmd) {
        case PM_CMD_HELLO:
            if (request->agent)
                break;
            s_hello (self, reply);
            goto answer;
        case PM_CMD_AGENTS:
            s_agents (self, reply);
            goto answer;
        case PM_CMD_RELOAD:
        case PM_CMD_SHUTDOWN:
        case PM_CMD_LEASE:
            if (request->agent)
                break;
            pm_reply_set_error (reply, PM_ERR_BAD_REQUEST, "through a "
                                "broker, %s names its agent (args.agent; "
                                "pmctl --agent NAME)",
                                pm_cmd_name (request->cmd));
            goto answer;
        case PM_CMD_STATUS:
        case PM_CMD_START:
        case PM_CMD_STOP:
        case PM_CMD_RESTART:
        case PM_CMD_SIGNAL:
        case PM_CMD_WAIT:
        case PM_CMD_LOGS:
            break;
        default:
            pm_reply_set_error (reply, PM_ERR_UNKNOWN_COMMAND, "%s is not a "
                                "command of this broker",
                                pm_cmd_name (request->cmd));
            goto answer;
    }
    size_t agents = zlistx_size (self->registry);
    requests = calloc (agents + 1, sizeof *requests);
    pending = calloc (1, sizeof *pending);
    pending->parts = calloc (agents + 1, sizeof *pending->parts);
    assert (requests && pending && pending->parts);
    pending->id = request->id;
    pending->cmd = request->cmd;
    bool every = request->all || (request->names_count == 0
                 && (request->cmd == PM_CMD_STATUS
                  || request->cmd == PM_CMD_LOGS));
    //  The agents named (args.agent, args.agents): known and reachable.
    s_check_t check;
    memset (&check, 0, sizeof check);
    bool failed = false;
    size_t named_count = request->agent ? 1 : request->agents_count;
    for (size_t n = 0; n < named_count; n++) {
        const char *name = request->agent ? request->agent
                                          : request->agents [n];
        s_agent_t *agent = s_agent_by_name (self, name);
        int kind = !agent ? S_UNKNOWN_AGENT
                 : !agent->connected ? S_UNREACHABLE : -1;
        if (kind < 0)
            continue;
        if (!check.names [kind])
            check.names [kind] = pm_reply_new (0);
        pm_reply_add_err_name (check.names [kind], name);
        failed = true;
    }
    //  One request per agent, each with its bare names.
    size_t k = 0;
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry), k++) {
        requests [k] = pm_request_new (request->cmd, 0);
        pm_request_t *part = requests [k];
        part->all = request->all;
        part->with_dependents = request->with_dependents;
        part->wait = request->wait;
        part->timeout = request->timeout;
        part->signum = request->signum;
        part->has_tail = request->has_tail;
        part->tail = request->tail;
        part->has_since = request->has_since;
        part->since = request->since;
        part->wait_for = request->wait_for;
        part->pid = request->pid;
    }
    for (size_t n = 0; !every && n < request->names_count; n++) {
        char service [PM_TARGET_MAX + 1];
        pm_err_t why = PM_OK;
        pm_reply_t *scratch = pm_reply_new (0);
        s_agent_t *agent = s_resolve (self, request, request->names [n],
                                      service, sizeof service, scratch, &why);
        if (!agent) {
            int kind = s_kind (why);
            if (!check.names [kind])
                check.names [kind] = pm_reply_new (0);
            for (size_t i = 0; i < scratch->err_names_count; i++)
                pm_reply_add_err_name (check.names [kind],
                                       scratch->err_names [i]);
            pm_reply_destroy (&scratch);
            failed = true;
            continue;
        }
        pm_reply_destroy (&scratch);
        size_t index = 0;
        for (s_agent_t *each = zlistx_first (self->registry); each != agent;
             each = zlistx_next (self->registry))
            index++;
        pm_request_add_name (requests [index], service);
    }
    if (failed) {
        s_check_error (reply, &check);
        for (int kind = 0; kind < S_KINDS; kind++)
            pm_reply_destroy (&check.names [kind]);
        goto answer;
    }
    k = 0;
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry), k++) {
        bool wanted = single ? strcmp (agent->name, request->agent) == 0
                    : every ? agent->connected && s_covered (request, agent)
                    : requests [k]->names_count > 0;
        if (!wanted)
            continue;
        s_part_t *part = &pending->parts [pending->count];
        part->agent = strdup (agent->name);
        part->route = zframe_dup (agent->route);
        //  Compacted: parts and their requests side by side.
        pm_request_t *swap = requests [pending->count];
        requests [pending->count] = requests [k];
        requests [k] = swap;
        pending->count++;
    }
    if (pending->count == 0) {
        //  Nothing to ask (no agent yet): an empty answer.
        reply->ok = true;
        if (request->cmd == PM_CMD_STATUS)
            reply->services = calloc (1, sizeof *reply->services);
        goto answer;
    }
    //  A reload or shutdown takes what it takes; it ends with its agent.
    bool open_ended = request->cmd == PM_CMD_RELOAD
                   || request->cmd == PM_CMD_SHUTDOWN;
    bool waits = request->cmd == PM_CMD_WAIT
              || ((request->cmd == PM_CMD_START || request->cmd == PM_CMD_STOP
                || request->cmd == PM_CMD_RESTART)
               && request->wait != PM_WAIT_NONE);
    pending->deadline_ms = open_ended ? -1
                         : !waits ? s_now_ms () + S_ANSWER_MS
                         : request->timeout > 0
                           ? s_now_ms () + (int64_t) (request->timeout * 1000)
                             + S_MARGIN_MS
                         : -1;
    pending->envelope = envelope;
    envelope = NULL;
    s_forward (self, pending, requests);
    pending = NULL;
answer:
    if (envelope)
        s_send_client (self, &envelope, reply);
    pm_reply_destroy (&reply);
    for (size_t i = 0; requests && i < agents; i++)
        pm_request_destroy (&requests [i]);
    free (requests);
    s_pending_free (&pending);
}

static int
s_on_client (zloop_t *loop, zsock_t *sock, void *arg)
{
    pm_broker_t *self = (pm_broker_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return 0;
    zframe_t *body = zmsg_last (msg);
    if (!body || zmsg_size (msg) < 2) {
        zmsg_destroy (&msg);
        return 0;
    }
    zmsg_remove (msg, body);
    const char *key = zframe_meta (body, "User-Id");
    uint64_t id = 0;
    pm_request_t *request = NULL;
    char err [PM_TEXT_MAX];
    pm_err_t code = pm_request_decode (zframe_data (body), zframe_size (body),
                                       &request, &id, err, sizeof err);
    if (code == PM_OK && key && *key && self->curve
    &&  !pm_curve_allowed (self->curve, key, PM_CURVE_CLIENTS)) {
        code = PM_ERR_UNAUTHORISED;
        snprintf (err, sizeof err, "the client key %s is no longer "
                  "authorised by this broker", key);
    }
    zframe_destroy (&body);
    if (code != PM_OK) {
        pm_log_warn ("request %llu refused: %s: %s", (unsigned long long) id,
                     pm_err_name (code), err);
        pm_reply_t *reply = pm_reply_new (id);
        pm_reply_set_error (reply, code, "%s", err);
        s_send_client (self, &msg, reply);
        pm_reply_destroy (&reply);
        pm_request_destroy (&request);
        return 0;
    }
    s_dispatch (self, msg, request);
    pm_request_destroy (&request);
    return 0;
}

/* ------------------------------------------------------------------ */
/*  Time                                                               */
/* ------------------------------------------------------------------ */

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    pm_broker_t *self = (pm_broker_t *) arg;
    int64_t now = s_now_ms ();
    for (s_agent_t *agent = zlistx_first (self->registry); agent;
         agent = zlistx_next (self->registry))
        if (agent->connected
        &&  now - agent->seen_ms > (int64_t) (PM_LINK_MISSED
                                              * self->heartbeat_ms))
            s_set_connected (self, agent, false);
    //  Parts past their deadline: their agent is frozen, or lost them.
    s_pending_t *pending = zlistx_first (self->pending);
    while (pending) {
        s_pending_t *next = zlistx_next (self->pending);
        if (pending->deadline_ms >= 0 && now >= pending->deadline_ms) {
            size_t count = pending->count;
            for (size_t i = 0; i < count; i++) {
                s_part_t *part = &pending->parts [i];
                if (part->reply || part->lost)
                    continue;
                part->lost = true;
                bool last = pending->waiting == 1;
                s_part_done (self, pending);
                if (last)
                    break;
            }
        }
        pending = next;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/*  Construction                                                       */
/* ------------------------------------------------------------------ */

static zsock_t *
s_bind (pm_broker_t *self, int type, const char *endpoint, const char *domain,
        char *err, size_t errlen)
{
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        snprintf (err, errlen, "cannot create a socket");
        return NULL;
    }
    //  Before the bind: libzmq takes a listener's options when it binds.
    zsock_set_maxmsgsize (sock, 2 * PM_FRAME_MAX);
    zsock_set_linger (sock, 1000);
    if (type == ZMQ_ROUTER)
        zsock_set_sndhwm (sock, 1000);
    //  What each subscriber may fall behind by, and what an agent may
    //  have in flight to the broker, before messages drop (subscribers
    //  see the gap in seq and fill it with `logs`).
    if (type == ZMQ_XPUB)
        zsock_set_sndhwm (sock, (int) self->queue);
    if (strcmp (domain, PM_CURVE_AGENTS) == 0)
        zsock_set_rcvhwm (sock, (int) self->queue);
    if (strncmp (endpoint, "tcp://", 6) == 0) {
        pm_curve_server (self->curve, sock, domain);
        if (type == ZMQ_XPUB) {
            //  Every subscription, so every subscriber is seen with its
            //  key, and cut when the key goes (peers.h).
            zsock_set_xpub_verbose (sock, 1);
            self->peers = pm_peers_new ();
        }
    }
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        snprintf (err, errlen, "cannot bind %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
    }
    return sock;
}

pm_broker_t *
pm_broker_new (zloop_t *loop, const pm_bconfig_t *config, char *err,
               size_t errlen)
{
    pm_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->name = strdup (config->name);
    self->control_endpoint = strdup (config->control);
    self->events_endpoint = strdup (config->events);
    self->started_at = pm_wall_clock ();
    self->heartbeat_ms = (size_t) (config->heartbeat * 1000 + 0.5);
    self->queue = config->subscriber_queue;
    self->registry = zlistx_new ();
    zlistx_set_destructor (self->registry, (zlistx_destructor_fn *) s_agent_free);
    self->pending = zlistx_new ();
    zlistx_set_destructor (self->pending,
                           (zlistx_destructor_fn *) s_pending_free);
    self->prefixes = zhashx_new ();
    self->buffer = pm_buffer_new ();
    self->timer = -1;
    if (config->secret_key) {
        pm_curve_dir_t dirs [2] = {
            { config->clients, PM_CURVE_CLIENTS },
            { config->agent_keys, PM_CURVE_AGENTS }
        };
        self->curve = pm_curve_new (loop, config->secret_key, dirs, 2, err,
                                    errlen);
        if (!self->curve) {
            pm_broker_destroy (&self);
            return NULL;
        }
    }
    self->control = s_bind (self, ZMQ_ROUTER, config->control,
                            PM_CURVE_CLIENTS, err, errlen);
    self->events = self->control
                 ? s_bind (self, ZMQ_XPUB, config->events, PM_CURVE_CLIENTS,
                           err, errlen) : NULL;
    self->agents = self->events
                 ? s_bind (self, ZMQ_ROUTER, config->agents, PM_CURVE_AGENTS,
                           err, errlen) : NULL;
    if (!self->agents) {
        pm_broker_destroy (&self);
        return NULL;
    }
    //  Gone or full agents fail a send at once instead of being dropped
    //  silently, so a part is known lost.
    zsock_set_router_mandatory (self->agents, 1);
    if (zloop_reader (loop, self->control, s_on_client, self) == -1
    ||  zloop_reader (loop, self->events, s_on_subscription, self) == -1
    ||  zloop_reader (loop, self->agents, s_on_agent, self) == -1) {
        snprintf (err, errlen, "cannot watch the sockets");
        pm_broker_destroy (&self);
        return NULL;
    }
    size_t tick = self->heartbeat_ms / 2 ? self->heartbeat_ms / 2 : 1;
    self->timer = zloop_timer (loop, tick, 0, s_on_tick, self);
    pm_log_info ("broker %s started (pid %d): control %s, events %s, agents "
                 "%s, heartbeat %zu ms", self->name, (int) getpid (),
                 config->control, config->events, config->agents,
                 self->heartbeat_ms);
    return self;
}

void
pm_broker_destroy (pm_broker_t **self_p)
{
    pm_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->timer != -1)
        zloop_timer_end (self->loop, self->timer);
    zsock_t **socks [3] = { &self->control, &self->events, &self->agents };
    for (int i = 0; i < 3; i++)
        if (*socks [i]) {
            zloop_reader_end (self->loop, *socks [i]);
            zsock_destroy (socks [i]);
        }
    zlistx_destroy (&self->pending);
    zlistx_destroy (&self->registry);
    zhashx_destroy (&self->prefixes);
    pm_peers_destroy (&self->peers);
    pm_buffer_destroy (&self->buffer);
    pm_curve_destroy (&self->curve);
    free (self->name);
    free (self->control_endpoint);
    free (self->events_endpoint);
    free (self);
    *self_p = NULL;
}

void
pm_broker_reload_keys (pm_broker_t *self)
{
    if (!self->curve)
        return;
    pm_curve_reload (self->curve);
    //  A client key taken out: its requests are refused from now on (the
    //  control socket checks every one), and its subscriptions are cut.
    if (self->peers) {
        s_on_subscription (self->loop, self->events, self);
        pm_peers_cut (self->peers, pm_curve_client_allowed, self->curve);
    }
}
