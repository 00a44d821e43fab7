/*  supervisor.c - all services of one agent (supervisor.h)

    Owns: the entries (one per service: its state machine, log capture,
    probes, timers and order flags), their construction and the graph;
    publishing each transition; settling, the one place where the order
    rules (order.c) are applied: spawn what may start, fail what never
    can, stop what may stop, sweep what a reload removed, answer the
    parked requests; and the end of the graceful shutdown.

    Leaves to others: one run of a service (runs.c), what each command
    does and the parked requests (commands.c), reloads (reload.c), the
    decisions themselves (order, policy, waiter, service).

    Settling runs once at the end of each loop handler (the reaper, a
    timer, a command, a reload): never from a callback reached from inside
    a drain, a reload or an exit (they only record, and ask for a settle).
    Restart = queue the stop, then start again once down; stop --all and
    shutdown queue everything, so they follow the reverse of the start
    order, with unrelated services stopping in parallel.
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "lease.h"
#include "lifecycle.h"
#include "order.h"
#include "snapshot.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/*  Construction                                                       */
/* ------------------------------------------------------------------ */

pm_entry_t *
pm_sup_entry_new (pm_supervisor_t *self, const pm_config_service_t *spec,
                  size_t index, char *err, size_t errlen)
{
    pm_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->sup = self;
    entry->index = index;
    entry->owner = self->config;
    entry->stop_timer = -1;
    entry->linger_signal_timer = -1;
    entry->backoff_timer = -1;
    entry->snap_stale = true;
    entry->policy = pm_policy_new (spec->max_restarts);
    entry->log = pm_logcap_new (self->loop, spec->name, spec->log_file,
                                &spec->log, self->pub, err, errlen);
    if (!entry->log) {
        pm_policy_destroy (&entry->policy);
        free (entry);
        return NULL;
    }
    pm_logcap_set_line_fn (entry->log, pm_sup_on_line, entry);
    entry->svc = pm_service_new (spec, pm_wall_clock ());
    //  A name seen before (removed by a reload, now back) continues its
    //  streams: one stream per agent and service name, seq always +1.
    //  What is remembered stays until the entry is committed (a reload
    //  that fails after this must not lose it): pm_sup_entry_commit.
    uint64_t *seqs = (uint64_t *) zhashx_lookup (self->seqs, spec->name);
    if (seqs) {
        pm_service_set_seq (entry->svc, seqs [0]);
        pm_logcap_set_seq (entry->log, seqs [1]);
    }
    return entry;
}

void
pm_sup_entry_commit (pm_supervisor_t *self, pm_entry_t *entry)
{
    zhashx_delete (self->seqs, pm_service_name (entry->svc));
}

//  Remembers where a removed service's streams stopped.
static void
s_remember_seqs (pm_supervisor_t *self, pm_entry_t *entry)
{
    uint64_t *seqs = malloc (2 * sizeof *seqs);
    assert (seqs);
    seqs [0] = pm_service_seq (entry->svc);
    seqs [1] = pm_logcap_seq (entry->log);
    zhashx_update (self->seqs, pm_service_name (entry->svc), seqs);
}

void
pm_sup_entry_destroy (pm_supervisor_t *self, pm_entry_t **entry_p)
{
    pm_entry_t *entry = *entry_p;
    if (!entry)
        return;
    pm_timer_end (self->loop, &entry->stop_timer);
    pm_timer_end (self->loop, &entry->linger_signal_timer);
    pm_timer_end (self->loop, &entry->backoff_timer);
    pm_probe_destroy (&entry->ready_probe);
    pm_probe_destroy (&entry->alive_probe);
    free (entry->verdict_reason);
    pm_policy_destroy (&entry->policy);
    pm_logcap_destroy (&entry->log);
    pm_service_destroy (&entry->svc);
    pm_snapshot_record_clear (&entry->snap);
    free (entry);
    *entry_p = NULL;
}

