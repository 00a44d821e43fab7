/*  supervisor_int.h - what supervisor.c and commands.c share (private)

    The supervisor is one object split over three files: supervisor.c owns
    the services (transitions, dependencies, exits, the restart policy,
    shutdown); commands.c owns the commands and the requests parked until
    their condition holds; reload.c applies a new config file.  This header is their common ground and is not
    part of the agent's interface (that is supervisor.h).
*/
#ifndef PM_SUPERVISOR_INT_H
#define PM_SUPERVISOR_INT_H

#include "supervisor.h"
#include "graph.h"
#include "logcap.h"
#include "probe.h"
#include "service.h"

#include <time.h>

/*  A probe's verdict, as recorded by its callback (which may be reached
    from inside a drain or a reload, so it never acts): the next settle
    acts on it. */
typedef enum {
    PM_VERDICT_NONE = 0,
    PM_VERDICT_READY,         /* the readiness probe passed */
    PM_VERDICT_FAIL           /* a probe failed: the run ends as a failure */
} pm_verdict_t;

typedef struct {
    pm_supervisor_t *sup;     /* back pointer, for timer handlers */
    size_t index;
    pm_service_t *svc;        /* owned */
    pm_logcap_t *log;         /* owned */
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
    unsigned consecutive;     /* policy restarts since the last healthy run */
    double *history;          /* times of policy restarts, max_restarts of them */
    size_t history_count;
    bool retired;             /* removed by a reload: stopping, then gone */
    const pm_config_t *owner; /* the config its spec lives in */
} pm_entry_t;


typedef struct {
    pm_cmd_t cmd;
    uint64_t id;
    void *token;              /* the client's envelope, owned until answered */
    pm_wait_t wait;
    pm_state_t wait_for;      /* `wait`: the state to wait for */
    size_t count;
    size_t *targets;
    char **notes;             /* per target, or NULL entries */
    unsigned long *spawns0;   /* spawns of each target when asked */
    int timer;                /* timeout timer, -1 */
    double timeout;
    pm_supervisor_t *sup;
    pm_reply_t *extra;        /* reload: lists added to the reply, owned */
} pm_waiter_t;

struct pm_supervisor_t {
    zloop_t *loop;            /* not owned */
    pm_config_t *config;      /* the current config, owned */
    zlistx_t *old_configs;    /* pm_config_t *, owned: configs that retired
                                 entries still point into */
    char *agent;
    pm_publish_t *pub;        /* not owned, may be NULL */
    pm_graph_t *graph;        /* of the current config */
    pm_entry_t **entries;     /* live services by config index, then retired
                                 ones; each entry owned, stable in memory */
    size_t count;             /* live services (= config->services_count) */
    size_t total;             /* live and retired */
    bool echo;                /* print service lines on stdout */
    zhashx_t *seqs;           /* name -> last seqs (state, log) of services
                                 removed by a reload, so a name added again
                                 continues its streams */
    zlistx_t *waiters;        /* pm_waiter_t *, parked requests */
    zlistx_t *shutdowns;      /* pm_waiter_t *, shutdown requests */
    pm_supervisor_reply_fn *reply_fn;
    pm_supervisor_free_fn *free_fn;
    void *reply_arg;
    bool shutting_down;
    bool forced;
    bool finished;
    bool settling;            /* re-entrancy guard for pm_sup_settle */
    int settle_timer;         /* a settle asked for by a callback, -1 */
    char **env;               /* extra "KEY=value" for services, owned */
    char *rundir;             /* runtime directory, for the escapee sweep */
};

/*  Requests that may be parked at once; more get `busy`. */
#define PM_SUP_WAITERS_MAX 10000

/*  Wall-clock time, epoch seconds (records and events carry it). */
static inline double
pm_sup_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/*  Shared between supervisor.c, commands.c and reload.c. */
pm_entry_t *pm_sup_entry_new (pm_supervisor_t *self,
                              const pm_config_service_t *spec, size_t index,
                              char *err, size_t errlen);
/*  The entry made by pm_sup_entry_new is in use for good: the sequence
    numbers remembered for its name are consumed. */
void pm_sup_entry_commit (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_entry_destroy (pm_supervisor_t *self, pm_entry_t **entry_p);
void pm_sup_publish (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_restart_probes (pm_supervisor_t *self, pm_entry_t *entry);
bool pm_sup_deps_met (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_build_graph (pm_supervisor_t *self);
void pm_sup_update_echo (pm_supervisor_t *self);
pm_waiter_t *pm_sup_waiter_new (pm_supervisor_t *self,
                                const pm_request_t *request, pm_wait_t wait,
                                const size_t *targets, size_t count,
                                void *token);
void pm_sup_park_or_answer (pm_supervisor_t *self, pm_waiter_t *waiter);
void pm_sup_refuse (pm_supervisor_t *self, uint64_t id, void *token,
                    pm_err_t err, const char *message);
void pm_sup_apply (pm_supervisor_t *self, pm_entry_t *entry, const pm_action_t *action);
void pm_sup_cancel_backoff (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_do_stop (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_policy_reset (pm_entry_t *entry);
void pm_sup_settle (pm_supervisor_t *self);
void pm_sup_start_with_deps (pm_supervisor_t *self, pm_entry_t *entry);
void pm_sup_answer (pm_supervisor_t *self, void **token_p, const pm_reply_t *reply);
void pm_sup_check_waiters (pm_supervisor_t *self);
void pm_sup_waiter_destroy (pm_waiter_t **self_p);
void pm_sup_waiter_reply (pm_supervisor_t *self, pm_waiter_t *waiter, pm_err_t code);

#endif
