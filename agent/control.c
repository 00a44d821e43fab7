/*  control.c - the control socket (control.h)

    Never trusts a client: the frame size is capped at the socket
    (ZMQ_MAXMSGSIZE), the decoder validates every field, names are all
    checked before anything is done, and a bad request gets an error reply
    that echoes its id when one could be read.  Nothing here blocks: a
    command that waits is parked in the supervisor with its envelope, and
    a reply to a client whose queue is full (it does not read) or who is
    gone is dropped, never waited for.
*/
#include "control.h"
#include "agentlog.h"
#include "curve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pm_control_t {
    zloop_t *loop;            /* not owned */
    zsock_t *router;          /* owned */
    pm_supervisor_t *sup;     /* not owned */
    pm_leases_t *leases;      /* not owned, may be NULL */
    char *agent;
    char *config;
    char *control;
    char *events;
    char *tcp_control;        /* or NULL */
    char *tcp_events;         /* or NULL */
    pm_curve_t *curve;        /* not owned; NULL without TCP */
    double started_at;
    char *instance;           /* this run of the agent */
    uint64_t handled;
    uint64_t refused;
    pm_control_relay_fn *relay;   /* replies to relayed requests, or NULL */
    void *relay_arg;
};

//  A relayed request's envelope starts with an empty frame, which no
//  ROUTER routing id can be (libzmq's are 1 to 255 bytes).
static bool
s_relayed (zmsg_t *envelope)
{
    zframe_t *first = zmsg_first (envelope);
    return first && zframe_size (first) == 0;
}

//  The reply function given to the supervisor: token is the envelope.
static void
s_send_reply (void *arg, void *token, const pm_reply_t *reply)
{
    pm_control_t *self = (pm_control_t *) arg;
    zmsg_t *msg = (zmsg_t *) token;
    char *data = NULL;
    size_t size = 0;
    if (pm_reply_encode (reply, &data, &size) == -1) {
        //  Cannot happen with the agent's own replies; say so rather than
        //  leave the client hanging.
        pm_reply_t *fallback = pm_reply_new (reply->id);
        pm_reply_set_error (fallback, PM_ERR_INTERNAL, "reply too large");
        pm_reply_encode (fallback, &data, &size);
        pm_reply_destroy (&fallback);
    }
    if (s_relayed (msg)) {
        zframe_t *relay_token = zmsg_next (msg);
        if (self->relay && relay_token)
            self->relay (self->relay_arg, zframe_data (relay_token),
                         zframe_size (relay_token), data, size);
        free (data);
        zmsg_destroy (&msg);
        return;
    }
    zmsg_addmem (msg, data, size);
    free (data);
    if (zmsg_send (&msg, self->router) == -1) {
        pm_log_warn ("cannot send reply %llu: %s",
                     (unsigned long long) reply->id,
                     zmq_strerror (zmq_errno ()));
        zmsg_destroy (&msg);
    }
}

static void
s_free_token (void *arg, void *token)
{
    zmsg_t *msg = (zmsg_t *) token;
    zmsg_destroy (&msg);
}

static void
s_reply_now (pm_control_t *self, zmsg_t **envelope_p, pm_reply_t **reply_p)
{
    s_send_reply (self, *envelope_p, *reply_p);
    *envelope_p = NULL;
    pm_reply_destroy (reply_p);
}

static void
s_lease (pm_control_t *self, const pm_request_t *request, pm_reply_t *reply)
{
    char err [256];
    if (pm_supervisor_shutting_down (self->sup))
        pm_reply_set_error (reply, PM_ERR_SHUTTING_DOWN,
                            "agent shutting down: no new leases");
    else
    if (!self->leases)
        pm_reply_set_error (reply, PM_ERR_INTERNAL, "leases not available");
    else
    if (pm_leases_add (self->leases, (pid_t) request->pid, err,
                       sizeof err) == -1)
        pm_reply_set_error (reply, PM_ERR_FAILED, "cannot lease: %s", err);
    else {
        reply->ok = true;
        pm_leases_to_reply (self->leases, reply);
    }
}

