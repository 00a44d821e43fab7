/*  commands.c - commands and parked requests of the supervisor

    Owns: what each command does to the services (start, stop, restart,
    signal, wait, status, logs, shutdown), and the requests parked until
    their condition holds, their timeouts, and their replies.  A parked
    request is re-judged every time the supervisor settles; it is answered
    when every target is done (reached, or can no longer get there), when
    its timeout passes, or at shutdown.

    Leaves to others: the judgement of a parked request and the text of
    its reply (waiter.c, pure), the order of starts and stops (order.c
    through supervisor.c), decoding and sending (control.c).
*/
#include "supervisor_int.h"
#include "agentlog.h"
#include "lease.h"
#include "logring.h"
#include "timer.h"
#include "waiter.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pm_parked_t {
    pm_want_t want;           /* what it waits for */
    void *token;              /* the client's envelope, owned until answered */
    size_t count;             /* targets */
    size_t *targets;          /* service indexes */
    char **notes;             /* per target, owned, or NULL entries */
    unsigned long *spawns0;   /* spawns of each target when asked */
    int timer;                /* timeout timer, -1 */
    pm_supervisor_t *sup;     /* back pointer, for the timer */
    pm_reply_t *extra;        /* reload: lists added to the reply, owned */
};

/* ------------------------------------------------------------------ */
/*  Parked requests                                                    */
/* ------------------------------------------------------------------ */

static void
s_parked_destroy (pm_parked_t **self_p)
{
    pm_parked_t *self = *self_p;
    if (!self)
        return;
    pm_timer_end (self->sup->loop, &self->timer);
    if (self->token && self->sup->free_fn)
        self->sup->free_fn (self->sup->reply_arg, self->token);
    for (size_t i = 0; i < self->count; i++)
        free (self->notes [i]);
    free (self->notes);
    free (self->targets);
    free (self->spawns0);
    pm_reply_destroy (&self->extra);
    free (self);
    *self_p = NULL;
}

//  The waiter's view of target k.
static void
s_target_get (const void *arg, size_t k, pm_waiter_target_t *target)
{
    const pm_parked_t *parked = (const pm_parked_t *) arg;
    const pm_entry_t *entry = parked->sup->entries [parked->targets [k]];
    target->name = pm_service_name (entry->svc);
    target->state = pm_service_state (entry->svc);
    target->stop_queued = entry->stop_queued;
    target->start_after_stop = entry->start_after_stop;
    target->spawns = pm_service_spawns (entry->svc);
    target->spawns0 = parked->spawns0 [k];
    target->error = pm_service_error (entry->svc);
    target->note = parked->notes [k];
}

static bool
s_done (const pm_parked_t *parked)
{
    return pm_waiter_done (&parked->want, s_target_get, parked, parked->count);
}

void
pm_sup_answer (pm_supervisor_t *self, void **token_p, const pm_reply_t *reply)
{
    //  What the reply says is already in the snapshot and the events.
    pm_sup_flush (self);
    if (*token_p && self->reply_fn)
        self->reply_fn (self->reply_arg, *token_p, reply);
    *token_p = NULL;
}

//  A reload's lists go into every answer it gets.
static void
s_add_extra (pm_reply_t *reply, const pm_parked_t *parked)
{
    if (!parked->extra || !parked->extra->has_reload)
        return;
    reply->has_reload = true;
    for (int list = 0; list < PM_RELOAD_COUNT_; list++)
        for (size_t i = 0; i < parked->extra->reload_count [list]; i++)
            pm_reply_add_reload (reply, (pm_reload_list_t) list,
                                 parked->extra->reload [list][i]);
}

//  Answers parked (code PM_OK: judged from the outcomes; else the error
//  of every target not done), then lets it go.
static void
s_answer (pm_supervisor_t *self, pm_parked_t **parked_p, pm_err_t code)
{
    pm_parked_t *parked = *parked_p;
    pm_reply_t *reply = pm_waiter_reply (&parked->want, s_target_get, parked,
                                         parked->count, code);
    s_add_extra (reply, parked);
    pm_sup_answer (self, &parked->token, reply);
    pm_reply_destroy (&reply);
    s_parked_destroy (parked_p);
}

