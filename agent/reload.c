/*  reload.c - applying a new config file without restarting the agent

    Owns: `reload` and SIGHUP.  The file is read and validated first; an
    invalid file changes nothing.  Then it is compared with the running
    config service by service, and the difference is applied in one step
    of the event loop, so no other request ever sees half of it:

    - added: started (dependencies first) if autostart;
    - removed: stopped, dependents first (a removed service that a kept
      one still depends on makes the file invalid, so that cannot happen);
      its entry lives on, "retired", until its processes are gone;
    - changed (what runs: command or argv, working_dir, environment, the
      notify descriptor): restarted if it is up, else it starts with the
      new settings next time;
    - only depends_on changed: restarted only if its new dependencies are
      not met right now; else updated in place;
    - only other settings changed (stop signal and timeout, autostart,
      restart policy, logs, probes): applied in place, the process keeps
      running (probes restart their schedule with the new settings);
    - unchanged: untouched, same pid.
    Services that depend on a restarted service are restarted after it,
    honouring their conditions (the usual stop and start order rules).

    The answer waits until what was restarted or added is running (or
    failed), like `start`.  A reload while an earlier one's restarts are
    still coming up is applied too (each is one step, so none is ever half
    applied); the earlier one is answered when its own services settle,
    or at once with `failed` for a service the later one removed.  (A
    `busy` rule would let one reload whose services never come up lock
    out the reload that fixes them.)  During shutdown: `shutting-down`.
    The agent's name and endpoints cannot change without a restart.
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "lifecycle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    s_UNCHANGED = 0,
    s_UPDATED,                //  settings only: in place
    s_DEPS,                   //  depends_on changed (maybe other settings too)
    s_CHANGED                 //  how the process runs changed
} s_diff_t;

static bool
s_streq (const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp (a, b) == 0;
}

static bool
s_same_probe (const pm_config_probe_t *a, const pm_config_probe_t *b)
{
    return a->kind == b->kind && s_streq (a->command, b->command)
        && s_streq (a->host, b->host) && a->port == b->port
        && s_streq (a->path, b->path) && s_streq (a->regex, b->regex)
        && a->notify_fd == b->notify_fd
        && a->initial_delay == b->initial_delay && a->interval == b->interval
        && a->timeout == b->timeout && a->deadline == b->deadline
        && a->failures == b->failures;
}

static bool
s_same_deps (const pm_config_service_t *a, const pm_config_service_t *b)
{
    if (a->deps_count != b->deps_count)
        return false;
    for (size_t i = 0; i < a->deps_count; i++) {
        bool found = false;
        for (size_t j = 0; j < b->deps_count && !found; j++)
            found = s_streq (a->deps [i].name, b->deps [j].name)
                 && a->deps [i].cond == b->deps [j].cond;
        if (!found)
            return false;
    }
    return true;
}

static s_diff_t
s_compare (const pm_config_service_t *a, const pm_config_service_t *b)
{
    //  What the process is: any difference means a new process.
    bool same_process = s_streq (a->command, b->command)
                     && a->argc == b->argc
                     && s_streq (a->working_dir, b->working_dir)
                     && a->env_count == b->env_count
                     && (a->ready.kind == PM_PROBE_NOTIFY_FD)
                        == (b->ready.kind == PM_PROBE_NOTIFY_FD)
                     && a->ready.notify_fd == b->ready.notify_fd;
    for (size_t i = 0; same_process && i < a->argc; i++)
        same_process = s_streq (a->argv [i], b->argv [i]);
    for (size_t i = 0; same_process && i < a->env_count; i++)
        same_process = s_streq (a->env [i].key, b->env [i].key)
                    && s_streq (a->env [i].value, b->env [i].value);
    if (!same_process)
        return s_CHANGED;
    if (!s_same_deps (a, b))
        return s_DEPS;
    bool same = a->stop_signal == b->stop_signal
             && a->stop_timeout == b->stop_timeout
             && a->autostart == b->autostart && a->restart == b->restart
             && s_streq (a->log_file, b->log_file)
             && memcmp (&a->log, &b->log, sizeof a->log) == 0
             && s_same_probe (&a->ready, &b->ready)
             && s_same_probe (&a->alive, &b->alive)
             && a->backoff_initial == b->backoff_initial
             && a->backoff_max == b->backoff_max
             && a->max_restarts == b->max_restarts
             && a->restart_window == b->restart_window
             && a->min_uptime == b->min_uptime;
    return same ? s_UNCHANGED : s_UPDATED;
}

//  The agent's identity and endpoints are fixed for its life.
static int
s_check_identity (const pm_config_t *old, const pm_config_t *next,
                  char *err, size_t errlen)
{
    if (!s_streq (old->name, next->name)) {
        snprintf (err, errlen, "%s: agent.name cannot change while the agent "
                  "runs (its runtime directory is named after it): restart "
                  "the agent instead", next->path);
        return -1;
    }
    if (!s_streq (old->control, next->control)
    ||  !s_streq (old->events, next->events)
    ||  !s_streq (old->tcp_control, next->tcp_control)
    ||  !s_streq (old->tcp_events, next->tcp_events)) {
        snprintf (err, errlen, "%s: agent.control and agent.events cannot "
                  "change while the agent runs: restart the agent instead",
                  next->path);
        return -1;
    }
    if (!s_streq (old->broker, next->broker)
    ||  !s_streq (old->broker_server_key, next->broker_server_key)
    ||  !s_streq (old->broker_key, next->broker_key)) {
        snprintf (err, errlen, "%s: agent.broker cannot change while the "
                  "agent runs: restart the agent instead", next->path);
        return -1;
    }
    //  The keys in agent.curve.clients are read again on every reload;
    //  which files hold them is as fixed as the sockets they guard.
    if (!s_streq (old->curve_secret_key, next->curve_secret_key)
    ||  !s_streq (old->curve_clients, next->curve_clients)) {
        snprintf (err, errlen, "%s: agent.curve cannot change while the "
                  "agent runs (the files in its clients directory are read "
                  "again on every reload): restart the agent instead",
                  next->path);
        return -1;
    }
    return 0;
}

void
pm_supervisor_reload (pm_supervisor_t *self, uint64_t id, void *token)
{
    if (self->shutting_down) {
        pm_log_warn ("reload refused: the agent is shutting down");
        pm_sup_refuse (self, id, token, PM_ERR_SHUTTING_DOWN,
                       "agent shutting down: nothing reloaded");
        return;
    }
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *next = pm_config_load (self->config->path, err, sizeof err);
    if (next && s_check_identity (self->config, next, err, sizeof err) == -1)
        pm_config_destroy (&next);
    if (!next) {
        pm_log_warn ("reload refused, nothing changed: %s", err);
        pm_sup_refuse (self, id, token, PM_ERR_BAD_CONFIG, err);
        return;
    }

    //  1. Compare, service by service.
    pm_reply_t *lists = pm_reply_new (id);
    lists->has_reload = true;
    size_t old_count = self->count;
    pm_entry_t **old_entries = self->entries;
    size_t new_count = next->services_count;
    s_diff_t *diff = calloc (new_count + 1, sizeof *diff);
    int *from = calloc (new_count + 1, sizeof *from);
    bool *kept = calloc (old_count + 1, sizeof *kept);
    assert (diff && from && kept);
    for (size_t i = 0; i < new_count; i++) {
        from [i] = pm_config_find (self->config, next->services [i].name);
        if (from [i] >= 0) {
            kept [from [i]] = true;
            diff [i] = s_compare (&self->config->services [from [i]],
                                  &next->services [i]);
        }
    }
    //  2. New entries for added services (nothing is changed until all of
    //  them could open their log files).
    pm_entry_t **entries = calloc (new_count + (self->total - self->count)
                                   + old_count + 1, sizeof *entries);
    assert (entries);
    pm_config_t *old_config = self->config;
    self->config = next;        //  new entries belong to the new config
    //  A name added back while its removed run is still going down takes
    //  that entry back ("revived"): one entry per name, so one stream per
    //  name, and the new run starts once the old one is down.
    bool failed = false;
    bool *revived = calloc (self->total + 1, sizeof *revived);
    assert (revived);
    for (size_t i = 0; i < new_count && !failed; i++) {
        if (from [i] >= 0)
            continue;
        for (size_t r = self->count; r < self->total && !entries [i]; r++)
            if (!revived [r]
            &&  strcmp (pm_service_name (old_entries [r]->svc),
                        next->services [i].name) == 0) {
                revived [r] = true;
                entries [i] = old_entries [r];
            }
        if (entries [i])
            continue;
        entries [i] = pm_sup_entry_new (self, &next->services [i], i, err,
                                        sizeof err);
        failed = !entries [i];
    }
    if (failed) {
        for (size_t i = 0; i < new_count; i++)
            if (from [i] < 0 && entries [i] && !entries [i]->retired)
                pm_sup_entry_destroy (self, &entries [i]);
        free (revived);
        self->config = old_config;
        pm_config_destroy (&next);
        free (entries);
        free (diff);
        free (from);
        free (kept);
        pm_reply_destroy (&lists);
        pm_log_warn ("reload refused, nothing changed: %s", err);
        pm_sup_refuse (self, id, token, PM_ERR_BAD_CONFIG, err);
        return;
    }

    //  3. The swap: kept entries move to their new index and spec; removed
    //  ones are retired after the live ones; then the graph is rebuilt.
    for (size_t i = 0; i < new_count; i++) {
        if (from [i] < 0 && !entries [i]->retired) {
            pm_sup_entry_commit (self, entries [i]);
            continue;
        }
        pm_entry_t *entry = from [i] < 0 ? entries [i] : old_entries [from [i]];
        const pm_config_service_t *spec = &next->services [i];
        entry->retired = false;
        entry->index = i;
        entry->owner = next;
        pm_service_set_spec (entry->svc, spec);
        pm_policy_resize (entry->policy, spec->max_restarts);
        if (pm_logcap_update (entry->log, spec->log_file, &spec->log, err,
                              sizeof err) == -1)
            pm_log_warn ("%s: log settings not applied: %s", spec->name, err);
        entries [i] = entry;
    }
    size_t total = new_count;
    bool retiring = false;
    for (size_t i = 0; i < old_count; i++)
        if (!kept [i]) {
            pm_entry_t *entry = old_entries [i];
            entry->retired = true;
            entry->start_after_stop = false;
            pm_sup_cancel_backoff (self, entry);
            if (pm_service_is_active (entry->svc)
            &&  pm_service_state (entry->svc) != PM_STATE_STOPPING)
                entry->stop_queued = true;
            entries [total++] = entry;
            retiring = true;
            pm_reply_add_reload (lists, PM_RELOAD_REMOVED,
                                 pm_service_name (entry->svc));
        }
    for (size_t i = self->count; i < self->total; i++)
        if (!revived [i])
            entries [total++] = old_entries [i];   //  retired by earlier reloads
    free (revived);
    pm_sup_parked_remap (self, next, old_entries, old_count);
    self->entries = entries;
    self->count = new_count;
    self->total = total;
    free (old_entries);
    if (retiring)
        zlistx_add_end (self->old_configs, old_config);
    else
        pm_config_destroy (&old_config);
    pm_sup_build_graph (self);
    pm_sup_update_echo (self);
    pm_sup_stale_all (self);    //  the set of records and their specs moved
    //  Clients find the agent of this file by its identity in the record:
    //  an old identity only costs them a parse.
    const pm_file_id_t *file_id = next->has_file_id ? &next->file_id : NULL;
    if (self->lifecycle
    &&  pm_lifecycle_write_config (self->lifecycle, next->path, file_id) == -1)
        pm_log_warn ("cannot rewrite the config record: %s (clients parse "
                     "the config file to find the agent)", strerror (errno));
    if (self->on_reloaded)
        self->on_reloaded (self->on_reloaded_arg);

    //  4. What to restart: changed services that are up, services whose
    //  new dependencies are not met, then whatever depends on those.
    bool *restart = calloc (new_count + 1, sizeof *restart);
    assert (restart);
    //  Only a process that exists is restarted: one still waiting, or in
    //  backoff, starts with the new settings anyway, and one stopping was
    //  asked to stop.
    for (size_t i = 0; i < new_count; i++) {
        pm_entry_t *entry = entries [i];
        pm_state_t state = pm_service_state (entry->svc);
        bool up = state == PM_STATE_STARTING || state == PM_STATE_RUNNING;
        if (from [i] < 0 || !up || entry->stop_queued)
            continue;
        if (diff [i] == s_CHANGED
        ||  (diff [i] == s_DEPS && !pm_sup_deps_met (self, entry)))
            restart [i] = true;
    }
    for (size_t i = 0; i < new_count; i++)
        if (restart [i])
            pm_graph_mark_dependents (self->graph, i, restart);
    size_t *targets = calloc (new_count + 1, sizeof *targets);
    assert (targets);
    size_t count = 0;
    for (size_t k = 0; k < new_count; k++) {
        size_t i = next->start_order [k];
        pm_entry_t *entry = entries [i];
        const char *name = pm_service_name (entry->svc);
        if (from [i] < 0) {
            pm_reply_add_reload (lists, PM_RELOAD_ADDED, name);
            if (pm_service_spec (entry->svc)->autostart) {
                pm_sup_start_with_deps (self, entry);
                targets [count++] = i;
            }
            continue;
        }
        if (diff [i] == s_CHANGED)
            pm_reply_add_reload (lists, PM_RELOAD_CHANGED, name);
        pm_state_t state = pm_service_state (entry->svc);
        if (restart [i] && !entry->stop_queued
        &&  (state == PM_STATE_STARTING || state == PM_STATE_RUNNING)) {
            pm_reply_add_reload (lists, PM_RELOAD_RESTARTED, name);
            entry->stop_queued = true;
            entry->start_after_stop = true;
            targets [count++] = i;
        }
        else
        if (diff [i] == s_UPDATED || diff [i] == s_DEPS) {
            pm_reply_add_reload (lists, PM_RELOAD_UPDATED, name);
            pm_sup_restart_probes (self, entry);
        }
        else
        if (diff [i] == s_UNCHANGED)
            pm_reply_add_reload (lists, PM_RELOAD_UNCHANGED, name);
    }
    char summary [PM_TEXT_MAX];
    snprintf (summary, sizeof summary, "added %zu, removed %zu, changed %zu, "
              "restarted %zu, updated in place %zu, unchanged %zu",
              lists->reload_count [PM_RELOAD_ADDED],
              lists->reload_count [PM_RELOAD_REMOVED],
              lists->reload_count [PM_RELOAD_CHANGED],
              lists->reload_count [PM_RELOAD_RESTARTED],
              lists->reload_count [PM_RELOAD_UPDATED],
              lists->reload_count [PM_RELOAD_UNCHANGED]);
    pm_log_info ("reloaded %s: %s", next->path, summary);
    pm_sup_flush (self);        //  events keep their order
    if (self->pub)
        pm_publish_agent (self->pub, "reload", summary);

    //  5. The answer waits for what was (re)started, like `start`.
    pm_request_t request = { .id = id, .cmd = PM_CMD_RELOAD };
    pm_parked_t *parked = pm_sup_parked_new (self, &request, PM_WAIT_RUNNING,
                                             targets, count, token);
    pm_sup_parked_set_extra (parked, &lists);
    pm_sup_park_or_answer (self, parked);
    free (targets);
    free (restart);
    free (diff);
    free (from);
    free (kept);
}
