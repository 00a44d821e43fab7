/*  events.c - `pmctl events` (see events.h)

    Each service has a cursor: the seq of the state it was last shown in.
    The snapshot sets it from the status records (record.seq is the seq
    of the service's last state event).  A live event at or below the
    cursor is older than what was shown, dropped; one past cursor + 1
    means transitions were lost: state events cannot be fetched again,
    so the loss is reported with its exact count, and the event itself
    (which carries the service's whole record) shows where it is now.

    Losses no later event reveals (a subscription not live yet, drops at
    the end of a burst) are found when the stream goes quiet: `status`
    says each service's seq.  A seq ahead of the cursor may still be an
    event on its way (the reply and the events travel on different
    sockets), so it only counts as lost if the next quiet check still
    finds the cursor behind; after the agent's shutdown event, which
    comes after every transition, one check is exact.
*/
#include "events.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "follow.h"
#include "pmctl.h"
#include "registry.h"
#include "remote.h"
#include "render.h"

typedef struct {
    const char *name;             //  first: the registry's item
    uint64_t cursor;              //  seq of the state last shown
    uint64_t suspect;             //  a seq a quiet check found ahead, or 0
    pm_run_t run;                 //  the run of its agent followed
} s_service_t;

typedef struct {
    const pm_cli_t *cli;
    pm_client_t *client;          //  owned
    pm_follow_t *follow;          //  owned, NULL without -f
    char **names;                 //  asked (not owned)
    int names_count;
    pm_registry_t *services;      //  of s_service_t, owned
    int width;                    //  longest service name
} s_events_t;

static s_service_t *
s_find (s_events_t *self, const char *name)
{
    return pm_registry_find (self->services, name);
}

//  The service called name, made (cursor 0) if new.
static s_service_t *
s_service (s_events_t *self, const char *name)
{
    bool created;
    s_service_t *service = pm_registry_get (self->services, name, &created);
    int len = (int) strlen (name);
    if (created && len > self->width)
        self->width = len;
    return service;
}

//  Whether what instance said (an event, a record) is of the run of the
//  service's agent followed: a new run (the agent restarted behind a
//  broker) numbers its events from 1, so the cursor starts again; what a
//  run that is over says is dropped.
static bool
s_same_run (s_service_t *service, const char *instance)
{
    pm_run_change_t change = pm_run_see (&service->run, instance);
    if (change == PM_RUN_NEW) {
        fflush (stdout);
        fprintf (stderr, "pmctl: the agent of %s restarted (instance %s)\n",
                 service->name, instance);
        fflush (stderr);
        service->cursor = 0;
        service->suspect = 0;
    }
    return change != PM_RUN_OVER;
}

//  "2025-11-26 06:00:01.456", local time.
static void
s_time (double ts, char *buf, size_t size)
{
    time_t seconds = (time_t) ts;
    int millis = (int) ((ts - (double) seconds) * 1000);
    if (millis < 0 || millis > 999)
        millis = 0;
    struct tm tm;
    if (!localtime_r (&seconds, &tm)) {
        snprintf (buf, size, "-");
        return;
    }
    char base [32];
    strftime (base, sizeof base, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf (buf, size, "%s.%03d", base, millis);
}

//  The end of a human line: " (pid N) [ERROR] seq=S".
static void
s_print_tail (const pm_record_t *record, pm_state_t state, uint64_t seq)
{
    if (record->pid > 0)
        printf (" (pid %lld)", (long long) record->pid);
    if ((state == PM_STATE_FAILED || state == PM_STATE_BACKOFF)
    &&  record->error)
        printf (" [%s]", record->error);
    printf (" seq=%llu\n", (unsigned long long) seq);
}

//  "TIME NAME STATE (pid N) [ERROR] seq=S": where a service is.
static void
s_print_record (s_events_t *self, const pm_record_t *record)
{
    char when [48];
    s_time (record->state_since, when, sizeof when);
    char key_buf [2 * PM_NAME_MAX + 2];
    const char *key = pm_follow_key (self->follow, record->name,
                                     record->agent, key_buf, sizeof key_buf);
    printf ("%s %-*s %s", when, self->width, key,
            pm_state_name (record->state));
    s_print_tail (record, record->state, record->seq);
}

//  One JSON object per record of a status reply frame:
//  {"kind": "status", "service", "seq", "ts", "state", "record"}.
static void
s_print_records_json (const pm_reply_t *reply, const char *frame,
                      size_t size)
{
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    const msgpack_object *services = NULL;
    if (msgpack_unpack_next (&result, frame, size, NULL)
        == MSGPACK_UNPACK_SUCCESS
    &&  result.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *map = &result.data.via.map;
        for (uint32_t i = 0; i < map->size; i++) {
            const msgpack_object *key = &map->ptr [i].key;
            if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == 8
            &&  memcmp (key->via.str.ptr, "services", 8) == 0
            &&  map->ptr [i].val.type == MSGPACK_OBJECT_ARRAY)
                services = &map->ptr [i].val;
        }
    }
    size_t count = services ? services->via.array.size : 0;
    if (count > reply->services_count)
        count = reply->services_count;
    for (size_t i = 0; i < count; i++) {
        const pm_record_t *record = &reply->services [i];
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer packer;
        msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&packer, 6);
        const char *keys [] = { "kind", "service", "seq", "ts", "state",
                                "record" };
        for (size_t k = 0; k < 6; k++) {
            msgpack_pack_str (&packer, strlen (keys [k]));
            msgpack_pack_str_body (&packer, keys [k], strlen (keys [k]));
            switch (k) {
                case 0:
                    msgpack_pack_str (&packer, 6);
                    msgpack_pack_str_body (&packer, "status", 6);
                    break;
                case 1:
                    msgpack_pack_str (&packer, strlen (record->name));
                    msgpack_pack_str_body (&packer, record->name,
                                           strlen (record->name));
                    break;
                case 2:
                    msgpack_pack_uint64 (&packer, record->seq);
                    break;
                case 3:
                    msgpack_pack_double (&packer, record->state_since);
                    break;
                case 4: {
                    const char *state = pm_state_name (record->state);
                    msgpack_pack_str (&packer, strlen (state));
                    msgpack_pack_str_body (&packer, state, strlen (state));
                    break;
                }
                default:
                    msgpack_pack_object (&packer,
                                         services->via.array.ptr [i]);
                    break;
            }
        }
        char *json = pm_json_from_msgpack (buffer.data, buffer.size);
        printf ("%s\n", json ? json : "null");
        free (json);
        msgpack_sbuffer_destroy (&buffer);
    }
    msgpack_unpacked_destroy (&result);
}

