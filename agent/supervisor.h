/*  supervisor.h - all services of one agent, their graph, and the waits

    Owns: the services (one state machine each), their log captures, the
    dependency rules between them (who may start when, who stops first),
    the timers that go with stopping, the requests parked until their
    condition holds, and the graceful shutdown.

    Leaves to others: decoding requests and sending replies (control),
    the process work (spawn, reaper), publishing (publish).

    Every entry point is an event; after it the supervisor "settles":
    starts what may start, stops what may stop, publishes each transition,
    and answers the parked requests whose condition now holds.
*/
#ifndef PM_SUPERVISOR_H
#define PM_SUPERVISOR_H

#include <czmq.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "pm_proto.h"
#include "publish.h"

typedef struct pm_supervisor_t pm_supervisor_t;

/*  Sends reply to the client behind token, then frees token.  The
    supervisor keeps the reply's ownership (it destroys it after). */
typedef void (pm_supervisor_reply_fn) (void *arg, void *token,
                                       const pm_reply_t *reply);
/*  Frees a token that will never be answered (agent teardown). */
typedef void (pm_supervisor_free_fn) (void *arg, void *token);

/*  A supervisor for config, which it takes (a reload replaces it).  Opens
    every service's log file.  Returns NULL with a message in err. */
pm_supervisor_t *pm_supervisor_new (zloop_t *loop, pm_config_t **config_p,
                                    const char *agent, pm_publish_t *pub,
                                    char *err, size_t errlen);

/*  The current config (borrowed: valid until the next reload). */
const pm_config_t *pm_supervisor_config (const pm_supervisor_t *self);
void pm_supervisor_destroy (pm_supervisor_t **self_p);

void pm_supervisor_set_replier (pm_supervisor_t *self,
                                pm_supervisor_reply_fn *reply,
                                pm_supervisor_free_fn *free_token, void *arg);

/*  Variables ("KEY=value") given to every service after the config's
    own; the list is copied. */
void pm_supervisor_set_env (pm_supervisor_t *self, char *const *env);

/*  The runtime directory: when a run is over, processes that left its
    process group are found by the marks every service carries in its
    environment (PMBUS_RUNTIME_DIR, PMBUS_SERVICE) and killed. */
void pm_supervisor_set_rundir (pm_supervisor_t *self, const char *rundir);

/*  Keeps snapshot (not owned; it outlives the supervisor) up to date:
    written once per loop pass in which a record changed, before any reply
    or state event of that pass goes out. */
typedef struct pm_snapshot_t pm_snapshot_t;
void pm_supervisor_set_snapshot (pm_supervisor_t *self,
                                 pm_snapshot_t *snapshot);

/*  The agent's leases (not owned; they outlive the supervisor), listed in
    status replies and the status snapshot; pm_supervisor_leases_changed
    after every change rewrites the snapshot before anything else goes
    out. */
typedef struct pm_leases_t pm_leases_t;
void pm_supervisor_set_leases (pm_supervisor_t *self,
                               const pm_leases_t *leases);
void pm_supervisor_leases_changed (pm_supervisor_t *self);

/*  The agent's runtime files (not owned; they outlive the supervisor):
    after each reload that took effect, the record of the loaded config
    is rewritten through it (pm_lifecycle_write_config). */
typedef struct pm_lifecycle_t pm_lifecycle_t;
void pm_supervisor_set_lifecycle (pm_supervisor_t *self,
                                  pm_lifecycle_t *lifecycle);

/*  Print every service line on stdout, prefixed by its name. */
void pm_supervisor_set_echo (pm_supervisor_t *self, bool echo);

/*  Starts every autostart service, dependencies first. */
void pm_supervisor_autostart (pm_supervisor_t *self);

/*  A child was reaped (from the reaper): records it, and acts on what
    needs no settling (signals to what its group left).  Call
    pm_supervisor_reaped once the reaper has no more: one settle, one
    snapshot and one send of the events for all the exits of a wakeup. */
void pm_supervisor_on_exit (pm_supervisor_t *self, pid_t pid, int status);
void pm_supervisor_reaped (pm_supervisor_t *self);

/*  Index of the service called name, or -1. */
int pm_supervisor_find (const pm_supervisor_t *self, const char *name);
size_t pm_supervisor_size (const pm_supervisor_t *self);
/*  The name of service index (< pm_supervisor_size), or NULL. */
const char *pm_supervisor_name (const pm_supervisor_t *self, size_t index);

/*  Called once a reload has changed the set of services. */
typedef void (pm_supervisor_reloaded_fn) (void *arg);
void pm_supervisor_set_on_reloaded (pm_supervisor_t *self,
                                    pm_supervisor_reloaded_fn *fn, void *arg);

/*  Commands.  targets are service indexes (checked by the caller).  Each
    either answers at once through the reply function or parks the
    request, answering when its wait holds, its timeout passes, or the
    agent shuts down.  The token is taken in every case. */
void pm_supervisor_status (pm_supervisor_t *self, const size_t *targets,
                           size_t count, pm_reply_t *reply);
void pm_supervisor_start (pm_supervisor_t *self, const pm_request_t *request,
                          const size_t *targets, size_t count, void *token);
void pm_supervisor_stop (pm_supervisor_t *self, const pm_request_t *request,
                         const size_t *targets, size_t count, void *token);
void pm_supervisor_restart (pm_supervisor_t *self, const pm_request_t *request,
                            const size_t *targets, size_t count, void *token);
void pm_supervisor_signal (pm_supervisor_t *self, const pm_request_t *request,
                           const size_t *targets, size_t count,
                           pm_reply_t *reply);

/*  `wait`: parks until every target reaches request->wait_for, or one
    cannot without a command, or the timeout passes. */
void pm_supervisor_wait (pm_supervisor_t *self, const pm_request_t *request,
                         const size_t *targets, size_t count, void *token);

/*  `logs`: the recent lines of the targets (all services when count is
    0), the last `tail` (default 100) or those after `since`, with what
    is gone and whether the reply was cut (see PROTOCOL.md). */
void pm_supervisor_logs (pm_supervisor_t *self, const pm_request_t *request,
                         const size_t *targets, size_t count,
                         pm_reply_t *reply);

/*  `reload` (and SIGHUP, with no token): reads the config file again and
    applies the difference (see reload.c).  An invalid file changes
    nothing: the error goes back to the client (bad-config) or to the log.
    The answer waits for the services the reload (re)started. */
void pm_supervisor_reload (pm_supervisor_t *self, uint64_t id, void *token);

/*  Begins the graceful shutdown (idempotent).  A second call with force
    skips what is left of the stop timeouts.  token, if not NULL, is
    answered when the shutdown is complete. */
void pm_supervisor_shutdown (pm_supervisor_t *self, bool force,
                             uint64_t id, void *token);
bool pm_supervisor_shutting_down (const pm_supervisor_t *self);

/*  True once shutdown is complete: every service is down, its output
    drained, the last agent event published and every request answered.
    The caller then ends the loop. */
bool pm_supervisor_finished (const pm_supervisor_t *self);

#endif
