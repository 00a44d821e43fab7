/*  client.h - pmctl's side of the control socket

    Owns: finding the agent (config file, agent name, runtime directory
    and endpoints, by the same rule pmd uses: pm_rundir), proving it runs
    (its lock), and one request/reply exchange on a DEALER socket while
    watching the agent's process, so that a dead agent is an answer and
    never a hang.  Also waits for the agent to exit after `shutdown`.

    Leaves to others: building requests and rendering replies (main.c,
    render.c), the wire format (libpmproto), configuration rules
    (libpmconfig, schema/).  Uses raw libzmq, not czmq: pmctl must start in a
    few milliseconds.
*/
#ifndef PM_CLIENT_H
#define PM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pm_proto.h"
#include "pm_rundir.h"

typedef struct pm_client_t pm_client_t;

/*  How an exchange ended. */
typedef enum {
    PM_CALL_REPLY = 0,        /* a reply arrived (it may carry an error) */
    PM_CALL_READY = 0,        /* pm_client_open: connected (same value) */
    PM_CALL_NO_AGENT,         /* no agent holds the lock; nothing was sent */
    PM_CALL_AGENT_EXITED,     /* the agent's process ended before it answered */
    PM_CALL_NO_ANSWER,        /* the deadline passed without a reply */
    PM_CALL_ERROR             /* a system or protocol error (message says) */
} pm_call_t;

/*  The config file pmctl uses: option (may be NULL), else $PMBUS_CONFIG,
    else "pmbus.cfg".  Sets *implicit when it is the default, which may
    legitimately be missing when a runtime directory is given.  Returns a
    borrowed string (the option, the environment, or a literal). */
const char *pm_client_config_file (const char *option, bool *implicit);

/*  Locates the agent: loads the config file chosen as above (from
    config_option) to learn agent.name and the endpoint overrides, and
    computes its paths, in rundir when not NULL.  With a rundir and no
    config file given or found, the rundir alone is used.  Returns a new
    client, or NULL with a message in err (missing or unreadable config:
    a usage problem, exit code 2). */
pm_client_t *pm_client_new (const char *config_option, const char *rundir,
                            char *err, size_t errlen);

/*  A client of the agent (or broker) whose control socket is endpoint,
    on this host or another: `--connect`.  A tcp:// endpoint needs the
    server's public certificate and this client's secret one (read here,
    so a missing or wrong file is an error now).  No lock, pid or runtime
    directory is involved; a call waits at most 5 s for the connection and
    its CURVE handshake, and a refused handshake is an error saying which
    side refused (PM_CALL_ERROR).  Returns NULL with a message in err. */
pm_client_t *pm_client_new_remote (const char *endpoint,
                                   const char *server_key_file,
                                   const char *key_file,
                                   char *err, size_t errlen);

/*  Whether the client came from pm_client_new_remote. */
bool pm_client_is_remote (const pm_client_t *self);

/*  Puts a remote client's CURVE keys and TCP settings on another socket
    of its context (a SUB on the events endpoint); nothing otherwise. */
void pm_client_secure (const pm_client_t *self, void *socket);

/*  endpoint as this client should connect to it: an endpoint from hello
    whose host is a wildcard (0.0.0.0, *, ::) gets the host of the remote
    control endpoint instead.  Returns 0, or -1 when out is too small. */
int pm_client_endpoint (const pm_client_t *self, const char *endpoint,
                        char *out, size_t size);

/*  When the config file exists but does not validate, pm_client_new still
    locates the agent (a running agent keeps the config it loaded, and
    stop or shutdown must not depend on the file being fixed first): it
    reads agent.name and the endpoints as far as libconfig can, else
    derives the name from the path.  This returns the validation error
    then (for a warning), else NULL. */
const char *pm_client_warning (const pm_client_t *self);

/*  Closes the socket and context; does nothing on NULL. */
void pm_client_destroy (pm_client_t **self_p);

/*  The agent's name (from the config or derived), its paths, and the
    absolute config path (NULL when only a rundir was given). */
const char *pm_client_name (const pm_client_t *self);
const pm_paths_t *pm_client_paths (const pm_client_t *self);
const char *pm_client_config_path (const pm_client_t *self);

/*  Checks the agent's lock (PM_CALL_NO_AGENT: none runs), and the first
    time it succeeds opens a pidfd on the pid in the pid file and
    connects the DEALER.  Returns PM_CALL_READY, or PM_CALL_NO_AGENT or
    PM_CALL_ERROR with a message in err.  pm_client_call does this
    itself; callers that need the context first (a SUB socket) call it
    before. */
pm_call_t pm_client_open (pm_client_t *self, char *err, size_t errlen);

/*  Sends request and waits for its reply.  First checks the agent's lock
    (PM_CALL_NO_AGENT, nothing sent) and opens the connection (above),
    then waits for the reply, the agent's exit, or timeout_ms (negative:
    no limit), whichever comes first.  On PM_CALL_REPLY, sets *reply_p to
    the decoded reply and *frame_p, *size_p to a malloc'd copy of the raw
    frame (for --json); the caller frees both.  Otherwise err holds a
    message.  May be called many times on one client, one request at a
    time; each request needs its own id (pm_client_next_id). */
pm_call_t pm_client_call (pm_client_t *self, const pm_request_t *request,
                          int timeout_ms, pm_reply_t **reply_p,
                          char **frame_p, size_t *size_p,
                          char *err, size_t errlen);

/*  A request id not used yet on this client. */
uint64_t pm_client_next_id (pm_client_t *self);

/*  After pm_client_open: the libzmq context (for more sockets, such as a
    SUB on the events endpoint), the agent's pid (0 when unknown) and the
    pidfd watching it (-1 when none: then only its lock tells). */
void *pm_client_context (const pm_client_t *self);
long pm_client_pid (const pm_client_t *self);
int pm_client_pidfd (const pm_client_t *self);

/*  True once the agent is known to be gone: its pidfd fired, or (with
    no pidfd) its lock is free. */
bool pm_client_agent_gone (const pm_client_t *self);

/*  After a call: waits until the agent's process has exited (pidfd, or
    its lock when the pid could not be watched).  Returns 0 once it is
    gone, -1 when timeout_ms (negative: no limit) passed first. */
int pm_client_wait_exit (pm_client_t *self, int timeout_ms);

/*  Milliseconds on the monotonic clock, for deadlines. */
long long pm_client_now_ms (void);

#endif
