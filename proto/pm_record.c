/*  pm_record.c - status records and published messages on the wire (see
    pm_proto.h)

    Owns: pm_record_t (clear, copy, and its map form, which status replies
    and state events share), pm_event_t with its encoding and validating
    decoding, and the topic strings subscribers filter on.

    Leaves to others: requests and replies (pm_msg.c), frame checks and
    field helpers (pm_frame.c), sequence numbering and publishing (the
    agent's publish.c).
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BIT(n) (1u << (n))

//  Packs text cut to max bytes, at a UTF-8 character boundary, so that an
//  over-long error or command never makes a record undecodable.
static void
s_pack_text (msgpack_packer *pk, const char *text, size_t max, bool nullable)
{
    if (!text) {
        if (nullable)
            msgpack_pack_nil (pk);
        else
            pm_pack_str (pk, "");
        return;
    }
    size_t len = strlen (text);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) text [len] & 0xc0) == 0x80)
            len--;
    }
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

static void
s_pack_bool (msgpack_packer *pk, bool value)
{
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

/* ------------------------------------------------------------------ */
/*  Records                                                            */
/* ------------------------------------------------------------------ */

void
pm_record_clear (pm_record_t *self)
{
    if (!self)
        return;
    free (self->name);
    free (self->signal);
    free (self->error);
    free (self->command);
    free (self->agent);
    free (self->instance);
    for (size_t i = 0; i < self->deps_count; i++)
        free (self->deps [i].name);
    free (self->deps);
    memset (self, 0, sizeof *self);
}

void
pm_record_copy (pm_record_t *dst, const pm_record_t *src)
{
    *dst = *src;
    dst->name = pm_strdup (src->name);
    dst->signal = pm_strdup (src->signal);
    dst->error = pm_strdup (src->error);
    dst->command = pm_strdup (src->command);
    dst->agent = pm_strdup (src->agent);
    dst->instance = pm_strdup (src->instance);
    dst->deps = NULL;
    if (src->deps_count) {
        dst->deps = calloc (src->deps_count, sizeof *dst->deps);
        if (!dst->deps)
            abort ();
        for (size_t i = 0; i < src->deps_count; i++) {
            dst->deps [i].name = pm_strdup (src->deps [i].name);
            dst->deps [i].cond = src->deps [i].cond;
        }
    }
}

//  Record keys, in the order they are packed.
enum {
    S_REC_NAME = 0,
    S_REC_STATE,
    S_REC_PID,
    S_REC_STARTED_AT,
    S_REC_STATE_SINCE,
    S_REC_UPTIME,
    S_REC_RESTARTS,
    S_REC_EXIT_CODE,
    S_REC_SIGNAL,
    S_REC_READY,
    S_REC_ERROR,
    S_REC_DEPENDS_ON,
    S_REC_COMMAND,
    S_REC_SEQ,
    S_REC_NEXT_START,
    S_REC_AGENT,
    S_REC_INSTANCE,
    S_REC_COUNT_
};

static const char *const s_rec_keys [S_REC_COUNT_] = {
    "name", "state", "pid", "started_at", "state_since", "uptime",
    "restarts", "exit_code", "signal", "ready", "error", "depends_on",
    "command", "seq", "next_start", "agent", "instance"
};

