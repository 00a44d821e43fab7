/*  supervisor_int.h - what the supervisor's files share (private)

    The supervisor is one object over four files: supervisor.c owns the
    entries, settling and the end of shutdown; runs.c one run of a
    service (spawn, probes, exits, the policy's timer); commands.c what
    each command does and the requests parked until their condition
    holds; reload.c applying a new config file.  The decisions they act
    on are pure modules of their own that never see an entry: order
    (which service may start or stop), policy (restart or give up),
    waiter (is a parked request done), service (the state table).

    This header is their common ground and is not part of the agent's
    interface (that is supervisor.h).
*/
#ifndef PM_SUPERVISOR_INT_H
#define PM_SUPERVISOR_INT_H

#include "supervisor.h"
#include "graph.h"
#include "logcap.h"
#include "policy.h"
#include "probe.h"
#include "service.h"
#include "snapshot.h"

/*  A probe's verdict, as recorded by its callback (which may be reached
    from inside a drain or a reload, so it never acts): the next settle
    acts on it. */
typedef enum {
    PM_VERDICT_NONE = 0,
    PM_VERDICT_READY,         /* the readiness probe passed */
    PM_VERDICT_FAIL           /* a probe failed: the run ends as a failure */
} pm_verdict_t;

/*  One service of the supervisor, live or retired. */
typedef struct {
    pm_supervisor_t *sup;     /* back pointer, for timer handlers */
    size_t index;             /* config index (live), or its place (retired) */
    pm_service_t *svc;        /* the state machine, owned */
    pm_logcap_t *log;         /* its output capture, owned */
    int stop_timer;           /* zloop timer id, -1 when not armed */
    bool stop_queued;         /* to be stopped once its dependents are down */
    bool start_after_stop;    /* to be started again once down */
    pid_t linger_pgid;        /* group left by an unrequested exit, 0: none */
    int linger_signal_timer;  /* SIGKILL for the lingering group, -1 */
    pm_probe_t *ready_probe;  /* readiness of the current run, or NULL */
    pm_probe_t *alive_probe;  /* liveness of the current run, or NULL */
    pm_verdict_t verdict;     /* a probe's verdict, recorded, not yet acted on */
    unsigned long verdict_run;/* the run (spawn count) it was reached in */
    char *verdict_reason;     /* why the run failed, owned, or NULL */
    int backoff_timer;        /* the policy's next start, -1 */
    pm_policy_t *policy;      /* its restart policy's memory, owned */
    bool retired;             /* removed by a reload: stopping, then gone */
    const pm_config_t *owner; /* the config its spec lives in */
    pm_snapshot_record_t snap;    /* its record in the status snapshot */
    bool snap_stale;          /* the record changed since snap was encoded */
} pm_entry_t;

/*  A request parked until its condition holds (commands.c). */
typedef struct pm_parked_t pm_parked_t;

struct pm_supervisor_t {
    zloop_t *loop;            /* not owned */
    pm_config_t *config;      /* the current config, owned */
    zlistx_t *old_configs;    /* pm_config_t *, owned: configs that retired
                                 entries still point into */
    char *agent;              /* the agent's name, owned */
    pm_publish_t *pub;        /* not owned, may be NULL */
    pm_graph_t *graph;        /* of the current config, owned */
    pm_entry_t **entries;     /* live services by config index, then retired
                                 ones; each entry owned, stable in memory */
    size_t count;             /* live services (= config->services_count) */
    size_t total;             /* live and retired */
    bool echo;                /* print service lines on stdout */
    zhashx_t *seqs;           /* name -> last seqs (state, log) of services
                                 removed by a reload, so a name added again
                                 continues its streams */
    zlistx_t *parked;         /* pm_parked_t *, owned: parked requests */
    zlistx_t *shutdowns;      /* pm_parked_t *, owned: shutdown requests */
    pm_supervisor_reply_fn *reply_fn;   /* sends a reply (control) */
    pm_supervisor_free_fn *free_fn;     /* frees an unanswered envelope */
    void *reply_arg;          /* their argument, not owned */
    bool shutting_down;       /* the graceful shutdown has begun */
    bool forced;              /* shutdown asked twice: no more waiting */
    bool finished;            /* everything is down and answered */
    bool settling;            /* re-entrancy guard for pm_sup_settle */
    int settle_timer;         /* a settle asked for by a callback, -1 */
    char **env;               /* extra "KEY=value" for services, owned */
    char *rundir;             /* runtime directory, for the escapee sweep */
    pm_snapshot_t *snapshot;  /* the status file, not owned, or NULL */
    const pm_leases_t *leases;    /* listed in status, not owned, or NULL */
    pm_supervisor_reloaded_fn *on_reloaded;   /* or NULL */
    void *on_reloaded_arg;
    pm_lifecycle_t *lifecycle;    /* the config record's writer, not owned,
                                     or NULL */
    char **sweeps;            /* services whose run ended this pass, to be
                                 swept for escapees (owned strings) */
    size_t sweeps_count, sweeps_cap;
    bool dirty;               /* a record changed since the last snapshot */
    zlistx_t *outbox;         /* state events of this pass, not sent yet */
};

/*  Requests that may be parked at once; more get `busy`. */
#define PM_SUP_WAITERS_MAX 10000


/* --- supervisor.c: entries, order, settling ------------------------ */

/*  A new entry for spec at index, its log file opened; NULL with err. */
pm_entry_t *pm_sup_entry_new (pm_supervisor_t *self,
                              const pm_config_service_t *spec, size_t index,
                              char *err, size_t errlen);