//  What becomes of a request taken off its list: answered with code,
//  answered as lost to a reload, or let go unanswered.
typedef void (s_take_fn) (pm_supervisor_t *self, pm_parked_t **parked_p,
                          pm_err_t code);

static void
s_drop (pm_supervisor_t *self, pm_parked_t **parked_p, pm_err_t code)
{
    s_parked_destroy (parked_p);
}

static void
s_answer_lost (pm_supervisor_t *self, pm_parked_t **parked_p, pm_err_t code)
{
    pm_reply_t *reply = pm_reply_new ((*parked_p)->want.id);
    pm_reply_set_error (reply, PM_ERR_FAILED, "a reload removed a service "
                        "this request was waiting for");
    pm_sup_answer (self, &(*parked_p)->token, reply);
    pm_reply_destroy (&reply);
    s_parked_destroy (parked_p);
}

//  Detaches from list every request for which pick (NULL: all) is true,
//  and hands it to take.
static void
s_take_each (pm_supervisor_t *self, zlistx_t *list,
             bool (*pick) (pm_parked_t *parked, const void *arg),
             const void *arg, s_take_fn *take, pm_err_t code)
{
    pm_parked_t *parked = (pm_parked_t *) zlistx_first (list);
    while (parked) {
        void *handle = zlistx_cursor (list);
        //  zlistx_next moves the cursor past handle before it goes.
        pm_parked_t *next = (pm_parked_t *) zlistx_next (list);
        if (!pick || pick (parked, arg)) {
            zlistx_detach (list, handle);
            take (self, &parked, code);
        }
        parked = next;
    }
}

static bool
s_pick_done (pm_parked_t *parked, const void *arg)
{
    return s_done (parked);
}

static bool
s_pick_start (pm_parked_t *parked, const void *arg)
{
    return parked->want.wait != PM_WAIT_STOPPED;
}

void
pm_sup_parked_check (pm_supervisor_t *self)
{
    s_take_each (self, self->parked, s_pick_done, NULL, s_answer, PM_OK);
}

void
pm_sup_parked_end (pm_supervisor_t *self, pm_err_t code, bool starts_only)
{
    s_take_each (self, self->parked, starts_only ? s_pick_start : NULL, NULL,
                 s_answer, code);
}

void
pm_sup_shutdowns_answer (pm_supervisor_t *self)
{
    pm_parked_t *parked;
    while ((parked = (pm_parked_t *) zlistx_detach (self->shutdowns, NULL))) {
        pm_reply_t *reply = pm_reply_new (parked->want.id);
        reply->ok = true;
        pm_sup_answer (self, &parked->token, reply);
        pm_reply_destroy (&reply);
        s_parked_destroy (&parked);
    }
}

void
pm_sup_parked_free (pm_supervisor_t *self)
{
    s_take_each (self, self->parked, NULL, NULL, s_drop, PM_OK);
    s_take_each (self, self->shutdowns, NULL, NULL, s_drop, PM_OK);
}

//  A reload moved targets; the names in old_entries say where to.
typedef struct {
    const pm_config_t *next;
    pm_entry_t **old_entries;
    size_t old_count;
} s_remap_t;

//  Moves parked's targets to their new indexes; true if one is gone.
static bool
s_pick_lost (pm_parked_t *parked, const void *arg)
{
    const s_remap_t *remap = (const s_remap_t *) arg;
    bool lost = false;
    for (size_t k = 0; k < parked->count; k++) {
        size_t old = parked->targets [k];
        const char *name = old < remap->old_count
                         ? pm_service_name (remap->old_entries [old]->svc)
                         : NULL;
        int index = name ? pm_config_find (remap->next, name) : -1;
        if (index < 0)
            lost = true;
        else
            parked->targets [k] = (size_t) index;
    }
    return lost;
}