void
pm_sup_build_graph (pm_supervisor_t *self)
{
    pm_graph_destroy (&self->graph);
    self->graph = pm_graph_new (self->count);
    for (size_t i = 0; i < self->count; i++) {
        const pm_config_service_t *spec = &self->config->services [i];
        for (size_t d = 0; d < spec->deps_count; d++)
            pm_graph_add_edge (self->graph, i, spec->deps [d].index);
    }
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

/*  A state event held until the end of the pass. */
typedef struct {
    uint64_t seq;
    double ts;
    pm_state_t old_state;
    pm_state_t new_state;
    pm_record_t record;       /* as it was at the transition, owned */
} s_outgoing_t;

static void s_outgoing_destroy (void **item_p);

pm_supervisor_t *
pm_supervisor_new (zloop_t *loop, pm_config_t **config_p, const char *agent,
                   pm_publish_t *pub, char *err, size_t errlen)
{
    pm_supervisor_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->config = *config_p;
    *config_p = NULL;
    self->old_configs = zlistx_new ();
    self->seqs = zhashx_new ();
    zhashx_set_destructor (self->seqs, s_free_item);
    self->agent = strdup (agent);
    self->pub = pub;
    self->parked = zlistx_new ();
    self->outbox = zlistx_new ();
    zlistx_set_destructor (self->outbox, s_outgoing_destroy);
    self->shutdowns = zlistx_new ();
    self->settle_timer = -1;
    self->entries = calloc (self->config->services_count + 1,
                            sizeof *self->entries);
    assert (self->entries);
    for (size_t i = 0; i < self->config->services_count; i++) {
        self->entries [i] = pm_sup_entry_new (self,
                                              &self->config->services [i], i,
                                              err, errlen);
        if (!self->entries [i]) {
            pm_supervisor_destroy (&self);
            return NULL;
        }
        pm_sup_entry_commit (self, self->entries [i]);
        self->count = self->total = i + 1;
    }
    pm_sup_build_graph (self);
    return self;
}

void
pm_supervisor_destroy (pm_supervisor_t **self_p)
{
    pm_supervisor_t *self = *self_p;
    if (!self)
        return;
    pm_sup_parked_free (self);
    zlistx_destroy (&self->parked);
    zlistx_destroy (&self->outbox);
    zlistx_destroy (&self->shutdowns);
    pm_timer_end (self->loop, &self->settle_timer);
    for (size_t i = 0; i < self->total; i++)
        pm_sup_entry_destroy (self, &self->entries [i]);
    free (self->entries);
    pm_config_t *config;
    while ((config = (pm_config_t *) zlistx_detach (self->old_configs, NULL)))
        pm_config_destroy (&config);
    zlistx_destroy (&self->old_configs);
    zhashx_destroy (&self->seqs);
    pm_config_destroy (&self->config);
    for (char **p = self->env; p && *p; p++)
        free (*p);
    free (self->env);
    for (size_t k = 0; k < self->sweeps_count; k++)
        free (self->sweeps [k]);
    free (self->sweeps);
    free (self->rundir);
    pm_graph_destroy (&self->graph);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

void
pm_supervisor_set_replier (pm_supervisor_t *self,
                           pm_supervisor_reply_fn *reply,
                           pm_supervisor_free_fn *free_token, void *arg)
{
    self->reply_fn = reply;
    self->free_fn = free_token;
    self->reply_arg = arg;
}

void
pm_supervisor_set_env (pm_supervisor_t *self, char *const *env)
{
    size_t count = 0;
    while (env && env [count])
        count++;
    self->env = calloc (count + 1, sizeof *self->env);
    assert (self->env);
    for (size_t i = 0; i < count; i++)
        self->env [i] = strdup (env [i]);
}

void
pm_supervisor_set_rundir (pm_supervisor_t *self, const char *rundir)
{
    free (self->rundir);
    self->rundir = rundir ? strdup (rundir) : NULL;
}

void
pm_sup_update_echo (pm_supervisor_t *self)
{
    int width = 0;
    for (size_t i = 0; i < self->total; i++) {
        int len = (int) strlen (pm_service_name (self->entries [i]->svc));
        if (len > width)
            width = len;
    }
    for (size_t i = 0; i < self->total; i++)
        pm_logcap_set_echo (self->entries [i]->log, self->echo, width);
}

void
pm_supervisor_set_echo (pm_supervisor_t *self, bool echo)
{
    self->echo = echo;
    pm_sup_update_echo (self);
}

const pm_config_t *
pm_supervisor_config (const pm_supervisor_t *self)
{
    return self->config;
}

int
pm_supervisor_find (const pm_supervisor_t *self, const char *name)
{
    return pm_config_find (self->config, name);
}

size_t
pm_supervisor_size (const pm_supervisor_t *self)
{
    return self->count;
}

const char *
pm_supervisor_name (const pm_supervisor_t *self, size_t index)
{
    return index < self->count ? pm_service_name (self->entries [index]->svc)
                               : NULL;
}

void
pm_supervisor_set_on_reloaded (pm_supervisor_t *self,
                               pm_supervisor_reloaded_fn *fn, void *arg)
{
    self->on_reloaded = fn;
    self->on_reloaded_arg = arg;
}

bool
pm_supervisor_shutting_down (const pm_supervisor_t *self)
{
    return self->shutting_down;
}

bool
pm_supervisor_finished (const pm_supervisor_t *self)
{
    return self->finished;
}

/* ------------------------------------------------------------------ */
/*  Transitions and actions                                            */
/* ------------------------------------------------------------------ */

//  Publishes every transition the service has made since the last call.
void
pm_sup_publish (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_state_t old_state, new_state;
    while (pm_service_take_transition (entry->svc, &old_state, &new_state)) {
        uint64_t seq = pm_service_next_seq (entry->svc);
        double now = pm_wall_clock ();
        pm_record_t record;
        pm_service_record (entry->svc, now, &record);
        //  The record reflects the service now; pin its state to this
        //  transition's, in case several happened in one event (a failure
        //  then its backoff: next_start belongs to the backoff only).
        record.state = new_state;
        if (new_state != PM_STATE_BACKOFF)
            record.next_start = 0;
        const char *error = pm_service_error (entry->svc);
        if (new_state == PM_STATE_FAILED && error)
            pm_log_warn ("%s: %s -> %s: %s", record.name,
                         pm_state_name (old_state), pm_state_name (new_state),
                         error);
        else
        if (record.pid)
            pm_log_info ("%s: %s -> %s (pid %lld)", record.name,
                         pm_state_name (old_state), pm_state_name (new_state),
                         (long long) record.pid);
        else
            pm_log_info ("%s: %s -> %s", record.name,
                         pm_state_name (old_state), pm_state_name (new_state));
        //  Held until the pass ends: the snapshot first (pm_sup_flush).
        s_outgoing_t *out = calloc (1, sizeof *out);
        assert (out);
        out->seq = seq;
        out->ts = now;
        out->old_state = old_state;
        out->new_state = new_state;
        out->record = record;   //  taken
        zlistx_add_end (self->outbox, out);
        self->dirty = true;
        entry->snap_stale = true;
    }
}

static void
s_outgoing_destroy (void **item_p)
{
    s_outgoing_t *out = (s_outgoing_t *) *item_p;
    if (out) {
        pm_record_clear (&out->record);
        free (out);
    }
    *item_p = NULL;
}

//  The snapshot of every live service in start order: records that changed
//  are encoded again, the others reused.
static void
s_write_snapshot (pm_supervisor_t *self)
{
    double now = pm_wall_clock ();
    const pm_snapshot_record_t **records = calloc (self->count + 1,
                                                   sizeof *records);
    assert (records);
    for (size_t k = 0; k < self->count; k++) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (entry->snap_stale || !entry->snap.data) {
            pm_record_t record;
            pm_service_record (entry->svc, now, &record);
            pm_snapshot_record_set (&entry->snap, &record);
            pm_record_clear (&record);
            entry->snap_stale = false;
        }
        records [k] = &entry->snap;
    }
    size_t leases_count = self->leases ? pm_leases_count (self->leases) : 0;
    int64_t *leases = calloc (leases_count + 1, sizeof *leases);
    assert (leases);
    if (leases_count)
        leases_count = pm_leases_list (self->leases, leases, leases_count);
    pm_snapshot_write (self->snapshot, records, self->count, leases,
                       leases_count);
    free (leases);
    free (records);
}

void
pm_sup_stale_all (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->total; i++)
        self->entries [i]->snap_stale = true;
    self->dirty = true;
}

