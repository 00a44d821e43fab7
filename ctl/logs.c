/*  logs.c - `pmctl logs` (see logs.h)

    Every service has a cursor: the seq of the last line printed (or
    reported lost).  A line is printed only when its seq is the cursor
    plus one, so nothing is printed twice or out of order, whatever
    arrives from where:
    - the tail: cursor = last - N, then the reply's lines;
    - a reply cut short (`more`): ask again with since = cursor;
    - a live line at cursor + 1: printed;  at or below the cursor: a
      duplicate (it came in a reply already), dropped;  beyond cursor + 1:
      the lines between were missed (joined late, dropped at a high water
      mark), fetched with since = cursor, then the live one;
    - what the agent no longer holds (`gone`) is reported with its exact
      range and the cursor moves past it.
    Services are independent: a gap in one fetches only that one.

    Without -f, lines after the first reply's `last` are left out, so
    "the last N lines" means those at the time of asking.
*/
#include "logs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "follow.h"
#include "lines.h"
#include "pmctl.h"
#include "registry.h"
#include "remote.h"
#include "render.h"

typedef struct {
    const char *name;             //  first: the registry's item
    uint64_t cursor;              //  last seq printed or reported lost
    uint64_t cap;                 //  tail: lines after this one wait
    pm_line_t *pending;           //  tail: lines to merge, owned
    size_t pending_count;
    size_t pending_cap;
    size_t next;                  //  tail: next pending line to print
    pm_run_t run;                 //  the run of its agent followed
} s_service_t;

typedef struct {
    const pm_cli_t *cli;
    pm_client_t *client;          //  owned
    pm_follow_t *follow;          //  owned, NULL without -f
    pm_lines_t *lines;            //  owned
    char **names;                 //  asked, without duplicates (not owned)
    size_t names_count;
    pm_registry_t *services;      //  known services, of s_service_t, owned
} s_logs_t;

//  How a fetched line is used.
typedef enum {
    s_PRINT = 0,                  //  printed at once
    s_COLLECT                     //  kept in pending, merged later
} s_mode_t;

static s_service_t *
s_find (s_logs_t *self, const char *name)
{
    return pm_registry_find (self->services, name);
}

//  The service called name, made (cursor 0) if new.
static s_service_t *
s_service (s_logs_t *self, const char *name)
{
    bool created;
    s_service_t *service = pm_registry_get (self->services, name, &created);
    if (created) {
        service->cap = UINT64_MAX;
        if (self->lines)
            pm_lines_widen (self->lines, name);
    }
    return service;
}

static void
s_free_pending (void *item)
{
    s_service_t *service = (s_service_t *) item;
    for (size_t i = 0; i < service->pending_count; i++)
        free (service->pending [i].line);
    free (service->pending);
    service->pending = NULL;
    service->pending_count = service->pending_cap = service->next = 0;
}

//  Takes line (its bytes move into pending) for a later merge.
static void
s_keep (s_service_t *service, pm_line_t *line)
{
    if (service->pending_count == service->pending_cap) {
        size_t cap = service->pending_cap ? service->pending_cap * 2 : 64;
        pm_line_t *grown = realloc (service->pending, cap * sizeof *grown);
        if (!grown)
            abort ();
        service->pending = grown;
        service->pending_cap = cap;
    }
    service->pending [service->pending_count++] = *line;
    line->line = NULL;
}

//  Sends request; returns the reply, or NULL after a failed exchange
//  (then *code says what it means, and with -f the session knows the
//  agent is gone).
static pm_reply_t *
s_call (s_logs_t *self, pm_request_t *request, int *code)
{
    request->id = pm_client_next_id (self->client);
    pm_reply_t *reply = NULL;
    char *frame = NULL;
    size_t size = 0;
    char err [PM_PATH_MAX + 256];
    pm_call_t call = pm_client_call (self->client, request,
                                     PM_REMOTE_ANSWER_MS, &reply, &frame,
                                     &size, err, sizeof err);
    free (frame);
    if (call == PM_CALL_REPLY)
        return reply;
    *code = PM_EXIT_UNREACHABLE;
    if (self->follow
    &&  (call == PM_CALL_NO_AGENT || call == PM_CALL_AGENT_EXITED))
        pm_follow_agent_gone (self->follow);
    else {
        if (self->lines)
            pm_lines_flush (self->lines);
        fprintf (stderr, "pmctl: %s\n", err);
        if (self->follow)
            pm_follow_stop (self->follow, PM_EXIT_UNREACHABLE);
    }
    return NULL;
}