void
pm_record_pack (msgpack_packer *pk, const pm_record_t *record)
{
    msgpack_pack_map (pk, S_REC_COUNT_ - (record->agent == NULL)
                          - (record->instance == NULL));
    pm_pack_str (pk, "name");
    s_pack_text (pk, record->name, PM_TARGET_MAX, false);
    pm_pack_str (pk, "state");
    pm_pack_str (pk, pm_state_name (record->state));
    pm_pack_str (pk, "pid");
    if (record->pid > 0)
        msgpack_pack_int64 (pk, record->pid);
    else
        msgpack_pack_nil (pk);
    pm_pack_str (pk, "started_at");
    if (record->started_at != 0)
        msgpack_pack_double (pk, record->started_at);
    else
        msgpack_pack_nil (pk);
    pm_pack_str (pk, "state_since");
    msgpack_pack_double (pk, record->state_since);
    pm_pack_str (pk, "uptime");
    if (record->uptime >= 0)
        msgpack_pack_double (pk, record->uptime);
    else
        msgpack_pack_nil (pk);
    pm_pack_str (pk, "restarts");
    msgpack_pack_uint64 (pk, record->restarts);
    pm_pack_str (pk, "exit_code");
    if (record->has_exit_code)
        msgpack_pack_int64 (pk, record->exit_code);
    else
        msgpack_pack_nil (pk);
    pm_pack_str (pk, "signal");
    s_pack_text (pk, record->signal, PM_NAME_MAX, true);
    pm_pack_str (pk, "ready");
    s_pack_bool (pk, record->ready);
    pm_pack_str (pk, "error");
    s_pack_text (pk, record->error, PM_TEXT_MAX, true);
    pm_pack_str (pk, "depends_on");
    msgpack_pack_map (pk, record->deps_count);
    for (size_t i = 0; i < record->deps_count; i++) {
        s_pack_text (pk, record->deps [i].name, PM_NAME_MAX, false);
        pm_pack_str (pk, pm_cond_name (record->deps [i].cond));
    }
    pm_pack_str (pk, "command");
    s_pack_text (pk, record->command, PM_TEXT_MAX, false);
    pm_pack_str (pk, "seq");
    msgpack_pack_uint64 (pk, record->seq);
    pm_pack_str (pk, "next_start");
    if (record->next_start != 0)
        msgpack_pack_double (pk, record->next_start);
    else
        msgpack_pack_nil (pk);
    if (record->agent) {
        pm_pack_str (pk, "agent");
        s_pack_text (pk, record->agent, PM_NAME_MAX, false);
    }
    if (record->instance) {
        pm_pack_str (pk, "instance");
        s_pack_text (pk, record->instance, PM_INSTANCE_MAX, false);
    }
}

static int
s_decode_enum (pm_decoder_t *dec, const msgpack_object *obj,
               const char *path, const char *what,
               int (*parse) (const char *, int *), int *value)
{
    char text [32];
    if (obj->type != MSGPACK_OBJECT_STR || obj->via.str.size == 0
    ||  obj->via.str.size >= sizeof text
    ||  memchr (obj->via.str.ptr, 0, obj->via.str.size))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected %s", path, what);
    memcpy (text, obj->via.str.ptr, obj->via.str.size);
    text [obj->via.str.size] = 0;
    if (parse (text, value))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected %s", path, what);
    return 0;
}

//  Adapters from the typed parsers to s_decode_enum's int.
static int
s_parse_state (const char *text, int *value)
{
    pm_state_t state;
    if (pm_state_parse (text, &state))
        return -1;
    *value = (int) state;
    return 0;
}

static int
s_parse_cond (const char *text, int *value)
{
    pm_cond_t cond;
    if (pm_cond_parse (text, &cond))
        return -1;
    *value = (int) cond;
    return 0;
}

static int
s_parse_stream (const char *text, int *value)
{
    pm_stream_t stream;
    if (pm_stream_parse (text, &stream))
        return -1;
    *value = (int) stream;
    return 0;
}

static int
s_decode_deps (pm_decoder_t *dec, const msgpack_object *obj,
               const char *path, pm_record_t *record)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a map", path);
    uint32_t count = obj->via.map.size;
    if (count > PM_NAMES_MAX)
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "%s: %u entries, over the limit of %d",
                                path, (unsigned) count, PM_NAMES_MAX);
    if (count == 0)
        return 0;
    record->deps = calloc (count, sizeof *record->deps);
    if (!record->deps)
        abort ();
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        char where [256];
        snprintf (where, sizeof where, "%s key %u", path, (unsigned) i);
        pm_dep_t *dep = &record->deps [i];
        if (pm_decode_string (dec, key, where, 1, PM_NAME_MAX, false,
                              &dep->name))
            return -1;
        record->deps_count++;
        char shown [48];
        pm_key_text (key, shown, sizeof shown);
        snprintf (where, sizeof where, "%s.%s", path, shown);
        int cond = 0;
        if (s_decode_enum (dec, &obj->via.map.ptr [i].val, where,
                           "\"started\", \"ready\" or \"completed\"",
                           s_parse_cond, &cond))
            return -1;
        dep->cond = (pm_cond_t) cond;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp (record->deps [j].name, dep->name) == 0)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s: given twice", where);
    }
    return 0;
}