void
pm_sup_queue_sweep (pm_supervisor_t *self, const char *service)
{
    if (self->sweeps_count == self->sweeps_cap) {
        self->sweeps_cap = self->sweeps_cap ? self->sweeps_cap * 2 : 8;
        self->sweeps = realloc (self->sweeps,
                                self->sweeps_cap * sizeof *self->sweeps);
        assert (self->sweeps);
    }
    self->sweeps [self->sweeps_count] = strdup (service);
    assert (self->sweeps [self->sweeps_count]);
    self->sweeps_count++;
}

//  True if a run of service exists (a newer one, started since it was
//  queued): its processes carry the same marks.
static bool
s_has_run (pm_supervisor_t *self, const char *service)
{
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (strcmp (pm_service_name (entry->svc), service) == 0
        &&  (pm_service_is_active (entry->svc) || entry->linger_pgid))
            return true;
    }
    return false;
}

//  One sweep for the services queued: the running services' own process
//  trees are not looked into, and each escapee's environment is read once.
static void
s_sweep (pm_supervisor_t *self)
{
    size_t count = 0;
    for (size_t k = 0; k < self->sweeps_count; k++)
        if (s_has_run (self, self->sweeps [k]))
            free (self->sweeps [k]);
        else
            self->sweeps [count++] = self->sweeps [k];
    self->sweeps_count = 0;
    if (count == 0 || !self->rundir) {
        for (size_t k = 0; k < count; k++)
            free (self->sweeps [k]);
        return;
    }
    pid_t *running = calloc (self->total + 1, sizeof *running);
    int *killed = calloc (count, sizeof *killed);
    assert (running && killed);
    size_t running_count = 0;
    for (size_t i = 0; i < self->total; i++) {
        pid_t pid = pm_service_pid (self->entries [i]->svc);
        if (pid > 0)
            running [running_count++] = pid;
    }
    pm_lifecycle_kill_marked (self->rundir,
                              (const char *const *) self->sweeps, count,
                              killed, true, running, running_count);
    for (size_t k = 0; k < count; k++) {
        if (killed [k])
            pm_log_warn ("%s: killed %d process%s that had left its process "
                         "group", self->sweeps [k], killed [k],
                         killed [k] == 1 ? "" : "es");
        free (self->sweeps [k]);
    }
    free (killed);
    free (running);
}