//  Reports lines from..to of service lost, and moves its cursor past.
static void
s_lost (s_logs_t *self, s_service_t *service, uint64_t from, uint64_t to,
        pm_lines_loss_t loss)
{
    if (to <= service->cursor)
        return;
    if (from <= service->cursor)
        from = service->cursor + 1;
    pm_lines_gone (self->lines, service->name, from, to, loss);
    service->cursor = to;
}

//  Whether what instance sent (a live message, a reply's block) belongs
//  to the run of the service's agent followed.  A new run (the agent
//  restarted behind a broker) numbers its lines from 1: the cursor starts
//  again.  A run over: false, dropped.
static bool
s_same_run (s_logs_t *self, s_service_t *service, const char *instance)
{
    pm_run_change_t change = pm_run_see (&service->run, instance);
    if (change == PM_RUN_NEW) {
        if (self->lines)
            pm_lines_flush (self->lines);
        fprintf (stderr, "pmctl: the agent of %s restarted (instance %s): "
                 "its lines start again at 1\n", service->name, instance);
        fflush (stderr);
        service->cursor = 0;
    }
    return change != PM_RUN_OVER;
}

//  Uses what block says of service: lost lines, then every line past the
//  cursor and up to its cap.  Returns true if the cursor moved.
static bool
s_take (s_logs_t *self, s_service_t *service, pm_logblock_t *block,
        s_mode_t mode)
{
    if (!s_same_run (self, service, block->instance))
        return false;
    uint64_t before = service->cursor;
    if (block->gone_from && block->gone_to > service->cursor)
        s_lost (self, service, block->gone_from, block->gone_to,
                PM_LINES_GONE);
    for (size_t i = 0; i < block->lines_count; i++) {
        pm_line_t *line = &block->lines [i];
        if (line->seq <= service->cursor)
            continue;
        if (line->seq > service->cap)
            break;
        //  A reply's lines are consecutive; should one ever skip, say so
        //  rather than print around the hole.
        if (line->seq > service->cursor + 1)
            s_lost (self, service, service->cursor + 1, line->seq - 1,
                    PM_LINES_GONE);
        if (mode == s_COLLECT)
            s_keep (service, line);
        else
            pm_lines_print (self->lines, service->name, line);
        service->cursor = line->seq;
    }
    return service->cursor != before;
}

//  Fetches service's lines after its cursor, up to its cap, asking again
//  while replies are cut short.  Returns 0, or -1 after a failed
//  exchange (*code set).
static int
s_fetch (s_logs_t *self, s_service_t *service, s_mode_t mode, int *code)
{
    while (service->cursor < service->cap) {
        pm_request_t *request = pm_request_new (PM_CMD_LOGS, 0);
        pm_request_add_name (request, service->name);
        request->has_since = true;
        request->since = service->cursor;
        pm_reply_t *reply = s_call (self, request, code);
        pm_request_destroy (&request);
        if (!reply)
            return -1;
        if (!reply->ok || reply->logs_count != 1
        ||  strcmp (reply->logs [0].service, service->name) != 0) {
            pm_lines_flush (self->lines);
            fprintf (stderr, "pmctl: cannot fetch the lines of '%s': %s\n",
                     service->name, reply->message ? reply->message
                     : "unexpected reply");
            *code = reply->ok ? PM_EXIT_UNREACHABLE
                              : pm_render_exit_code (reply);
            pm_reply_destroy (&reply);
            if (self->follow)
                pm_follow_stop (self->follow, *code);
            return -1;
        }
        pm_logblock_t *block = &reply->logs [0];
        bool moved = s_take (self, service, block, mode);
        bool more = block->more;
        pm_reply_destroy (&reply);
        if (!more)
            break;
        //  Cut short without a single line: the next line alone is over
        //  what one reply may carry.  Say so and go on after it.
        if (!moved)
            s_lost (self, service, service->cursor + 1, service->cursor + 1,
                    PM_LINES_TOO_LARGE);
    }
    return 0;
}