static int
s_decode_record_field (pm_decoder_t *dec, int field,
                       const msgpack_object *val, const char *path,
                       pm_record_t *record)
{
    bool nil = val->type == MSGPACK_OBJECT_NIL;
    int64_t number = 0;
    int value = 0;
    switch (field) {
        case S_REC_NAME:
            return pm_decode_string (dec, val, path, 1, PM_TARGET_MAX, false,
                                     &record->name);
        case S_REC_STATE:
            if (s_decode_enum (dec, val, path, "a state name", s_parse_state,
                               &value))
                return -1;
            record->state = (pm_state_t) value;
            return 0;
        case S_REC_PID:
            if (nil)
                return 0;
            if (pm_decode_int (dec, val, path, 0, INT_MAX,
                               "a process id (integer > 0) or nil", &number))
                return -1;
            record->pid = number;
            return 0;
        case S_REC_STARTED_AT:
            return nil ? 0 : pm_decode_number (dec, val, path, 0,
                                               &record->started_at);
        case S_REC_STATE_SINCE:
            return pm_decode_number (dec, val, path, 0, &record->state_since);
        case S_REC_UPTIME:
            return nil ? 0 : pm_decode_number (dec, val, path, 0,
                                               &record->uptime);
        case S_REC_RESTARTS:
            return pm_decode_uint (dec, val, path, &record->restarts);
        case S_REC_EXIT_CODE:
            if (nil)
                return 0;
            if (pm_decode_int (dec, val, path, INT_MIN, INT_MAX,
                               "an integer or nil", &number))
                return -1;
            record->has_exit_code = true;
            record->exit_code = (int) number;
            return 0;
        case S_REC_SIGNAL:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, true,
                                     &record->signal);
        case S_REC_READY:
            return pm_decode_bool (dec, val, path, &record->ready);
        case S_REC_ERROR:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, true,
                                     &record->error);
        case S_REC_DEPENDS_ON:
            return s_decode_deps (dec, val, path, record);
        case S_REC_COMMAND:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, false,
                                     &record->command);
        case S_REC_SEQ:
            return pm_decode_uint (dec, val, path, &record->seq);
        case S_REC_NEXT_START:
            return nil ? 0 : pm_decode_number (dec, val, path, 0,
                                               &record->next_start);
        case S_REC_AGENT:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, false,
                                     &record->agent);
        case S_REC_INSTANCE:
            return pm_decode_string (dec, val, path, 1, PM_INSTANCE_MAX,
                                     false, &record->instance);
    }
    return 0;
}

int
pm_record_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                  const char *path, pm_record_t *record)
{
    memset (record, 0, sizeof *record);
    record->uptime = -1;            //  nil until the record says otherwise
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a map", path);
    unsigned seen = 0;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr [i];
        //  Our encoder writes the keys in table order: try that first.
        int field = i < S_REC_COUNT_ && pm_key_is (&kv->key, s_rec_keys [i])
                  ? (int) i : 0;
        while (field < S_REC_COUNT_
           && !pm_key_is (&kv->key, s_rec_keys [field]))
            field++;
        if (field == S_REC_COUNT_)
            continue;               //  a key from a later version
        //  "path.key", joined by hand: this runs for every field of every
        //  record (a status of 1,000 services, a snapshot read).
        char where [160];
        size_t path_len = strlen (path), key_len = strlen (s_rec_keys [field]);
        if (path_len + key_len + 2 > sizeof where)
            path_len = sizeof where - key_len - 2;
        memcpy (where, path, path_len);
        where [path_len] = '.';
        memcpy (where + path_len + 1, s_rec_keys [field], key_len + 1);
        if (seen & S_BIT (field))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "%s: given twice", where);
        seen |= S_BIT (field);
        if (s_decode_record_field (dec, field, &kv->val, where, record))
            return -1;
    }
    if (!(seen & S_BIT (S_REC_NAME)))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s.name: required",
                                path);
    if (!(seen & S_BIT (S_REC_STATE)))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s.state: required", path);
    if (!record->command)
        record->command = pm_strdup ("");
    return 0;
}