void
pm_sup_flush (pm_supervisor_t *self)
{
    //  Escapees first: a stop's reply says its run is gone, all of it.
    if (self->sweeps_count)
        s_sweep (self);
    if (self->dirty && self->snapshot)
        s_write_snapshot (self);
    self->dirty = false;
    s_outgoing_t *out;
    while ((out = (s_outgoing_t *) zlistx_detach (self->outbox, NULL))) {
        if (self->pub)
            pm_publish_state (self->pub, out->record.name, out->seq, out->ts,
                              out->old_state, out->new_state, &out->record);
        void *item = out;
        s_outgoing_destroy (&item);
    }
}

void
pm_supervisor_set_snapshot (pm_supervisor_t *self, pm_snapshot_t *snapshot)
{
    self->snapshot = snapshot;
    self->dirty = true;
}

void
pm_supervisor_set_leases (pm_supervisor_t *self, const pm_leases_t *leases)
{
    self->leases = leases;
    self->dirty = true;
}

void
pm_supervisor_set_lifecycle (pm_supervisor_t *self, pm_lifecycle_t *lifecycle)
{
    self->lifecycle = lifecycle;
}

void
pm_supervisor_leases_changed (pm_supervisor_t *self)
{
    self->dirty = true;
    pm_sup_flush (self);
}

/* ------------------------------------------------------------------ */
/*  The order rules' view of the entries                               */
/* ------------------------------------------------------------------ */