void
pm_sup_parked_remap (pm_supervisor_t *self, const pm_config_t *next,
                     pm_entry_t **old_entries, size_t old_count)
{
    s_remap_t remap = { next, old_entries, old_count };
    s_take_each (self, self->parked, s_pick_lost, &remap, s_answer_lost,
                 PM_ERR_FAILED);
}

static int
s_on_timeout (zloop_t *loop, int timer_id, void *arg)
{
    pm_parked_t *parked = (pm_parked_t *) arg;
    pm_supervisor_t *self = parked->sup;
    parked->timer = -1;
    void *handle = zlistx_find (self->parked, parked);
    if (handle) {
        zlistx_detach (self->parked, handle);
        s_answer (self, &parked, PM_ERR_TIMEOUT);
    }
    return 0;
}

pm_parked_t *
pm_sup_parked_new (pm_supervisor_t *self, const pm_request_t *request,
                   pm_wait_t wait, const size_t *targets, size_t count,
                   void *token)
{
    pm_parked_t *parked = calloc (1, sizeof *parked);
    assert (parked);
    parked->sup = self;
    parked->want.id = request->id;
    parked->want.cmd = request->cmd;
    parked->want.wait = wait;
    parked->want.wait_for = request->wait_for;
    parked->want.timeout = request->timeout;
    parked->token = token;
    parked->timer = -1;
    parked->count = count;
    parked->targets = calloc (count ? count : 1, sizeof *parked->targets);
    parked->notes = calloc (count ? count : 1, sizeof *parked->notes);
    parked->spawns0 = calloc (count ? count : 1, sizeof *parked->spawns0);
    assert (parked->targets && parked->notes && parked->spawns0);
    for (size_t k = 0; k < count; k++) {
        parked->targets [k] = targets [k];
        parked->spawns0 [k] = pm_service_spawns (self->entries [targets [k]]->svc);
    }
    return parked;
}

void
pm_sup_parked_set_extra (pm_parked_t *parked, pm_reply_t **extra_p)
{
    pm_reply_destroy (&parked->extra);
    parked->extra = *extra_p;
    *extra_p = NULL;
}

static void
s_note (pm_parked_t *parked, size_t k, const char *note)
{
    free (parked->notes [k]);
    parked->notes [k] = note ? strdup (note) : NULL;
}

void
pm_sup_park_or_answer (pm_supervisor_t *self, pm_parked_t *parked)
{
    pm_sup_settle (self);
    if (parked->want.wait == PM_WAIT_NONE) {
        //  Not waiting: report what was done and the states right now.
        pm_reply_t *reply = pm_waiter_reply_now (&parked->want, s_target_get,
                                                 parked, parked->count);
        pm_sup_answer (self, &parked->token, reply);
        pm_reply_destroy (&reply);
        s_parked_destroy (&parked);
        return;
    }
    if (s_done (parked)) {
        s_answer (self, &parked, PM_OK);
        return;
    }
    //  A bound on what clients can leave parked (a client that went away
    //  leaves its request behind until it settles).
    if (zlistx_size (self->parked) >= PM_SUP_WAITERS_MAX) {
        pm_reply_t *reply = pm_reply_new (parked->want.id);
        pm_reply_set_error (reply, PM_ERR_BUSY, "%d requests are already "
                            "waiting; try again later", PM_SUP_WAITERS_MAX);
        pm_sup_answer (self, &parked->token, reply);
        pm_reply_destroy (&reply);
        s_parked_destroy (&parked);
        return;
    }
    if (parked->want.timeout > 0) {
        size_t ms = (size_t) (parked->want.timeout * 1000.0 + 0.5);
        parked->timer = pm_timer_add (self->loop, ms, s_on_timeout, parked);
    }
    zlistx_add_end (self->parked, parked);
}