/* ------------------------------------------------------------------ */
/*  Events                                                             */
/* ------------------------------------------------------------------ */

static const char *const s_kinds [] = { "state", "log", "agent" };

pm_event_t *
pm_event_new (pm_event_kind_t kind)
{
    pm_event_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->kind = kind;
    self->record.uptime = -1;
    return self;
}

void
pm_event_destroy (pm_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_event_t *self = *self_p;
    free (self->agent);
    free (self->instance);
    free (self->service);
    pm_record_clear (&self->record);
    for (size_t i = 0; i < self->lines_count; i++)
        free (self->lines [i].line);
    free (self->lines);
    free (self->event);
    free (self->message);
    free (self);
    *self_p = NULL;
}

//  Packs event with pk; -1 if it is not one that can be encoded.
static int
s_event_pack (const pm_event_t *self, msgpack_packer *pk)
{
    if (!self || (unsigned) self->kind > PM_EVENT_AGENT)
        return -1;
    size_t partials = 0;
    if (self->kind == PM_EVENT_LOG) {
        if (self->lines_count == 0 || self->lines_count > UINT32_MAX)
            return -1;
        for (size_t i = 0; i < self->lines_count; i++) {
            if (self->lines [i].line_size && !self->lines [i].line)
                return -1;
            partials += self->lines [i].partial;
        }
    }
    size_t fields = 5 + (self->instance != NULL);   //  v, kind, seq, ts,
                                                    //  agent, instance
    if (self->kind == PM_EVENT_STATE)
        fields += 4;                //  service, old, new, record
    else
    if (self->kind == PM_EVENT_LOG)
        fields += 3 + (partials > 0);   //  service, stream, lines, partial
    else
        fields += 1 + (self->message != NULL);  //  event, message

    msgpack_pack_map (pk, fields);
    pm_pack_str (pk, "v");
    msgpack_pack_uint64 (pk, PM_PROTOCOL_VERSION);
    pm_pack_str (pk, "kind");
    pm_pack_str (pk, s_kinds [self->kind]);
    pm_pack_str (pk, "seq");
    msgpack_pack_uint64 (pk, self->seq);
    pm_pack_str (pk, "ts");
    msgpack_pack_double (pk, self->ts);
    pm_pack_str (pk, "agent");
    s_pack_text (pk, self->agent, PM_NAME_MAX, false);
    if (self->instance) {
        pm_pack_str (pk, "instance");
        s_pack_text (pk, self->instance, PM_INSTANCE_MAX, false);
    }
    switch (self->kind) {
        case PM_EVENT_STATE:
            pm_pack_str (pk, "service");
            s_pack_text (pk, self->service, PM_NAME_MAX, false);
            pm_pack_str (pk, "old");
            pm_pack_str (pk, pm_state_name (self->old_state));
            pm_pack_str (pk, "new");
            pm_pack_str (pk, pm_state_name (self->new_state));
            pm_pack_str (pk, "record");
            pm_record_pack (pk, &self->record);
            break;
        case PM_EVENT_LOG: {
            pm_pack_str (pk, "service");
            s_pack_text (pk, self->service, PM_NAME_MAX, false);
            pm_pack_str (pk, "stream");
            pm_pack_str (pk, pm_stream_name (self->stream));
            pm_pack_str (pk, "lines");
            msgpack_pack_array (pk, (uint32_t) self->lines_count);
            for (size_t i = 0; i < self->lines_count; i++)
                pm_pack_line (pk, self->lines [i].line,
                              self->lines [i].line_size);
            if (partials) {
                pm_pack_str (pk, "partial");
                msgpack_pack_array (pk, (uint32_t) partials);
                for (size_t i = 0; i < self->lines_count; i++)
                    if (self->lines [i].partial)
                        msgpack_pack_uint64 (pk, i);
            }
            break;
        }
        case PM_EVENT_AGENT:
            pm_pack_str (pk, "event");
            s_pack_text (pk, self->event, PM_NAME_MAX, false);
            if (self->message) {
                pm_pack_str (pk, "message");
                s_pack_text (pk, self->message, PM_TEXT_MAX, false);
            }
            break;
    }
    return 0;
}

