/*  follow.c - a live session on the agent's events (see follow.h)

    Why a quiet-time check: a PUB socket drops silently in two places a
    subscriber cannot see from the messages themselves: before its
    subscription reaches the agent (the "slow joiner"), and at the high
    water mark, when the drop is at the very end of a burst and no later
    message reveals the gap.  So once after joining, and once each time
    the stream goes quiet after activity, the command asks the agent
    (one cheap request) whether it is behind.  An idle stream costs
    nothing: there is no periodic timer.

    How the session ends:
    - SIGINT or SIGTERM: exit 0, at once.
    - the agent's `shutdown` event (its last message, after every line
      its services wrote): one last check, then exit 0.
    - the agent's process gone (pidfd, or its lock when there is no
      pidfd) without that event: the messages still crossing the sockets
      get S_GONE_GRACE_MS to arrive; then exit 3.
*/
#include "follow.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "pmctl.h"
#include "remote.h"
#include "zmqlib.h"

//  Quiet time before the command checks for what may have been missed.
#define S_QUIET_MS 200
//  After the agent's process ended: how long its last messages may take.
#define S_GONE_GRACE_MS 1000
//  How often the lock is checked when the agent has no pidfd.
#define S_LOCK_POLL_MS 100
//  Messages handled between two looks at signals and the agent.
#define S_BATCH 1000
//  Messages queued in pmctl before libzmq drops (then recovered as gaps):
//  a log message holds up to 1024 lines (8 KiB), so this is a quarter of
//  a million lines, in at most 2 MiB.
#define S_RCVHWM 256

struct pm_follow_t {
    int signal_fd;                //  SIGINT, SIGTERM; owned
    pm_client_t *client;          //  borrowed
    char *agent;                  //  the agent's name, from hello
    char *events;                 //  its events endpoint, from hello
    bool broker;                  //  hello came from a broker
    char **prefixes;              //  topic prefixes, owned
    size_t prefixes_count;
    void *sub;                    //  SUB socket, owned
    bool stopped;                 //  a handler or the loop ended it
    int code;                     //  exit code once stopped
    bool shutdown_seen;           //  the agent's last event arrived
    long long gone_at;            //  when the agent was seen gone, or -1
    long long quiet_at;           //  when on_quiet is due, or -1
};

pm_follow_t *
pm_follow_new (char *err, size_t errlen)
{
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    if (sigprocmask (SIG_BLOCK, &set, NULL) == -1) {
        snprintf (err, errlen, "cannot block signals: %s", strerror (errno));
        return NULL;
    }
    int fd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd == -1) {
        snprintf (err, errlen, "cannot watch signals: %s", strerror (errno));
        return NULL;
    }
    pm_follow_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->signal_fd = fd;
    self->gone_at = -1;
    self->quiet_at = -1;
    return self;
}

void
pm_follow_destroy (pm_follow_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_follow_t *self = *self_p;
    if (self->sub)
        pm_zmq->close (self->sub);
    if (self->signal_fd != -1)
        close (self->signal_fd);
    for (size_t i = 0; i < self->prefixes_count; i++)
        free (self->prefixes [i]);
    free (self->prefixes);
    free (self->agent);
    free (self->events);
    free (self);
    *self_p = NULL;
}

int
pm_follow_attach (pm_follow_t *self, pm_client_t *client)
{
    self->client = client;
    pm_request_t *request = pm_request_new (PM_CMD_HELLO,
                                            pm_client_next_id (client));
    pm_reply_t *reply = NULL;
    char *frame = NULL;
    size_t size = 0;
    char err [PM_PATH_MAX + 256];
    pm_call_t call = pm_client_call (client, request, PM_REMOTE_ANSWER_MS,
                                     &reply, &frame, &size, err, sizeof err);
    pm_request_destroy (&request);
    free (frame);
    int code = PM_EXIT_OK;
    if (call != PM_CALL_REPLY) {
        fprintf (stderr, "pmctl: %s\n", err);
        code = PM_EXIT_UNREACHABLE;
    }
    else
    if (!reply->ok || !reply->agent || !reply->events) {
        fprintf (stderr, "pmctl: the agent did not say where it publishes: "
                 "%s\n", reply->message ? reply->message : "no events");
        code = PM_EXIT_UNREACHABLE;
    }
    else {
        //  A wildcard host (a server bound to 0.0.0.0) is reached where
        //  the control socket was.
        char events [PM_PATH_MAX + 16];
        if (pm_client_endpoint (client, reply->events, events,
                                sizeof events) == -1) {
            fprintf (stderr, "pmctl: events endpoint too long: %s\n",
                     reply->events);
            code = PM_EXIT_UNREACHABLE;
        }
        else {
            self->agent = strdup (reply->agent);
            self->events = strdup (events);
            self->broker = reply->broker;
            if (!self->agent || !self->events)
                abort ();
        }
    }
    pm_reply_destroy (&reply);
    return code;
}