/* ------------------------------------------------------------------ */
/*  Commands                                                           */
/* ------------------------------------------------------------------ */


void
pm_supervisor_status (pm_supervisor_t *self, const size_t *targets,
                      size_t count, pm_reply_t *reply)
{
    double now = pm_wall_clock ();
    size_t total = count ? count : self->count;
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_record_t record;
        pm_service_record (self->entries [index]->svc, now, &record);
        pm_reply_add_service (reply, &record);
        pm_record_clear (&record);
    }
    pm_leases_to_reply (self->leases, reply);
    reply->ok = true;
}

void
pm_sup_refuse (pm_supervisor_t *self, uint64_t id, void *token, pm_err_t err,
          const char *message)
{
    pm_reply_t *reply = pm_reply_new (id);
    pm_reply_set_error (reply, err, "%s", message);
    pm_sup_answer (self, &token, reply);
    pm_reply_destroy (&reply);
}

//  A start or restart on request is a fresh start: now, with the policy's
//  count reset.
static void
s_fresh (pm_supervisor_t *self, pm_entry_t *entry)
{
    pm_state_t state = pm_service_state (entry->svc);
    if (state == PM_STATE_BACKOFF || state == PM_STATE_FAILED) {
        pm_sup_cancel_backoff (self, entry);
        pm_policy_reset (entry->policy);
    }
}

//  The request parked for a start or restart of targets, or NULL (and
//  token answered) while shutting down.
static pm_parked_t *
s_begin_start (pm_supervisor_t *self, const pm_request_t *request,
               const size_t *targets, size_t count, void *token)
{
    if (self->shutting_down) {
        pm_sup_refuse (self, request->id, token, PM_ERR_SHUTTING_DOWN,
                       request->cmd == PM_CMD_RESTART
                       ? "agent shutting down: not restarting anything"
                       : "agent shutting down: not starting anything");
        return NULL;
    }
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_RUNNING
                   : request->wait;
    return pm_sup_parked_new (self, request, wait, targets, count, token);
}

void
pm_supervisor_start (pm_supervisor_t *self, const pm_request_t *request,
                     const size_t *targets, size_t count, void *token)
{
    pm_parked_t *parked = s_begin_start (self, request, targets, count, token);
    if (!parked)
        return;
    for (size_t k = 0; k < count; k++) {
        pm_entry_t *entry = self->entries [targets [k]];
        pm_state_t state = pm_service_state (entry->svc);
        bool going_down = entry->stop_queued || state == PM_STATE_STOPPING;
        s_fresh (self, entry);
        if (state == PM_STATE_RUNNING && !going_down)
            s_note (parked, k, "already-running");
        else
        if ((state == PM_STATE_WAITING || state == PM_STATE_STARTING)
        &&  !going_down)
            s_note (parked, k, "already-starting");
        else
            pm_sup_start_with_deps (self, entry);
    }
    pm_sup_park_or_answer (self, parked);
}

//  Adds to set every target and, with dependents, whatever depends on them.
//  The services a stop or restart covers: the targets, then (with
//  dependents) every service that depends on one of them, in config order;
//  only_active leaves out dependents that are not up.  Returns a malloc'd
//  list of *total indexes.
static size_t *
s_cover (pm_supervisor_t *self, const size_t *targets, size_t count,
         bool dependents, bool only_active, size_t *total)
{
    bool *set = calloc (self->count + 1, sizeof *set);
    size_t *all = calloc (self->count + 1, sizeof *all);
    assert (set && all);
    *total = 0;
    for (size_t k = 0; k < count; k++) {
        all [(*total)++] = targets [k];
        if (dependents)
            pm_graph_mark_dependents (self->graph, targets [k], set);
    }
    for (size_t k = 0; k < count; k++)
        set [targets [k]] = false;      //  listed already
    for (size_t i = 0; i < self->count; i++)
        if (set [i] && (!only_active
                        || pm_service_is_active (self->entries [i]->svc)))
            all [(*total)++] = i;
    free (set);
    return all;
}