//  Prints the collected lines of every service merged by time; each
//  service's own lines stay in seq order (a k-way merge, not a sort, so
//  a clock that stepped back cannot reorder a service).
static void
s_print_merged (s_logs_t *self)
{
    for (;;) {
        s_service_t *best = NULL;
        for (size_t i = 0; i < pm_registry_size (self->services); i++) {
            s_service_t *service = pm_registry_at (self->services, i);
            if (service->next == service->pending_count)
                continue;
            if (!best || service->pending [service->next].ts
                       < best->pending [best->next].ts)
                best = service;
        }
        if (!best)
            break;
        pm_lines_print (self->lines, best->name,
                        &best->pending [best->next++]);
    }
    for (size_t i = 0; i < pm_registry_size (self->services); i++)
        s_free_pending (pm_registry_at (self->services, i));
}

//  The first request: the last tail lines of the services asked.  An
//  unknown name fails it before anything is printed.  Returns the exit
//  code.
static int
s_tail (s_logs_t *self, uint64_t tail)
{
    const pm_cli_t *cli = self->cli;
    pm_request_t *request = pm_request_new (PM_CMD_LOGS, 0);
    for (size_t i = 0; i < self->names_count; i++)
        pm_request_add_name (request, self->names [i]);
    request->has_tail = true;
    request->tail = tail;
    int usage = pm_remote_add_agents (cli, request);
    if (usage) {
        pm_request_destroy (&request);
        return usage;
    }
    int code = PM_EXIT_OK;
    pm_reply_t *reply = s_call (self, request, &code);
    if (!reply) {
        pm_request_destroy (&request);
        return code;
    }
    if (!reply->ok) {
        code = pm_render_reply (stdout, stderr, request, reply,
                                pm_wall_clock (), false);
        pm_request_destroy (&request);
        pm_reply_destroy (&reply);
        return code;
    }
    pm_request_destroy (&request);
    bool color = !cli->no_color && !cli->json && isatty (STDOUT_FILENO)
              && !(getenv ("NO_COLOR") && *getenv ("NO_COLOR"));
    bool prefix = self->names_count > 1
               || (self->names_count == 0 && reply->logs_count > 1);
    self->lines = pm_lines_new (stdout, stderr, cli->json, color, prefix);
    for (size_t i = 0; i < reply->logs_count; i++)
        pm_lines_widen (self->lines, reply->logs [i].service);

    for (size_t i = 0; i < reply->logs_count; i++) {
        pm_logblock_t *block = &reply->logs [i];
        s_service_t *service = s_service (self, block->service);
        service->cap = block->last;
        service->cursor = block->last > tail ? block->last - tail : 0;
        s_take (self, service, block, s_COLLECT);
    }
    for (size_t i = 0; i < reply->logs_count && code == PM_EXIT_OK; i++) {
        if (!reply->logs [i].more)
            continue;
        s_service_t *service = s_find (self, reply->logs [i].service);
        if (s_fetch (self, service, s_COLLECT, &code) == -1)
            break;
    }
    pm_reply_destroy (&reply);
    s_print_merged (self);
    pm_lines_flush (self->lines);
    //  From now on, with -f, live lines may go past the tail's end.
    for (size_t i = 0; i < pm_registry_size (self->services); i++) {
        s_service_t *service = pm_registry_at (self->services, i);
        service->cap = UINT64_MAX;
    }
    return code;
}