const char *
pm_follow_agent (const pm_follow_t *self)
{
    return self->agent;
}

bool
pm_follow_broker (const pm_follow_t *self)
{
    return self->broker;
}

void
pm_follow_subscribe_names (pm_follow_t *self, const char *kind,
                           char **names, int count, const char **agents,
                           int agents_count)
{
    char prefix [2 * PM_NAME_MAX + 16];
    bool everything = count == 0;
    for (int i = 0; i < count && self->broker; i++)
        //  A bare name: whichever agent has it; the replies say which.
        everything = everything || !strchr (names [i], '@');
    if (everything && self->broker && agents_count) {
        for (int i = 0; i < agents_count; i++) {
            snprintf (prefix, sizeof prefix, "%s/%s/", kind, agents [i]);
            pm_follow_subscribe (self, prefix);
        }
        return;
    }
    if (everything) {
        if (self->broker)
            snprintf (prefix, sizeof prefix, "%s/", kind);
        else
            snprintf (prefix, sizeof prefix, "%s/%s/", kind, self->agent);
        pm_follow_subscribe (self, prefix);
        return;
    }
    for (int i = 0; i < count; i++) {
        const char *at = strrchr (names [i], '@');
        if (self->broker)
            snprintf (prefix, sizeof prefix, "%s/%s/%.*s/", kind, at + 1,
                      (int) (at - names [i]), names [i]);
        else
            snprintf (prefix, sizeof prefix, "%s/%s/%s/", kind, self->agent,
                      names [i]);
        pm_follow_subscribe (self, prefix);
    }
}

const char *
pm_follow_key (const pm_follow_t *self, const char *service,
               const char *agent, char *buf, size_t size)
{
    //  Without a session, only a broker's records carry an agent.
    if (!agent || (self && !self->broker))
        return service;
    snprintf (buf, size, "%s@%s", service, agent);
    return buf;
}

pm_run_change_t
pm_run_see (pm_run_t *run, const char *instance)
{
    if (!instance || !*instance || strcmp (instance, run->current) == 0)
        return PM_RUN_SAME;
    for (unsigned i = 0; i < PM_RUNS_RETIRED; i++)
        if (strcmp (instance, run->retired [i]) == 0)
            return PM_RUN_OVER;
    bool first = !*run->current;
    if (!first) {
        memcpy (run->retired [run->next], run->current, sizeof run->current);
        run->next = (run->next + 1) % PM_RUNS_RETIRED;
    }
    snprintf (run->current, sizeof run->current, "%s", instance);
    return first ? PM_RUN_SAME : PM_RUN_NEW;
}

void
pm_follow_subscribe (pm_follow_t *self, const char *prefix)
{
    char **grown = realloc (self->prefixes, (self->prefixes_count + 1)
                                            * sizeof *grown);
    if (!grown)
        abort ();
    self->prefixes = grown;
    self->prefixes [self->prefixes_count] = strdup (prefix);
    if (!self->prefixes [self->prefixes_count])
        abort ();
    self->prefixes_count++;
}