//  Reports that count transitions of service were lost.
static void
s_missed (s_events_t *self, const char *service, uint64_t count)
{
    if (self->cli->json) {
        char *name = NULL;
        //  The name is checked by the decoder; quote it through the one
        //  JSON writer anyway.
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer packer;
        msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
        msgpack_pack_str (&packer, strlen (service));
        msgpack_pack_str_body (&packer, service, strlen (service));
        name = pm_json_from_msgpack (buffer.data, buffer.size);
        printf ("{\"service\":%s,\"missed\":%llu}\n", name ? name : "null",
                (unsigned long long) count);
        free (name);
        msgpack_sbuffer_destroy (&buffer);
        return;
    }
    fflush (stdout);
    fprintf (stderr, "-- %s: %llu transition%s missed --\n", service,
             (unsigned long long) count, count == 1 ? "" : "s");
    fflush (stderr);
}

//  Sends a status request for the services asked; returns the reply
//  (and its frame), or NULL after a failed exchange (*code set).
static pm_reply_t *
s_status (s_events_t *self, char **frame_p, size_t *size_p, int *code)
{
    pm_request_t *request = pm_request_new (PM_CMD_STATUS,
                                            pm_client_next_id (self->client));
    for (int i = 0; i < self->names_count; i++)
        pm_request_add_name (request, self->names [i]);
    if (pm_remote_add_agents (self->cli, request)) {
        pm_request_destroy (&request);
        *code = PM_EXIT_USAGE;
        if (self->follow)
            pm_follow_stop (self->follow, PM_EXIT_USAGE);
        return NULL;
    }
    pm_reply_t *reply = NULL;
    char err [PM_PATH_MAX + 256];
    pm_call_t call = pm_client_call (self->client, request,
                                     PM_REMOTE_ANSWER_MS, &reply, frame_p,
                                     size_p, err, sizeof err);
    if (call == PM_CALL_REPLY && !reply->ok) {
        *code = pm_render_reply (stdout, stderr, request, reply,
                                 pm_wall_clock (), false);
        pm_reply_destroy (&reply);
        free (*frame_p);
        *frame_p = NULL;
    }
    pm_request_destroy (&request);
    if (call == PM_CALL_REPLY)
        return reply;
    *code = PM_EXIT_UNREACHABLE;
    if (self->follow
    &&  (call == PM_CALL_NO_AGENT || call == PM_CALL_AGENT_EXITED))
        pm_follow_agent_gone (self->follow);
    else {
        fflush (stdout);
        fprintf (stderr, "pmctl: %s\n", err);
        if (self->follow)
            pm_follow_stop (self->follow, PM_EXIT_UNREACHABLE);
    }
    return NULL;
}