int
pm_event_encode (const pm_event_t *self, char **data, size_t *size)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    pm_packer_init (&pk, &sbuf);
    if (s_event_pack (self, &pk) == -1) {
        msgpack_sbuffer_destroy (&sbuf);
        return -1;
    }
    return pm_pack_finish (&sbuf, data, size);
}

struct pm_buffer_t {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
};

pm_buffer_t *
pm_buffer_new (void)
{
    pm_buffer_t *self = pm_alloc (1, sizeof *self);
    pm_packer_init (&self->pk, &self->sbuf);
    return self;
}

void
pm_buffer_destroy (pm_buffer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_sbuffer_destroy (&(*self_p)->sbuf);
    free (*self_p);
    *self_p = NULL;
}

const char *
pm_buffer_data (const pm_buffer_t *self)
{
    return self->sbuf.data;
}

size_t
pm_buffer_size (const pm_buffer_t *self)
{
    return self->sbuf.size;
}

int
pm_event_encode_to (const pm_event_t *self, pm_buffer_t *buffer)
{
    //  The buffer's memory is kept from one message to the next.
    msgpack_sbuffer_clear (&buffer->sbuf);
    if (s_event_pack (self, &buffer->pk) == -1
    ||  buffer->sbuf.size > PM_FRAME_MAX) {
        msgpack_sbuffer_clear (&buffer->sbuf);
        return -1;
    }
    return 0;
}


//  Event keys; each kind requires some of them and skips the others.
enum {
    S_EV_KIND = 0,
    S_EV_SEQ,
    S_EV_TS,
    S_EV_AGENT,
    S_EV_SERVICE,
    S_EV_OLD,
    S_EV_NEW,
    S_EV_RECORD,
    S_EV_STREAM,
    S_EV_LINE,
    S_EV_PARTIAL,
    S_EV_EVENT,
    S_EV_MESSAGE,
    S_EV_INSTANCE,
    S_EV_COUNT_
};

static const char *const s_ev_keys [S_EV_COUNT_] = {
    "kind", "seq", "ts", "agent", "service", "old", "new", "record",
    "stream", "lines", "partial", "event", "message", "instance"
};

#define S_EV_COMMON (S_BIT (S_EV_KIND) | S_BIT (S_EV_SEQ) | S_BIT (S_EV_TS) \
                     | S_BIT (S_EV_AGENT))

static const unsigned s_ev_required [] = {
    [PM_EVENT_STATE] = S_EV_COMMON | S_BIT (S_EV_SERVICE) | S_BIT (S_EV_OLD)
                     | S_BIT (S_EV_NEW) | S_BIT (S_EV_RECORD),
    [PM_EVENT_LOG]   = S_EV_COMMON | S_BIT (S_EV_SERVICE)
                     | S_BIT (S_EV_STREAM) | S_BIT (S_EV_LINE),
    [PM_EVENT_AGENT] = S_EV_COMMON | S_BIT (S_EV_EVENT),
};

//  instance: from every agent of this version; optional for the broker's
//  own agent/ events and for agents of before.
static const unsigned s_ev_optional [] = {
    [PM_EVENT_STATE] = S_BIT (S_EV_INSTANCE),
    [PM_EVENT_LOG]   = S_BIT (S_EV_PARTIAL) | S_BIT (S_EV_INSTANCE),
    [PM_EVENT_AGENT] = S_BIT (S_EV_MESSAGE) | S_BIT (S_EV_INSTANCE),
};