//  -f: a live line.
static void
s_on_event (void *arg, const pm_event_t *event, const void *body,
            size_t size)
{
    s_logs_t *self = (s_logs_t *) arg;
    if (event->kind != PM_EVENT_LOG || !event->service)
        return;
    char key_buf [2 * PM_NAME_MAX + 2];
    const char *key = pm_follow_key (self->follow, event->service,
                                     event->agent, key_buf, sizeof key_buf);
    s_service_t *service = s_find (self, key);
    if (!service) {
        //  A service the agent did not have when we asked (a reload):
        //  followed from its first line, if all are followed.
        if (self->names_count > 0)
            return;
        service = s_service (self, key);
    }
    if (!s_same_run (self, service, event->instance))
        return;
    //  One message holds lines seq .. last; some may be printed already
    //  (from a reply), some may be missing before them (a gap).
    uint64_t last = event->seq + event->lines_count - 1;
    if (event->lines_count == 0 || last <= service->cursor)
        return;
    int code;
    if (event->seq > service->cursor + 1
    &&  s_fetch (self, service, s_PRINT, &code) == -1)
        return;
    if (last <= service->cursor)
        return;
    if (event->seq > service->cursor + 1)
        s_lost (self, service, service->cursor + 1, event->seq - 1,
                PM_LINES_GONE);
    size_t from = service->cursor >= event->seq
                ? (size_t) (service->cursor + 1 - event->seq) : 0;
    for (size_t i = from; i < event->lines_count; i++)
        pm_lines_print (self->lines, service->name, &event->lines [i]);
    service->cursor = last;
}

//  -f: the stream is quiet; is any service behind?  One request with
//  tail 0 gives every service's last seq without a line.
static void
s_on_quiet (void *arg, bool final)
{
    s_logs_t *self = (s_logs_t *) arg;
    pm_request_t *request = pm_request_new (PM_CMD_LOGS, 0);
    for (size_t i = 0; i < self->names_count; i++)
        pm_request_add_name (request, self->names [i]);
    request->has_tail = true;
    request->tail = 0;
    pm_remote_add_agents (self->cli, request);
    int code;
    pm_reply_t *reply = s_call (self, request, &code);
    pm_request_destroy (&request);
    if (!reply || !reply->ok) {
        pm_reply_destroy (&reply);
        return;
    }
    for (size_t i = 0; i < reply->logs_count; i++) {
        pm_logblock_t *block = &reply->logs [i];
        s_service_t *service = s_find (self, block->service);
        if (!service)
            service = s_service (self, block->service);
        if (block->last > service->cursor
        &&  s_fetch (self, service, s_PRINT, &code) == -1)
            break;
    }
    pm_reply_destroy (&reply);
}

//  The names asked, each once.
static void
s_set_names (s_logs_t *self, char **names, int count)
{
    self->names = calloc ((size_t) count + 1, sizeof *self->names);
    if (!self->names)
        abort ();
    for (int i = 0; i < count; i++) {
        bool seen = false;
        for (size_t k = 0; k < self->names_count && !seen; k++)
            seen = strcmp (self->names [k], names [i]) == 0;
        if (!seen)
            self->names [self->names_count++] = names [i];
    }
}

//  -f: subscribe (before the first fetch).  Returns the exit code.
static int
s_subscribe (s_logs_t *self)
{
    int code = pm_follow_attach (self->follow, self->client);
    if (code)
        return code;
    pm_follow_subscribe_names (self->follow, "log", self->names,
                               (int) self->names_count, self->cli->agents,
                               self->cli->agents_count);
    return pm_follow_connect (self->follow);
}

int
pm_logs_run (const pm_cli_t *cli, char **names, int count, uint64_t tail)
{
    s_logs_t self;
    memset (&self, 0, sizeof self);
    self.cli = cli;
    s_set_names (&self, names, count);
    self.services = pm_registry_new (sizeof (s_service_t), s_free_pending);
    int code = PM_EXIT_OK;
    char err [PM_PATH_MAX + 256];
    if (cli->follow) {
        //  Before any ZeroMQ socket: its threads inherit the signal mask.
        self.follow = pm_follow_new (err, sizeof err);
        if (!self.follow) {
            fprintf (stderr, "pmctl: %s\n", err);
            code = PM_EXIT_FAILED;
            goto done;
        }
    }
    self.client = pm_remote_client (cli, true);
    if (!self.client) {
        code = PM_EXIT_USAGE;
        goto done;
    }
    if (self.follow) {
        code = s_subscribe (&self);
        if (code)
            goto done;
    }
    code = s_tail (&self, tail);
    if (code || !self.follow)
        goto done;
    pm_follow_fns_t fns = { s_on_event, s_on_quiet };
    code = pm_follow_run (self.follow, &fns, &self);

done:
    pm_lines_destroy (&self.lines);
    pm_follow_destroy (&self.follow);
    pm_client_destroy (&self.client);
    pm_registry_destroy (&self.services);
    free (self.names);
    return code;
}