static void
s_order_get (const void *arg, size_t index, pm_order_item_t *item)
{
    const pm_supervisor_t *self = (const pm_supervisor_t *) arg;
    const pm_entry_t *entry = self->entries [index];
    const pm_config_service_t *spec = pm_service_spec (entry->svc);
    item->name = spec->name;
    item->state = pm_service_state (entry->svc);
    item->stop_queued = entry->stop_queued;
    item->start_after_stop = entry->start_after_stop;
    item->retired = entry->retired;
    item->error = pm_service_error (entry->svc);
    item->deps = spec->deps;
    item->deps_count = spec->deps_count;
}

static pm_order_view_t
s_view (const pm_supervisor_t *self)
{
    pm_order_view_t view = {
        s_order_get, self, self->count, self->total, self->graph
    };
    return view;
}

//  Asks entry to start, or, if it is on its way down, to start once down.
static void
s_request_start (pm_supervisor_t *self, pm_entry_t *entry)
{
    if (entry->stop_queued
    ||  pm_service_state (entry->svc) == PM_STATE_STOPPING) {
        entry->start_after_stop = true;
        return;
    }
    if (pm_service_request_start (entry->svc, pm_wall_clock ()) == PM_REQ_DONE)
        pm_sup_publish (self, entry);
}

void
pm_sup_start_with_deps (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_order_view_t view = s_view (self);
    size_t *plan = calloc (self->count + 1, sizeof *plan);
    assert (plan);
    size_t steps = pm_order_start_plan (&view, entry->index, plan);
    for (size_t k = 0; k < steps; k++)
        s_request_start (self, self->entries [plan [k]]);
    free (plan);
}

bool
pm_sup_deps_met (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_order_view_t view = s_view (self);
    char why [PM_TEXT_MAX];
    return pm_order_deps (&view, entry->index, why, sizeof why) == PM_DEPS_MET;
}

void
pm_sup_after_down (pm_supervisor_t *self, pm_entry_t *entry)
{
    if (pm_service_is_active (entry->svc) || !entry->start_after_stop)
        return;
    entry->start_after_stop = false;
    if (self->shutting_down)
        return;
    pm_sup_start_with_deps (self, entry);
}

void
pm_sup_do_stop (pm_supervisor_t *self, pm_entry_t *entry)
{
    entry->stop_queued = false;
    pm_sup_stop_probes (entry);
    pm_sup_cancel_backoff (self, entry);
    pm_action_t action;
    pm_req_result_t result = pm_service_request_stop (entry->svc, pm_wall_clock (),
                                                      &action);
    if (result == PM_REQ_DONE) {
        pm_sup_publish (self, entry);
        pm_sup_apply (self, entry, &action);
    }
    pm_sup_after_down (self, entry);
}

//  One pass over the services: spawn what may start, fail what never can,
//  stop what may stop.  Returns true if anything changed.
static bool
s_pump (pm_supervisor_t *self)
{
    bool changed = false;
    pm_order_view_t view = s_view (self);
    for (size_t k = 0; k < self->count; k++) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (pm_service_state (entry->svc) != PM_STATE_WAITING
        ||  entry->stop_queued)
            continue;
        char why [PM_TEXT_MAX];
        pm_deps_t deps = pm_order_deps (&view, entry->index, why, sizeof why);
        if (deps == PM_DEPS_MET) {
            pm_sup_spawn (self, entry);
            changed = true;
        }
        else
        if (deps == PM_DEPS_NEVER) {
            pm_service_fail_start (entry->svc, why, pm_wall_clock ());
            pm_sup_publish (self, entry);
            changed = true;
        }
    }
    //  Stops in the reverse of the start order, then the removed ones.
    for (size_t k = self->count; k-- > 0;) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (entry->stop_queued && !pm_order_stop_blocked (&view, entry->index)) {
            pm_sup_do_stop (self, entry);
            changed = true;
        }
    }
    for (size_t i = self->count; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (entry->stop_queued && !pm_order_stop_blocked (&view, i)) {
            pm_sup_do_stop (self, entry);
            changed = true;
        }
    }
    return changed;
}