void
pm_supervisor_stop (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    pm_wait_t wait = request->wait == PM_WAIT_DEFAULT ? PM_WAIT_STOPPED
                   : request->wait;
    //  Report on every service stopped, targets first, then dependents.
    size_t total;
    size_t *all = s_cover (self, targets, count, request->with_dependents,
                           false, &total);
    pm_parked_t *parked = pm_sup_parked_new (self, request, wait, all, total, token);
    for (size_t k = 0; k < total; k++) {
        pm_entry_t *entry = self->entries [all [k]];
        entry->start_after_stop = false;
        if (k >= count)
            s_note (parked, k, "dependent");
        if (!pm_service_is_active (entry->svc))
            s_note (parked, k, "not-running");
        else
        if (pm_service_state (entry->svc) == PM_STATE_STOPPING)
            s_note (parked, k, "already-stopping");
        else
            entry->stop_queued = true;
    }
    free (all);
    pm_sup_park_or_answer (self, parked);
}

void
pm_supervisor_restart (pm_supervisor_t *self, const pm_request_t *request,
                       const size_t *targets, size_t count, void *token)
{
    //  Dependents that are not up stay as they are.
    size_t total;
    size_t *all = s_cover (self, targets, count, request->with_dependents,
                           true, &total);
    pm_parked_t *parked = s_begin_start (self, request, all, total, token);
    for (size_t k = 0; parked && k < total; k++) {
        pm_entry_t *entry = self->entries [all [k]];
        if (k >= count)
            s_note (parked, k, "dependent");
        pm_state_t state = pm_service_state (entry->svc);
        if (state == PM_STATE_STARTING || state == PM_STATE_RUNNING
        ||  state == PM_STATE_STOPPING) {
            if (state != PM_STATE_STOPPING)
                entry->stop_queued = true;
            entry->start_after_stop = true;
        }
        else {
            //  Not running: restart means start, and the note says so; one
            //  already waiting is on its way.
            s_note (parked, k, "not-running");
            s_fresh (self, entry);
            if (state != PM_STATE_WAITING)
                pm_sup_start_with_deps (self, entry);
        }
    }
    free (all);
    if (parked)
        pm_sup_park_or_answer (self, parked);
}

void
pm_supervisor_wait (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, void *token)
{
    //  PM_WAIT_RUNNING only so the waiter is not mistaken for "none".
    pm_parked_t *parked = pm_sup_parked_new (self, request, PM_WAIT_RUNNING,
                                       targets, count, token);
    pm_sup_park_or_answer (self, parked);
}

//  What a logs reply may spend on lines: the frame, less room for the
//  reply's own keys and, per service, its block's (a name of up to
//  PM_NAME_MAX bytes and five small fields).
#define S_REPLY_SLACK (16 * 1024)
#define S_BLOCK_COST (PM_NAME_MAX + 96)

//  The first seq of entry's lines that request asks for, with what is no
//  longer held noted in block; 0 when none is asked for.
static uint64_t
s_logs_start (const pm_request_t *request, const pm_logring_t *ring,
              uint64_t last, pm_logblock_t *block)
{
    if (request->has_since && request->since >= last)
        return 0;               //  nothing after it (also no wrap at 2^64-1)
    uint64_t start;
    if (request->has_since)
        start = request->since + 1;
    else {
        uint64_t tail = request->has_tail ? request->tail : 100;
        start = last >= tail ? last - tail + 1 : 1;
    }
    if (start == 0)
        start = 1;
    if (start > last)
        return 0;
    uint64_t first = pm_logring_first (ring);
    uint64_t held_from = first ? first : last + 1;
    if (start < held_from) {
        block->gone_from = start;
        block->gone_to = held_from - 1;
        start = held_from;
    }
    return start <= last ? start : 0;
}