//  A client over TCP is told the TCP endpoints, a local one the ipc ones.
static void
s_hello (pm_control_t *self, pm_reply_t *reply, bool remote)
{
    reply->ok = true;
    reply->agent = strdup (self->agent);
    reply->version = strdup (PM_VERSION);
    reply->agent_pid = (int64_t) getpid ();
    reply->config = strdup (self->config);
    reply->control = strdup (remote ? self->tcp_control : self->control);
    reply->events = strdup (remote ? self->tcp_events : self->events);
    reply->started_at = self->started_at;
    pm_leases_to_reply (self->leases, reply);
}

static bool
s_takes_targets (pm_cmd_t cmd)
{
    return cmd == PM_CMD_START || cmd == PM_CMD_STOP
        || cmd == PM_CMD_RESTART || cmd == PM_CMD_SIGNAL
        || cmd == PM_CMD_WAIT;
}

//  Resolves names to indexes, without duplicates.  On an unknown name,
//  fills reply's error with every unknown name and returns -1.
static int
s_resolve (pm_control_t *self, const pm_request_t *request, size_t **targets,
           size_t *count, pm_reply_t *reply)
{
    size_t size = pm_supervisor_size (self->sup);
    *targets = calloc (size + 1, sizeof **targets);
    assert (*targets);
    *count = 0;
    if (request->all) {
        for (size_t i = 0; i < size; i++)
            (*targets) [(*count)++] = i;
        return 0;
    }
    bool *seen = calloc (size + 1, sizeof *seen);
    assert (seen);
    size_t unknown = 0;
    for (size_t k = 0; k < request->names_count; k++) {
        int index = pm_supervisor_find (self->sup, request->names [k]);
        if (index < 0) {
            unknown++;
            pm_reply_add_err_name (reply, request->names [k]);
        }
        else
        if (!seen [index]) {
            seen [index] = true;
            (*targets) [(*count)++] = (size_t) index;
        }
    }
    free (seen);
    if (unknown) {
        pm_reply_set_unknown (reply);
        return -1;
    }
    return 0;
}

static void
s_log_request (const pm_request_t *request)
{
    char names [512] = "";
    size_t len = 0;
    if (request->all)
        snprintf (names, sizeof names, " --all");
    for (size_t k = 0; k < request->names_count && len < sizeof names; k++)
        len += (size_t) snprintf (names + len, sizeof names - len, " %s",
                                  request->names [k]);
    pm_log_level_t level = request->cmd == PM_CMD_STATUS
                        || request->cmd == PM_CMD_HELLO
                         ? PM_LOG_DEBUG : PM_LOG_INFO;
    pm_log (level, "request %llu: %s%s", (unsigned long long) request->id,
            pm_cmd_name (request->cmd), names);
}