int
pm_follow_connect (pm_follow_t *self)
{
    self->sub = pm_zmq->socket (pm_client_context (self->client), ZMQ_SUB);
    if (!self->sub) {
        fprintf (stderr, "pmctl: cannot create a socket: %s\n",
                 pm_zmq->strerror (pm_zmq->error ()));
        return PM_EXIT_UNREACHABLE;
    }
    int linger = 0;
    int hwm = S_RCVHWM;
    int64_t max_size = 2 * (int64_t) PM_FRAME_MAX;
    pm_zmq->setsockopt (self->sub, ZMQ_LINGER, &linger, sizeof linger);
    pm_zmq->setsockopt (self->sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    pm_zmq->setsockopt (self->sub, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    pm_client_secure (self->client, self->sub);
    //  Through a broker: its word on every agent (one that registers may
    //  have published before our subscription reached it).
    char agent_topic [PM_NAME_MAX + 16];
    if (self->broker)
        snprintf (agent_topic, sizeof agent_topic, "agent/");
    else
        snprintf (agent_topic, sizeof agent_topic, "agent/%s/", self->agent);
    pm_follow_subscribe (self, agent_topic);
    for (size_t i = 0; i < self->prefixes_count; i++)
        pm_zmq->setsockopt (self->sub, ZMQ_SUBSCRIBE, self->prefixes [i],
                        strlen (self->prefixes [i]));
    if (pm_zmq->connect (self->sub, self->events) == -1) {
        fprintf (stderr, "pmctl: cannot connect to %s: %s\n", self->events,
                 pm_zmq->strerror (pm_zmq->error ()));
        return PM_EXIT_UNREACHABLE;
    }
    return PM_EXIT_OK;
}

void
pm_follow_agent_gone (pm_follow_t *self)
{
    if (self->gone_at < 0)
        self->gone_at = pm_client_now_ms ();
}

void
pm_follow_check_again (pm_follow_t *self)
{
    self->quiet_at = pm_client_now_ms () + S_QUIET_MS;
}

void
pm_follow_stop (pm_follow_t *self, int code)
{
    if (!self->stopped) {
        self->stopped = true;
        self->code = code;
    }
}

//  Receives one message (topic, body) without waiting.  Returns 1 with
//  the body in msg (to close), 2 after skipping a message that is not
//  two frames, 0 when nothing is waiting, -1 on error.
static int
s_receive (pm_follow_t *self, zmq_msg_t *body)
{
    zmq_msg_t topic;
    pm_zmq->msg_init (&topic);
    if (pm_zmq->msg_recv (&topic, self->sub, ZMQ_DONTWAIT) == -1) {
        pm_zmq->msg_close (&topic);
        return pm_zmq->error () == EAGAIN || pm_zmq->error () == EINTR ? 0 : -1;
    }
    bool more = pm_zmq->msg_more (&topic);
    pm_zmq->msg_close (&topic);
    if (!more)
        return 2;               //  not ours: one frame only; skipped
    pm_zmq->msg_init (body);
    //  The rest of a message is already here once its first frame is.
    if (pm_zmq->msg_recv (body, self->sub, 0) == -1) {
        pm_zmq->msg_close (body);
        return -1;
    }
    //  Anything after the body is not ours either.
    while (pm_zmq->msg_more (body)) {
        zmq_msg_t extra;
        pm_zmq->msg_init (&extra);
        int rc = pm_zmq->msg_recv (&extra, self->sub, 0);
        bool again = rc != -1 && pm_zmq->msg_more (&extra);
        pm_zmq->msg_close (&extra);
        if (!again)
            break;
    }
    return 1;
}

//  Handles up to S_BATCH waiting messages.  Returns how many arrived.
static size_t
s_handle_batch (pm_follow_t *self, const pm_follow_fns_t *fns, void *arg)
{
    size_t handled = 0;
    while (handled < S_BATCH && !self->stopped) {
        zmq_msg_t body;
        int rc = s_receive (self, &body);
        if (rc <= 0)
            break;
        handled++;
        if (rc == 2)
            continue;
        pm_event_t *event = NULL;
        char err [256];
        const void *data = pm_zmq->msg_data (&body);
        size_t size = pm_zmq->msg_size (&body);
        if (pm_event_decode (data, size, &event, err, sizeof err) != PM_OK)
            fprintf (stderr, "pmctl: ignoring a malformed event: %s\n", err);
        else
        if (event->kind == PM_EVENT_AGENT && self->broker) {
            //  An agent (back) at the broker: what it published before
            //  our subscription reached it is found by a check, soon.
            //  Nothing an agent says ends a session through a broker.
            if (event->event && strcmp (event->event, "connected") == 0)
                pm_follow_check_again (self);
        }
        else
        if (event->kind == PM_EVENT_AGENT) {
            if (event->event && strcmp (event->event, "shutdown") == 0)
                self->shutdown_seen = true;
        }
        else
        if (!self->shutdown_seen)
            fns->on_event (arg, event, data, size);
        pm_event_destroy (&event);
        pm_zmq->msg_close (&body);
    }
    fflush (stdout);
    return handled;
}

//  Reads the signalfd; true if SIGINT or SIGTERM arrived.
static bool
s_signalled (pm_follow_t *self)
{
    struct signalfd_siginfo info;
    return read (self->signal_fd, &info, sizeof info) == sizeof info;
}

int
pm_follow_run (pm_follow_t *self, const pm_follow_fns_t *fns, void *arg)
{
    int pidfd = pm_client_pidfd (self->client);
    self->quiet_at = pm_client_now_ms () + S_QUIET_MS;
    while (!self->stopped) {
        if (self->shutdown_seen) {
            //  Every line was published before this event; one last
            //  look catches any the sockets dropped on the way.
            fns->on_quiet (arg, true);
            fflush (stdout);
            fprintf (stderr, "pmctl: agent %s has shut down\n", self->agent);
            pm_follow_stop (self, PM_EXIT_OK);
            break;
        }
        long long now = pm_client_now_ms ();
        if (self->gone_at >= 0 && now >= self->gone_at + S_GONE_GRACE_MS) {
            fflush (stdout);
            fprintf (stderr, "pmctl: agent %s exited without shutting down\n",
                     self->agent);
            pm_follow_stop (self, PM_EXIT_UNREACHABLE);
            break;
        }
        long long wait = -1;
        if (self->quiet_at >= 0 && self->gone_at < 0)
            wait = self->quiet_at > now ? self->quiet_at - now : 0;
        if (self->gone_at >= 0) {
            long long left = self->gone_at + S_GONE_GRACE_MS - now;
            wait = left > 0 ? left : 0;
        }
        if (pidfd == -1 && self->gone_at < 0
        &&  (wait < 0 || wait > S_LOCK_POLL_MS))
            wait = S_LOCK_POLL_MS;
        zmq_pollitem_t items [3] = {
            { self->sub, 0, ZMQ_POLLIN, 0 },
            { NULL, self->signal_fd, ZMQ_POLLIN, 0 },
            { NULL, pidfd, ZMQ_POLLIN, 0 }
        };
        int count = pidfd != -1 && self->gone_at < 0 ? 3 : 2;
        if (pm_zmq->poll (items, count, (long) wait) == -1) {
            if (pm_zmq->error () == EINTR)
                continue;
            fprintf (stderr, "pmctl: cannot wait for events: %s\n",
                     pm_zmq->strerror (pm_zmq->error ()));
            pm_follow_stop (self, PM_EXIT_UNREACHABLE);
            break;
        }
        if ((items [1].revents & ZMQ_POLLIN) && s_signalled (self)) {
            pm_follow_stop (self, PM_EXIT_OK);
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            if (s_handle_batch (self, fns, arg) > 0 && self->gone_at < 0)
                self->quiet_at = pm_client_now_ms () + S_QUIET_MS;
            continue;           //  drain first; the rest can wait
        }
        if (self->gone_at < 0
        &&  ((count == 3 && (items [2].revents & ZMQ_POLLIN))
          || (pidfd == -1 && pm_client_agent_gone (self->client)))) {
            pm_follow_agent_gone (self);
            continue;
        }
        if (self->quiet_at >= 0 && self->gone_at < 0
        &&  pm_client_now_ms () >= self->quiet_at) {
            self->quiet_at = -1;
            fns->on_quiet (arg, false);
            fflush (stdout);
        }
    }
    return self->code;
}