//  What the lines from start to last would cost, stopping past cap or at
//  the protocol's 4096 elements per list.
static size_t
s_logs_want (const pm_logring_t *ring, uint64_t start, uint64_t last,
             size_t cap)
{
    size_t want = 0, lines = 0;
    for (uint64_t seq = start; start && seq <= last && want <= cap
                               && lines < PM_NAMES_MAX; seq++, lines++) {
        const pm_logline_t *line = pm_logring_get (ring, seq);
        if (!line)
            break;
        want += pm_line_encoded_size (line->size);
    }
    return want;
}

static int
s_compare_want (const void *a, const void *b, void *arg)
{
    const size_t *wants = (const size_t *) arg;
    size_t x = wants [*(const size_t *) a], y = wants [*(const size_t *) b];
    return (x > y) - (x < y);
}

//  Shares budget among count services wanting wants [k]: all they want if
//  it fits, else the smaller wants whole and the rest evenly, so no
//  service is cut while another leaves room unused.
static void
s_logs_share (const size_t *wants, size_t count, size_t budget,
              size_t *shares)
{
    size_t sum = 0;
    for (size_t k = 0; k < count; k++)
        sum += wants [k];
    if (sum <= budget) {
        memcpy (shares, wants, count * sizeof *shares);
        return;
    }
    size_t *order = calloc (count + 1, sizeof *order);
    assert (order);
    for (size_t k = 0; k < count; k++)
        order [k] = k;
    qsort_r (order, count, sizeof *order, s_compare_want, (void *) wants);
    size_t left = budget;
    for (size_t i = 0; i < count; i++) {
        size_t fair = left / (count - i);
        size_t k = order [i];
        shares [k] = wants [k] < fair ? wants [k] : fair;
        left -= shares [k];
    }
    free (order);
}

void
pm_supervisor_logs (pm_supervisor_t *self, const pm_request_t *request,
                    const size_t *targets, size_t count, pm_reply_t *reply)
{
    //  Replies fit the frame: each service gets what it asks for if all
    //  of it fits, else a fair share of the room (s_logs_share), and a
    //  service cut short says so (more) so the client asks again from
    //  where it stopped.
    size_t total = count ? count : self->count;
    size_t overhead = S_REPLY_SLACK + total * S_BLOCK_COST;
    size_t budget = PM_FRAME_MAX > overhead ? PM_FRAME_MAX - overhead : 0;
    uint64_t *starts = calloc (total + 1, sizeof *starts);
    size_t *wants = calloc (total + 1, sizeof *wants);
    size_t *shares = calloc (total + 1, sizeof *shares);
    assert (starts && wants && shares);
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_entry_t *entry = self->entries [index];
        const pm_logring_t *ring = pm_logcap_ring (entry->log);
        uint64_t last = pm_logcap_seq (entry->log);
        pm_logblock_t *block = pm_reply_add_logblock (
            reply, pm_service_name (entry->svc));
        block->first = pm_logring_first (ring);
        block->last = last;
        starts [k] = s_logs_start (request, ring, last, block);
        wants [k] = s_logs_want (ring, starts [k], last, budget);
    }
    s_logs_share (wants, total, budget, shares);
    size_t used_total = 0;
    for (size_t k = 0; k < total; k++) {
        size_t index = count ? targets [k] : self->config->start_order [k];
        pm_entry_t *entry = self->entries [index];
        const pm_logring_t *ring = pm_logcap_ring (entry->log);
        pm_logblock_t *block = &reply->logs [k];
        size_t used = 0;
        for (uint64_t seq = starts [k]; starts [k] && seq <= block->last;
             seq++) {
            const pm_logline_t *line = pm_logring_get (ring, seq);
            if (!line)
                break;
            //  Past its share, or at the protocol's 4096 elements per
            //  list, a block is cut (more); the first line of a reply
            //  always goes, so a client asking again always moves on (a
            //  line is at most 256 KiB, the reply at most 1 MiB).
            size_t cost = pm_line_encoded_size (line->size);
            if ((used + cost > shares [k] && used_total > 0)
            ||  block->lines_count == PM_NAMES_MAX) {
                block->more = true;
                break;
            }
            pm_logblock_add_line (block, line->seq, line->ts,
                                  (pm_stream_t) line->stream, line->partial,
                                  line->data, line->size);
            used += cost;
            used_total += cost;
        }
    }
    free (starts);
    free (wants);
    free (shares);
    reply->ok = true;
}