static void
s_dispatch (pm_control_t *self, zmsg_t *envelope, pm_request_t *request,
            bool remote)
{
    pm_reply_t *reply = pm_reply_new (request->id);
    size_t *targets = NULL;
    size_t count = 0;
    s_log_request (request);

    if (s_takes_targets (request->cmd)) {
        if (request->all && request->names_count) {
            pm_reply_set_error (reply, PM_ERR_BAD_REQUEST,
                                "give names or all, not both");
            goto answer;
        }
        if (!request->all && request->names_count == 0) {
            pm_reply_set_error (reply, PM_ERR_BAD_REQUEST,
                                "no service named (give names, or all)");
            goto answer;
        }
    }
    //  A request for a broker may name agents: this one, or none.
    if (request->agent && strcmp (request->agent, self->agent) != 0)
        pm_reply_add_err_name (reply, request->agent);
    for (size_t k = 0; k < request->agents_count; k++)
        if (strcmp (request->agents [k], self->agent) != 0)
            pm_reply_add_err_name (reply, request->agents [k]);
    if (reply->err_names_count) {
        pm_reply_set_error (reply, PM_ERR_UNKNOWN_AGENT, "this is agent %s, "
                            "not %s%s", self->agent, reply->err_names [0],
                            reply->err_names_count > 1 ? ", ..." : "");
        goto answer;
    }
    if (s_resolve (self, request, &targets, &count, reply) == -1)
        goto answer;

    switch (request->cmd) {
        case PM_CMD_HELLO:
            s_hello (self, reply, remote);
            break;
        case PM_CMD_STATUS:
            pm_supervisor_status (self->sup, targets, count, reply);
            break;
        case PM_CMD_LEASE:
            s_lease (self, request, reply);
            break;
        case PM_CMD_LOGS:
            pm_supervisor_logs (self->sup, request, targets, count, reply);
            break;
        case PM_CMD_WAIT:
            pm_supervisor_wait (self->sup, request, targets, count, envelope);
            goto parked;
        case PM_CMD_RELOAD:
            //  The keys too, whatever the file says (like SIGHUP).
            if (self->curve)
                pm_curve_reload (self->curve);
            pm_supervisor_reload (self->sup, request->id, envelope);
            goto parked;
        case PM_CMD_SIGNAL:
            pm_supervisor_signal (self->sup, request, targets, count, reply);
            break;
        case PM_CMD_START:
            pm_supervisor_start (self->sup, request, targets, count, envelope);
            goto parked;
        case PM_CMD_STOP:
            pm_supervisor_stop (self->sup, request, targets, count, envelope);
            goto parked;
        case PM_CMD_RESTART:
            pm_supervisor_restart (self->sup, request, targets, count,
                                   envelope);
            goto parked;
        case PM_CMD_SHUTDOWN:
            pm_supervisor_shutdown (self->sup, false, request->id, envelope);
            goto parked;
        default:
            pm_reply_set_error (reply, PM_ERR_UNKNOWN_COMMAND,
                                "command '%s' is not available in this "
                                "version of the agent",
                                pm_cmd_name (request->cmd));
            break;
    }
answer:
    //  Which run of the agent answered: a follower through a broker tells
    //  an agent that restarted (seq from 1 again) by it.
    if (reply->ok && (request->cmd == PM_CMD_HELLO
                  ||  request->cmd == PM_CMD_STATUS
                  ||  request->cmd == PM_CMD_LOGS))
        reply->instance = strdup (self->instance);
    if (!reply->ok && reply->err != PM_ERR_UNKNOWN_SERVICE)
        pm_log_warn ("request %llu (%s) refused: %s",
                     (unsigned long long) request->id,
                     pm_cmd_name (request->cmd),
                     reply->message ? reply->message : "");
    else
    if (!reply->ok)
        pm_log_info ("request %llu: %s", (unsigned long long) request->id,
                     reply->message);
    s_reply_now (self, &envelope, &reply);
    free (targets);
    return;
parked:
    //  The supervisor took the envelope and will answer.
    pm_reply_destroy (&reply);
    free (targets);
}

//  One request: body, to be answered with envelope msg.  Takes both.
static void
s_handle (pm_control_t *self, zmsg_t *msg, zframe_t *body)
{
    //  Only CURVE sessions (the TCP endpoints) carry a User-Id: the
    //  client's key, which may have been removed since its handshake.
    const char *key = zframe_meta (body, "User-Id");
    bool remote = key && *key;
    if (remote && !(self->curve && pm_curve_allowed (self->curve, key, PM_CURVE_CLIENTS))) {
        self->refused++;
        pm_log_warn ("request from client key %s refused: the key is no "
                     "longer authorised", key);
        uint64_t id = 0;
        pm_request_t *request = NULL;
        char err [PM_TEXT_MAX];
        if (pm_request_decode (zframe_data (body), zframe_size (body),
                               &request, &id, err, sizeof err) == PM_OK)
            pm_request_destroy (&request);
        zframe_destroy (&body);
        pm_reply_t *reply = pm_reply_new (id);
        pm_reply_set_error (reply, PM_ERR_UNAUTHORISED, "the client key %s "
                            "is no longer authorised by this agent", key);
        s_reply_now (self, &msg, &reply);
        return;
    }
    pm_request_t *request = NULL;
    uint64_t id = 0;
    char err [PM_TEXT_MAX];
    pm_err_t code = pm_request_decode (zframe_data (body), zframe_size (body),
                                       &request, &id, err, sizeof err);
    size_t size = zframe_size (body);
    zframe_destroy (&body);
    if (code != PM_OK) {
        self->refused++;
        pm_log_warn ("malformed request (%zu bytes, id %llu): %s: %s", size,
                     (unsigned long long) id, pm_err_name (code), err);
        pm_reply_t *reply = pm_reply_new (id);
        pm_reply_set_error (reply, code, "%s", err);
        s_reply_now (self, &msg, &reply);
        return;
    }
    self->handled++;
    s_dispatch (self, msg, request, remote);
    pm_request_destroy (&request);
}

