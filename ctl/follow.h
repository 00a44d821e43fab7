/*  follow.h - a live session on the agent's events, for logs -f and
    events -f

    Owns: the SUB socket on the agent's events endpoint and its topic
    prefixes, SIGINT and SIGTERM (blocked, read from a signalfd), the
    watch on the agent's process, and the loop that hands each event to
    the command, tells it when the stream has gone quiet, and ends the
    session: Ctrl-C or SIGTERM (exit 0), the agent's last `shutdown`
    event (exit 0), the agent gone without one (exit 3).

    Leaves to others: what to do with an event, and recovering what was
    missed (logs.c, events.c); requests (client.c).

    Order matters for the caller: pm_follow_new before the first ZeroMQ
    socket exists (libzmq's threads inherit the signal mask), then
    pm_follow_attach, pm_follow_subscribe, pm_follow_connect, and only
    then the first fetch (subscribe first, then fetch: what happens in
    between arrives twice, never not at all).
*/
#ifndef PM_FOLLOW_H
#define PM_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "pm_proto.h"

typedef struct pm_follow_t pm_follow_t;

typedef struct {
    /*  A state or log event under one of the prefixes.  body, size: its
        raw frame (for --json). */
    void (*on_event) (void *arg, const pm_event_t *event, const void *body,
                      size_t size);
    /*  The stream has been quiet for a moment after joining or after some
        activity: the time to ask the agent whether anything published
        meanwhile never arrived (a subscription not live yet, messages
        dropped at the end of a burst).  Also called once after the
        agent's shutdown event, with final set: then every message
        published before has arrived, unless it was dropped. */
    void (*on_quiet) (void *arg, bool final);
} pm_follow_fns_t;

/*  Blocks SIGINT and SIGTERM and opens a signalfd on them.  Returns a
    new session, or NULL with a message in err. */
pm_follow_t *pm_follow_new (char *err, size_t errlen);
void pm_follow_destroy (pm_follow_t **self_p);

/*  Asks the agent behind client (borrowed; it must outlive the session)
    for its name and events endpoint (`hello`).  Returns 0, or an exit
    code after printing why. */
int pm_follow_attach (pm_follow_t *self, pm_client_t *client);

/*  The agent's name, as it says it. */
const char *pm_follow_agent (const pm_follow_t *self);

/*  Whether the session is through a broker (its hello says so): then
    streams are told apart by service and agent, "service@agent", as the
    broker names them in its replies. */
bool pm_follow_broker (const pm_follow_t *self);

/*  Subscribes to kind ("log", "state") for the names asked (none: all):
    on an agent, kind/<agent>/<name>/; through a broker, kind/<agent>/
    <service>/ for service@agent, and kind/ when a name is bare (the
    broker's replies then say which agents' streams are wanted), only
    kind/<agent>/ of the agents given (--agent) when there are some. */
void pm_follow_subscribe_names (pm_follow_t *self, const char *kind,
                                char **names, int count,
                                const char **agents, int agents_count);

/*  The key of a stream: service, or through a broker service@agent (in
    buf).  self may be NULL (not following): then a record's agent
    (which only a broker sets) decides. */
const char *pm_follow_key (const pm_follow_t *self, const char *service,
                           const char *agent, char *buf, size_t size);

/*  Which run of its agent a stream comes from.  An agent that restarts
    (behind a broker, the session goes on) numbers its streams from seq 1
    again, under a new instance: a stream's cursor only means something
    within one run.  Instances seen before the current one are retired:
    a late message of a run that is over is dropped, not taken for a new
    run.  Zeroed: no run seen yet. */
#define PM_RUNS_RETIRED 4
typedef struct {
    char current [PM_INSTANCE_MAX + 1];
    char retired [PM_RUNS_RETIRED][PM_INSTANCE_MAX + 1];
    unsigned next;            //  the retired slot to reuse next
} pm_run_t;

typedef enum {
    PM_RUN_SAME = 0,          //  the run followed (or the first seen, or
                              //  no instance given: an older agent)
    PM_RUN_NEW,               //  a new run: it is followed from now on
    PM_RUN_OVER               //  a run retired before: drop what it says
} pm_run_change_t;

/*  What a message or reply of instance (may be NULL) means for run. */
pm_run_change_t pm_run_see (pm_run_t *run, const char *instance);

/*  Adds a topic prefix ("log/demo/web/"); before pm_follow_connect. */
void pm_follow_subscribe (pm_follow_t *self, const char *prefix);

/*  Creates the SUB socket, subscribes to every prefix and to
    agent/<agent>/, and connects.  Returns 0, or an exit code after
    printing why. */
int pm_follow_connect (pm_follow_t *self);

/*  Runs the session until it ends; returns the exit code. */
int pm_follow_run (pm_follow_t *self, const pm_follow_fns_t *fns, void *arg);

/*  From a handler: a request found the agent gone.  The session then
    gives the last messages a moment to arrive and ends. */
void pm_follow_agent_gone (pm_follow_t *self);

/*  From on_quiet: call on_quiet again after another quiet moment, even
    if nothing arrives (to tell a message still on its way from one that
    was lost). */
void pm_follow_check_again (pm_follow_t *self);

/*  From a handler: end the session with code once the handler returns. */
void pm_follow_stop (pm_follow_t *self, int code);

#endif