void
pm_supervisor_signal (pm_supervisor_t *self, const pm_request_t *request,
                      const size_t *targets, size_t count, pm_reply_t *reply)
{
    reply->ok = true;
    size_t failed = 0;
    char first [PM_TEXT_MAX] = "";
    const char *signame = pm_signal_name (request->signum);
    for (size_t k = 0; k < count; k++) {
        pm_entry_t *entry = self->entries [targets [k]];
        pid_t pid = pm_service_pid (entry->svc);
        const char *error = NULL;
        char text [256];
        if (pid <= 0)
            error = "not running";
        else
        if (kill (pid, request->signum) == -1) {
            snprintf (text, sizeof text, "kill: %s", strerror (errno));
            error = text;
        }
        else {
            pm_service_signal_sent (entry->svc, request->signum);
            pm_log_info ("%s: sent %s to pid %d", pm_service_name (entry->svc),
                         signame ? signame : "signal", (int) pid);
        }
        if (error && failed++ == 0)
            snprintf (first, sizeof first, "%s: %s",
                      pm_service_name (entry->svc), error);
        pm_reply_add_result (reply, pm_service_name (entry->svc), !error,
                             pm_service_state (entry->svc), NULL, error);
    }
    if (failed)
        pm_reply_set_error (reply, PM_ERR_NOT_RUNNING, "cannot signal %s",
                            first);
}

void
pm_supervisor_shutdown (pm_supervisor_t *self, bool force, uint64_t id,
                        void *token)
{
    if (token) {
        pm_request_t request = { .id = id, .cmd = PM_CMD_SHUTDOWN };
        pm_parked_t *parked = pm_sup_parked_new (self, &request, PM_WAIT_NONE,
                                                 NULL, 0, token);
        zlistx_add_end (self->shutdowns, parked);
        if (self->finished)
            pm_sup_shutdowns_answer (self);
    }
    if (self->shutting_down) {
        if (force && !self->forced) {
            self->forced = true;
            pm_log_warn ("shutdown asked again: killing what is left");
            for (size_t i = 0; i < self->total; i++) {
                pm_entry_t *entry = self->entries [i];
                pm_action_t action;
                pm_service_kill_now (entry->svc, &action);
                pm_sup_apply (self, entry, &action);
                if (entry->linger_pgid)
                    kill (-entry->linger_pgid, SIGKILL);
                //  Skip the ordering too: everything goes now.
                if (entry->stop_queued)
                    pm_sup_do_stop (self, entry);
                pm_service_kill_now (entry->svc, &action);
                pm_sup_apply (self, entry, &action);
            }
        }
        pm_sup_settle (self);
        return;
    }
    self->shutting_down = true;
    pm_log_info ("shutting down: stopping services in reverse order");
    pm_sup_flush (self);        //  events keep their order
    if (self->pub)
        pm_publish_agent (self->pub, "stopping", "shutdown requested");
    //  Parked starts cannot succeed any more: answer them now.
    pm_sup_parked_end (self, PM_ERR_SHUTTING_DOWN, true);
    for (size_t i = 0; i < self->total; i++) {
        pm_entry_t *entry = self->entries [i];
        entry->start_after_stop = false;
        if (pm_service_is_active (entry->svc)
        &&  pm_service_state (entry->svc) != PM_STATE_STOPPING)
            entry->stop_queued = true;
    }
    pm_sup_settle (self);
}