static int
s_on_request (zloop_t *loop, zsock_t *router, void *arg)
{
    pm_control_t *self = (pm_control_t *) arg;
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return 0;
    //  The last frame is the request; all before it is the envelope.
    zframe_t *body = zmsg_last (msg);
    if (!body || zmsg_size (msg) < 2) {
        zmsg_destroy (&msg);
        self->refused++;
        return 0;
    }
    zmsg_remove (msg, body);
    s_handle (self, msg, body);
    return 0;
}

void
pm_control_relayed (pm_control_t *self, const void *token, size_t token_size,
                    zframe_t **body_p)
{
    zmsg_t *envelope = zmsg_new ();
    zmsg_addmem (envelope, NULL, 0);
    zmsg_addmem (envelope, token, token_size);
    s_handle (self, envelope, *body_p);
    *body_p = NULL;
}

int
pm_control_hello (pm_control_t *self, char **data, size_t *size)
{
    pm_reply_t *reply = pm_reply_new (0);
    s_hello (self, reply, false);
    int rc = pm_reply_encode (reply, data, size);
    pm_reply_destroy (&reply);
    return rc;
}

void
pm_control_set_relay (pm_control_t *self, pm_control_relay_fn *relay,
                      void *arg)
{
    self->relay = relay;
    self->relay_arg = arg;
}

pm_control_t *
pm_control_new (zloop_t *loop, pm_supervisor_t *sup,
                const pm_control_info_t *info, char *err, size_t errlen)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router) {
        snprintf (err, errlen, "cannot create ROUTER socket: %s",
                  zmq_strerror (zmq_errno ()));
        return NULL;
    }
    //  Frames a little over the protocol's limit still reach the decoder,
    //  which answers "too-large"; far larger ones are cut off by libzmq,
    //  which drops the connection of whoever sent them.
    zsock_set_maxmsgsize (router, 2 * PM_FRAME_MAX);
    zsock_set_linger (router, 1000);
    //  A client that never reads its replies must not stall the agent:
    //  once sndhwm replies wait for it (PROTOCOL.md 1.4), a ROUTER that is
    //  not "mandatory" drops the next ones (zmsg_send still returns 0),
    //  where a mandatory one would block the loop in zmsg_send.  Off is
    //  libzmq's default; said here so that nobody turns it on for its
    //  better errors.
    zsock_set_sndhwm (router, 1000);
    zsock_set_router_mandatory (router, 0);
    if (zsock_bind (router, "%s", info->control) == -1) {
        snprintf (err, errlen, "cannot bind control socket %s: %s",
                  info->control, zmq_strerror (zmq_errno ()));
        zsock_destroy (&router);
        return NULL;
    }
    pm_control_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->router = router;
    self->sup = sup;
    self->agent = strdup (info->agent);
    self->config = strdup (info->config);
    self->control = strdup (info->control);
    self->events = strdup (info->events);
    if (info->tcp_control && info->curve) {
        pm_curve_server (info->curve, router, PM_CURVE_CLIENTS);
        int rc = zsock_bind (router, "%s", info->tcp_control);
        if (rc == -1) {
            snprintf (err, errlen, "cannot bind control socket %s: %s",
                      info->tcp_control, zmq_strerror (zmq_errno ()));
            pm_control_destroy (&self);
            return NULL;
        }
        self->tcp_control = strdup (info->tcp_control);
        self->tcp_events = strdup (info->tcp_events);
        self->curve = info->curve;
    }
    self->started_at = info->started_at;
    self->instance = strdup (info->instance);
    pm_supervisor_set_replier (sup, s_send_reply, s_free_token, self);
    if (zloop_reader (loop, router, s_on_request, self) == -1) {
        snprintf (err, errlen, "cannot watch the control socket");
        pm_control_destroy (&self);
        return NULL;
    }
    return self;
}

void
pm_control_destroy (pm_control_t **self_p)
{
    pm_control_t *self = *self_p;
    if (!self)
        return;
    zloop_reader_end (self->loop, self->router);
    zsock_destroy (&self->router);
    free (self->agent);
    free (self->config);
    free (self->control);
    free (self->events);
    free (self->tcp_control);
    free (self->tcp_events);
    free (self->instance);
    free (self);
    *self_p = NULL;
}

void
pm_control_set_leases (pm_control_t *self, pm_leases_t *leases)
{
    self->leases = leases;
}

uint64_t
pm_control_handled (const pm_control_t *self)
{
    return self->handled;
}

uint64_t
pm_control_refused (const pm_control_t *self)
{
    return self->refused;
}