//  "lines": 1 or more lines, each a str or bin.
static int
s_decode_lines (pm_decoder_t *dec, const msgpack_object *val,
                pm_event_t *event)
{
    if (val->type != MSGPACK_OBJECT_ARRAY || val->via.array.size == 0)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "lines: expected an array of one or more "
                                "lines");
    event->lines = calloc (val->via.array.size, sizeof *event->lines);
    if (!event->lines)
        abort ();
    for (uint32_t i = 0; i < val->via.array.size; i++) {
        char where [32];
        snprintf (where, sizeof where, "lines[%u]", (unsigned) i);
        pm_line_t *line = &event->lines [i];
        if (pm_decode_bytes (dec, &val->via.array.ptr [i], where,
                             &line->line, &line->line_size))
            return -1;
        event->lines_count++;
    }
    return 0;
}

//  "partial": indexes into lines of the pieces of cut lines.  Read after
//  every other key, so lines is known.
static int
s_decode_partial (pm_decoder_t *dec, const msgpack_object *val,
                  pm_event_t *event)
{
    if (val->type != MSGPACK_OBJECT_ARRAY)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "partial: expected an array of indexes");
    for (uint32_t i = 0; i < val->via.array.size; i++) {
        char where [32];
        snprintf (where, sizeof where, "partial[%u]", (unsigned) i);
        uint64_t index;
        if (pm_decode_uint (dec, &val->via.array.ptr [i], where, &index))
            return -1;
        if (index >= event->lines_count)
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "%s: %llu is not the index of a line",
                                    where, (unsigned long long) index);
        event->lines [index].partial = true;
    }
    return 0;
}

//  Each decoded line carries its own seq, ts and stream.
static int
s_number_lines (pm_decoder_t *dec, pm_event_t *event)
{
    if (event->seq == 0 || event->seq - 1 > UINT64_MAX - event->lines_count)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "seq: %llu cannot number %zu lines",
                                (unsigned long long) event->seq,
                                event->lines_count);
    for (size_t i = 0; i < event->lines_count; i++) {
        event->lines [i].seq = event->seq + i;
        event->lines [i].ts = event->ts;
        event->lines [i].stream = event->stream;
    }
    return 0;
}

static int
s_decode_event_field (pm_decoder_t *dec, int field,
                      const msgpack_object *val, pm_event_t *event)
{
    const char *path = s_ev_keys [field];
    int value = 0;
    switch (field) {
        case S_EV_SEQ:
            return pm_decode_uint (dec, val, path, &event->seq);
        case S_EV_TS:
            return pm_decode_number (dec, val, path, 0, &event->ts);
        case S_EV_AGENT:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, false,
                                     &event->agent);
        case S_EV_SERVICE:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, false,
                                     &event->service);
        case S_EV_OLD:
        case S_EV_NEW:
            if (s_decode_enum (dec, val, path, "a state name", s_parse_state,
                               &value))
                return -1;
            if (field == S_EV_OLD)
                event->old_state = (pm_state_t) value;
            else
                event->new_state = (pm_state_t) value;
            return 0;
        case S_EV_RECORD:
            return pm_record_unpack (dec, val, path, &event->record);
        case S_EV_STREAM:
            if (s_decode_enum (dec, val, path, "\"out\" or \"err\"",
                               s_parse_stream, &value))
                return -1;
            event->stream = (pm_stream_t) value;
            return 0;
        case S_EV_LINE:
            return s_decode_lines (dec, val, event);
        case S_EV_PARTIAL:
            return 0;           //  after lines (pm_event_decode)
        case S_EV_EVENT:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, false,
                                     &event->event);
        case S_EV_MESSAGE:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, true,
                                     &event->message);
        case S_EV_INSTANCE:
            return pm_decode_string (dec, val, path, 1, PM_INSTANCE_MAX,
                                     false, &event->instance);
    }
    return 0;
}