/*  The entry made by pm_sup_entry_new is in use for good: the sequence
    numbers remembered for its name are consumed. */
void pm_sup_entry_commit (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_entry_destroy (pm_supervisor_t *self, pm_entry_t **entry_p);
/*  Rebuilds the graph from the current config. */
void pm_sup_build_graph (pm_supervisor_t *self);
/*  Echo settings (the name column's width) after the entries changed. */
void pm_sup_update_echo (pm_supervisor_t *self);
/*  Publishes (and logs) every transition entry made since the last call. */
void pm_sup_publish (pm_supervisor_t *self, pm_entry_t *entry);
/*  True if every dependency of live entry meets its condition now. */
bool pm_sup_deps_met (pm_supervisor_t *self, pm_entry_t *entry);
/*  Starts entry and, first, whatever it depends on that is not up (the
    order's start plan); a retired entry is never started. */
void pm_sup_start_with_deps (pm_supervisor_t *self, pm_entry_t *entry);
/*  Stops entry now (its turn has come): probes and backoff end. */
void pm_sup_do_stop (pm_supervisor_t *self, pm_entry_t *entry);
/*  entry may have come down: a start queued behind its stop follows. */
void pm_sup_after_down (pm_supervisor_t *self, pm_entry_t *entry);
/*  Acts on what the last event changed (see supervisor.c).  Only a loop
    handler calls it, once, at its end. */
void pm_sup_settle (pm_supervisor_t *self);
/*  The pass's records are final: writes the snapshot if a record changed,
    then publishes the state events held since (settling calls it before
    it answers, and so does every reply). */
void pm_sup_flush (pm_supervisor_t *self);
/*  A run of service is over and its group gone: the processes that left
    the group but carry its marks are killed by the next flush, in one
    sweep for every service queued (unless one has a newer run by then). */
void pm_sup_queue_sweep (pm_supervisor_t *self, const char *service);
/*  Every record may have changed (a reload moved specs): the next flush
    encodes each again for the snapshot. */
void pm_sup_stale_all (pm_supervisor_t *self);
/*  A callback changed something: settle right after the current loop
    handler (a 1 ms timer; a settle before it fires cancels it). */
void pm_sup_settle_soon (pm_supervisor_t *self);

/* --- runs.c: one run ---------------------------------------------- */

/*  Spawns waiting entry (its dependencies are met): starting, then
    running at once without a readiness probe; a spawn that fails goes
    to failed and to the policy. */
void pm_sup_spawn (pm_supervisor_t *self, pm_entry_t *entry);
/*  Performs what the state machine asked: signal the group, arm or
    cancel the stop timer. */
void pm_sup_apply (pm_supervisor_t *self, pm_entry_t *entry,
                   const pm_action_t *action);
/*  Ends the probes of entry's run and forgets their verdict. */
void pm_sup_stop_probes (pm_entry_t *entry);
/*  Restarts the probes of a running or starting entry with its new
    settings (reload); a recorded verdict stays. */
void pm_sup_restart_probes (pm_supervisor_t *self, pm_entry_t *entry);
/*  Acts on entry's recorded verdict if it belongs to its current run
    (ready: running; fail: the run is stopped as a failure). */
void pm_sup_take_verdict (pm_supervisor_t *self, pm_entry_t *entry);
/*  The line callback of every entry's log capture (feeds its ready
    probe; records only). */
void pm_sup_on_line (void *arg, const char *line, size_t size);
/*  The run of entry ended by itself: the policy decides, before the
    transition is published (a give-up shows in the event). */
void pm_sup_policy (pm_supervisor_t *self, pm_entry_t *entry);
/*  Cancels the policy's pending start of entry. */
void pm_sup_cancel_backoff (pm_supervisor_t *self, pm_entry_t *entry);

/* --- commands.c: parked requests ---------------------------------- */

/*  A request waiting for wait on targets (indexes), taking token. */
pm_parked_t *pm_sup_parked_new (pm_supervisor_t *self,
                                const pm_request_t *request, pm_wait_t wait,
                                const size_t *targets, size_t count,
                                void *token);
/*  Lists added to every answer it gets (reload), taken. */
void pm_sup_parked_set_extra (pm_parked_t *parked, pm_reply_t **extra_p);
/*  Settles, then answers parked now (wait none, or nothing to wait for)
    or parks it until its condition holds or its timeout passes. */
void pm_sup_park_or_answer (pm_supervisor_t *self, pm_parked_t *parked);
/*  Answers every parked request that is done (settle calls it). */
void pm_sup_parked_check (pm_supervisor_t *self);
/*  Answers every parked request (but those waiting for stops when
    starts_only) with code, then lets it go. */
void pm_sup_parked_end (pm_supervisor_t *self, pm_err_t code,
                        bool starts_only);
/*  Answers every shutdown request: the shutdown is complete. */
void pm_sup_shutdowns_answer (pm_supervisor_t *self);
/*  Lets every parked and shutdown request go unanswered (teardown). */
void pm_sup_parked_free (pm_supervisor_t *self);
/*  After a reload's swap: targets move to their new index; requests
    waiting for a removed service are answered `failed`. */
void pm_sup_parked_remap (pm_supervisor_t *self, const pm_config_t *next,
                          pm_entry_t **old_entries, size_t old_count);
/*  Sends reply to the client behind *token_p, which is then let go. */
void pm_sup_answer (pm_supervisor_t *self, void **token_p,
                    const pm_reply_t *reply);
/*  Answers token at once with an error. */
void pm_sup_refuse (pm_supervisor_t *self, uint64_t id, void *token,
                    pm_err_t err, const char *message);

#endif