//  The snapshot: one line (or object) per service.  Returns the exit
//  code.
static int
s_snapshot (s_events_t *self)
{
    char *frame = NULL;
    size_t size = 0;
    int code = PM_EXIT_OK;
    pm_reply_t *reply = s_status (self, &frame, &size, &code);
    if (!reply)
        return code;
    for (size_t i = 0; i < reply->services_count; i++) {
        char key_buf [2 * PM_NAME_MAX + 2];
        const char *key = pm_follow_key (self->follow,
                                         reply->services [i].name,
                                         reply->services [i].agent, key_buf,
                                         sizeof key_buf);
        s_service_t *service = s_service (self, key);
        s_same_run (service, reply->services [i].instance);
        service->cursor = reply->services [i].seq;
    }
    if (self->cli->json)
        s_print_records_json (reply, frame, size);
    else
        for (size_t i = 0; i < reply->services_count; i++)
            s_print_record (self, &reply->services [i]);
    fflush (stdout);
    pm_reply_destroy (&reply);
    free (frame);
    return PM_EXIT_OK;
}

//  -f: a live state event.
static void
s_on_event (void *arg, const pm_event_t *event, const void *body,
            size_t size)
{
    s_events_t *self = (s_events_t *) arg;
    if (event->kind != PM_EVENT_STATE || !event->service)
        return;
    char key_buf [2 * PM_NAME_MAX + 2];
    const char *key = pm_follow_key (self->follow, event->service,
                                     event->agent, key_buf, sizeof key_buf);
    s_service_t *service = s_find (self, key);
    if (!service) {
        if (self->names_count > 0)
            return;
        service = s_service (self, key);
    }
    if (!s_same_run (service, event->instance))
        return;
    if (event->seq <= service->cursor)
        return;                 //  the snapshot already showed it
    if (event->seq > service->cursor + 1)
        s_missed (self, service->name, event->seq - service->cursor - 1);
    service->cursor = event->seq;
    service->suspect = 0;
    if (self->cli->json) {
        char *json = pm_json_from_msgpack (body, size);
        printf ("%s\n", json ? json : "null");
        free (json);
        return;
    }
    char when [48];
    s_time (event->ts, when, sizeof when);
    printf ("%s %-*s %s -> %s", when, self->width, service->name,
            pm_state_name (event->old_state),
            pm_state_name (event->new_state));
    s_print_tail (&event->record, event->new_state, event->seq);
}

//  -f: quiet; is any service ahead of what was shown?
static void
s_on_quiet (void *arg, bool final)
{
    s_events_t *self = (s_events_t *) arg;
    char *frame = NULL;
    size_t size = 0;
    int code;
    pm_reply_t *reply = s_status (self, &frame, &size, &code);
    free (frame);
    if (!reply)
        return;
    bool again = false;
    for (size_t i = 0; i < reply->services_count; i++) {
        const pm_record_t *record = &reply->services [i];
        char key_buf [2 * PM_NAME_MAX + 2];
        const char *key = pm_follow_key (self->follow, record->name,
                                         record->agent, key_buf,
                                         sizeof key_buf);
        s_service_t *service = s_find (self, key);
        if (!service) {
            if (self->names_count > 0)
                continue;
            service = s_service (self, key);
        }
        if (!s_same_run (service, record->instance))
            continue;
        if (record->seq <= service->cursor) {
            service->suspect = 0;
            continue;
        }
        //  Ahead: lost, or still on its way.  Lost once a second look
        //  finds the cursor where the first one did (or after the last
        //  event, when nothing is on its way any more).
        if (!final && service->suspect == 0) {
            service->suspect = record->seq;
            again = true;
            continue;
        }
        s_missed (self, key, record->seq - service->cursor);
        service->cursor = record->seq;
        service->suspect = 0;
        if (self->cli->json) {
            //  The record alone is enough for a tool; see --help.
            continue;
        }
        s_print_record (self, record);
    }
    pm_reply_destroy (&reply);
    if (again && self->follow)
        pm_follow_check_again (self->follow);
}

int
pm_events_run (const pm_cli_t *cli, char **names, int count)
{
    s_events_t self;
    memset (&self, 0, sizeof self);
    self.cli = cli;
    self.names = names;
    self.names_count = count;
    self.services = pm_registry_new (sizeof (s_service_t), NULL);
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
        //  Subscribe first, then ask: nothing falls between the two.
        code = pm_follow_attach (self.follow, self.client);
        if (code)
            goto done;
        pm_follow_subscribe_names (self.follow, "state", names, count,
                                   cli->agents, cli->agents_count);
        code = pm_follow_connect (self.follow);
        if (code)
            goto done;
    }
    code = s_snapshot (&self);
    if (code || !self.follow)
        goto done;
    pm_follow_fns_t fns = { s_on_event, s_on_quiet };
    code = pm_follow_run (self.follow, &fns, &self);

done:
    fflush (stdout);
    pm_follow_destroy (&self.follow);
    pm_client_destroy (&self.client);
    pm_registry_destroy (&self.services);
    return code;
}