pm_err_t
pm_event_decode (const void *data, size_t size, pm_event_t **event_p,
                 char *err, size_t errlen)
{
    char spare [1];
    pm_decoder_t dec = pm_decoder_start (err, errlen, spare);
    *event_p = NULL;
    msgpack_unpacked unpacked;
    pm_event_t *event = NULL;
    if (pm_decode_frame (&dec, data, size, &unpacked)
    ||  pm_decode_version (&dec, &unpacked.data))
        goto done;
    const msgpack_object *root = &unpacked.data;

    //  The kind decides which keys are read.
    int kind = -1;
    for (uint32_t i = 0; i < root->via.map.size && kind < 0; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        if (!pm_key_is (&kv->key, "kind"))
            continue;
        char text [8];
        if (kv->val.type == MSGPACK_OBJECT_STR && kv->val.via.str.size > 0
        &&  kv->val.via.str.size < sizeof text) {
            memcpy (text, kv->val.via.str.ptr, kv->val.via.str.size);
            text [kv->val.via.str.size] = 0;
            for (int k = 0; k <= PM_EVENT_AGENT; k++)
                if (strcmp (text, s_kinds [k]) == 0)
                    kind = k;
        }
        if (kind < 0) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST,
                             "kind: expected \"state\", \"log\" or "
                             "\"agent\"");
            goto done;
        }
    }
    if (kind < 0) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "kind: required");
        goto done;
    }
    event = pm_event_new ((pm_event_kind_t) kind);
    unsigned wanted = s_ev_required [kind] | s_ev_optional [kind];
    unsigned seen = 0;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        int field = 0;
        while (field < S_EV_COUNT_
           && !pm_key_is (&kv->key, s_ev_keys [field]))
            field++;
        //  v, keys of other kinds and keys from later versions.
        if (field == S_EV_COUNT_ || !(wanted & S_BIT (field)))
            continue;
        if (seen & S_BIT (field)) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "%s: given twice",
                             s_ev_keys [field]);
            goto fail;
        }
        seen |= S_BIT (field);
        if (field != S_EV_KIND
        &&  s_decode_event_field (&dec, field, &kv->val, event))
            goto fail;
    }
    unsigned missing = s_ev_required [kind] & ~seen;
    for (int field = 0; field < S_EV_COUNT_; field++)
        if (missing & S_BIT (field)) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "%s: required",
                             s_ev_keys [field]);
            goto fail;
        }
    if (kind == PM_EVENT_LOG) {
        for (uint32_t i = 0; i < root->via.map.size; i++)
            if (pm_key_is (&root->via.map.ptr [i].key, "partial")
            &&  s_decode_partial (&dec, &root->via.map.ptr [i].val, event))
                goto fail;
        if (s_number_lines (&dec, event))
            goto fail;
    }
    goto done;
fail:
    pm_event_destroy (&event);
done:
    msgpack_unpacked_destroy (&unpacked);
    if (!event)
        return dec.code == PM_OK ? PM_ERR_INTERNAL : dec.code;
    *event_p = event;
    return PM_OK;
}

/* ------------------------------------------------------------------ */
/*  Topics                                                             */
/* ------------------------------------------------------------------ */

//  Appends part and its slash to buf at *at.  False if part is not a name
//  that can sit between two slashes, or if it does not fit with the NUL.
static bool
s_topic_append (char *buf, size_t size, size_t *at, const char *part)
{
    if (!part || !*part)
        return false;
    size_t len = strlen (part);
    if (memchr (part, '/', len) || *at + len + 2 > size)
        return false;
    memcpy (buf + *at, part, len);
    *at += len;
    buf [(*at)++] = '/';
    return true;
}

//  By copying, not formatting: the agent builds a topic for every line a
//  service writes.
int
pm_topic_format (char *buf, size_t size, pm_event_kind_t kind,
                 const char *agent, const char *service, pm_stream_t stream)
{
    const char *parts [4] = { NULL, agent, service, NULL };
    size_t count;
    switch (kind) {
        case PM_EVENT_STATE:
            parts [0] = "state";
            count = 3;
            break;
        case PM_EVENT_LOG:
            if (stream != PM_STREAM_OUT && stream != PM_STREAM_ERR)
                return -1;
            parts [0] = "log";
            parts [3] = pm_stream_name (stream);
            count = 4;
            break;
        case PM_EVENT_AGENT:
            parts [0] = "agent";
            count = 2;
            break;
        default:
            return -1;
    }
    if (!buf)
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < count; i++)
        if (!s_topic_append (buf, size, &at, parts [i])) {
            if (size)
                buf [0] = 0;
            return -1;
        }
    buf [at] = 0;
    return (int) at;
}