//  Retired entries that are down for good are let go, with the old
//  configs no entry points into any more.
static void
s_sweep_retired (pm_supervisor_t *self)
{
    size_t kept = self->count;
    for (size_t i = self->count; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (!pm_service_is_active (entry->svc) && !entry->stop_queued
        &&  !entry->linger_pgid && !pm_service_group_pending (entry->svc)) {
            pm_log_info ("%s: removed", pm_service_name (entry->svc));
            s_remember_seqs (self, entry);
            pm_sup_entry_destroy (self, &entry);
        }
        else
            self->entries [kept++] = entry;
    }
    self->total = kept;
    pm_config_t *config = (pm_config_t *) zlistx_first (self->old_configs);
    while (config) {
        void *handle = zlistx_cursor (self->old_configs);
        pm_config_t *next = (pm_config_t *) zlistx_next (self->old_configs);
        bool used = false;
        for (size_t i = self->count; i < self->total && !used; i++)
            used = self->entries [i]->owner == config;
        if (!used) {
            zlistx_detach (self->old_configs, handle);
            pm_config_destroy (&config);
        }
        config = next;
    }
}

/* ------------------------------------------------------------------ */
/*  Shutdown completion                                                */
/* ------------------------------------------------------------------ */

static bool
s_all_down (pm_supervisor_t *self)
{
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        if (pm_service_is_active (entry->svc) || entry->stop_queued
        ||  entry->linger_pgid)
            return false;
    }
    return true;
}

static int
s_on_finish (zloop_t *loop, int timer_id, void *arg)
{
    return -1;                  //  ends zloop_start
}

static void
s_finish_shutdown (pm_supervisor_t *self)
{
    //  Every service is down and reaped: drain what they left in the
    //  pipes, then publish the last agent event, then answer everyone.
    for (size_t i = 0; i < self->total; i++)
        pm_logcap_drain (self->entries [i]->log);
    if (self->pub)
        pm_publish_agent (self->pub, "shutdown", "all services stopped");
    pm_sup_parked_end (self, PM_ERR_SHUTTING_DOWN, false);
    pm_sup_shutdowns_answer (self);
    pm_log_info ("shutdown complete");
    self->finished = true;
    int finish = pm_timer_add (self->loop, 1, s_on_finish, self);
    (void) finish;
}

/* ------------------------------------------------------------------ */
/*  Settling                                                           */
/* ------------------------------------------------------------------ */

static int
s_on_settle_timer (zloop_t *loop, int timer_id, void *arg)
{
    pm_supervisor_t *self = (pm_supervisor_t *) arg;
    self->settle_timer = -1;
    pm_sup_settle (self);
    return 0;
}

void
pm_sup_settle_soon (pm_supervisor_t *self)
{
    if (self->settle_timer == -1)
        self->settle_timer = pm_timer_add (self->loop, 1, s_on_settle_timer,
                                          self);
}

void
pm_sup_settle (pm_supervisor_t *self)
{
    pm_timer_end (self->loop, &self->settle_timer);
    if (self->settling || self->finished)
        return;
    self->settling = true;
    for (size_t i = 0; i < self->total; i++)
        pm_sup_take_verdict (self, self->entries [i]);
    //  What the pass has recorded so far goes out before the pump spawns
    //  (each spawn waits for its child's exec): an exit's event is not
    //  held up by the restart it causes.  The snapshot comes first, as
    //  for every flush.
    if (zlistx_size (self->outbox))
        pm_sup_flush (self);
    while (s_pump (self))
        ;
    s_sweep_retired (self);
    //  The pass's records are final: snapshot, then events, then replies.
    pm_sup_flush (self);
    pm_sup_parked_check (self);
    self->settling = false;
    if (self->shutting_down && s_all_down (self))
        s_finish_shutdown (self);
}

/* ------------------------------------------------------------------ */
/*  Start-up                                                           */
/* ------------------------------------------------------------------ */

void
pm_supervisor_autostart (pm_supervisor_t *self)
{
    for (size_t k = 0; k < self->count; k++) {
        pm_entry_t *entry = self->entries [self->config->start_order [k]];
        if (pm_service_spec (entry->svc)->autostart)
            pm_sup_start_with_deps (self, entry);
    }
    pm_sup_settle (self);
}
