/*  pm_reply.c - replies on the wire (see pm_proto.h)

    Owns: pm_reply_t and pm_result_t, the helpers the agent builds replies
    with, and the reply's msgpack encoding and validating decoding, as
    PROTOCOL.md section 4 describes them.

    Leaves to others: the status record inside "services" (pm_record.c),
    the frame checks and field helpers (pm_frame.c), and which command
    fills which part (the agent's control.c and supervisor.c).
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BIT(n) (1u << (n))

//  The largest process id the protocol carries (pid_t is an int).
#define S_PID_MAX INT_MAX

/* ------------------------------------------------------------------ */
/*  Replies                                                            */
/* ------------------------------------------------------------------ */

pm_reply_t *
pm_reply_new (uint64_t id)
{
    pm_reply_t *self = pm_alloc (1, sizeof *self);
    self->id = id;
    self->ok = true;
    return self;
}

void
pm_reply_destroy (pm_reply_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_reply_t *self = *self_p;
    free (self->message);
    for (size_t i = 0; i < self->err_names_count; i++)
        free (self->err_names [i]);
    free (self->err_names);
    for (size_t i = 0; i < self->results_count; i++) {
        free (self->results [i].name);
        free (self->results [i].note);
        free (self->results [i].error);
    }
    free (self->results);
    for (size_t i = 0; i < self->services_count; i++)
        pm_record_clear (&self->services [i]);
    free (self->services);
    free (self->agent);
    free (self->version);
    free (self->config);
    free (self->control);
    free (self->events);
    free (self->instance);
    free (self->leases);
    for (size_t i = 0; i < self->agents_count; i++) {
        free (self->agents [i].name);
        free (self->agents [i].address);
        free (self->agents [i].version);
        free (self->agents [i].instance);
    }
    free (self->agents);
    pm_logblocks_free (self->logs, self->logs_count);
    pm_reload_free (self);
    free (self);
    *self_p = NULL;
}

void
pm_reply_set_error (pm_reply_t *self, pm_err_t err, const char *fmt, ...)
{
    self->ok = false;
    self->err = err;
    free (self->message);
    va_list args;
    va_start (args, fmt);
    if (vasprintf (&self->message, fmt, args) < 0)
        abort ();
    va_end (args);
    //  The wire limit; cut rather than fail to answer.
    if (strlen (self->message) > PM_TEXT_MAX)
        self->message [PM_TEXT_MAX] = 0;
}

void
pm_reply_add_err_name (pm_reply_t *self, const char *name)
{
    self->err_names = pm_grow (self->err_names, self->err_names_count,
                              sizeof (char *));
    self->err_names [self->err_names_count++] = pm_strdup (name);
}

void
pm_reply_set_unknown (pm_reply_t *self)
{
    char text [PM_TEXT_MAX];
    size_t len = (size_t) snprintf (text, sizeof text, "unknown service%s: ",
                                    self->err_names_count > 1 ? "s" : "");
    for (size_t k = 0; k < self->err_names_count && len < sizeof text; k++)
        len += (size_t) snprintf (text + len, sizeof text - len, "%s%s",
                                  k ? ", " : "", self->err_names [k]);
    pm_reply_set_error (self, PM_ERR_UNKNOWN_SERVICE, "%s", text);
}

void
pm_reply_add_result (pm_reply_t *self, const char *name, bool ok,
                     pm_state_t state, const char *note, const char *error)
{
    self->results = pm_grow (self->results, self->results_count,
                            sizeof (pm_result_t));
    pm_result_t *result = &self->results [self->results_count++];
    result->name = pm_strdup (name);
    result->ok = ok;
    result->state = state;
    result->note = note ? pm_strdup (note) : NULL;
    result->error = error ? pm_strdup (error) : NULL;
}

void
pm_reply_add_service (pm_reply_t *self, const pm_record_t *record)
{
    self->services = pm_grow (self->services, self->services_count,
                             sizeof (pm_record_t));
    pm_record_copy (&self->services [self->services_count++], record);
}

int
pm_reply_encode (const pm_reply_t *self, char **data, size_t *size)
{
    if (!self)
        return -1;
    //  Optional parts go out when they are set: a list when its array
    //  exists (so an empty list can be said), a hello field when it is
    //  not NULL or zero.
    bool results = self->results || self->results_count;
    bool services = self->services || self->services_count;
    bool leases = self->leases || self->leases_count;
    bool logs = self->logs || self->logs_count;
    bool agents = self->agents || self->agents_count;
    size_t fields = 3 + (!self->ok) + results + services + leases + logs
                  + agents
                  + self->has_reload
                  + (self->agent != NULL) + (self->version != NULL)
                  + (self->agent_pid != 0) + (self->config != NULL)
                  + (self->control != NULL) + (self->events != NULL)
                  + (self->started_at != 0) + (self->generation != 0)
                  + (self->instance != NULL) + self->broker;

    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    pm_packer_init (&pk, &sbuf);
    msgpack_pack_map (&pk, fields);
    pm_pack_str (&pk, "v");
    msgpack_pack_uint64 (&pk, PM_PROTOCOL_VERSION);
    pm_pack_str (&pk, "id");
    msgpack_pack_uint64 (&pk, self->id);
    pm_pack_str (&pk, "ok");
    if (self->ok)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    if (!self->ok) {
        //  A failure built by hand without a code is still a failure.
        pm_err_t code = self->err > PM_OK && self->err < PM_ERR_COUNT_
                      ? self->err : PM_ERR_INTERNAL;
        pm_pack_str (&pk, "error");
        msgpack_pack_map (&pk, self->err_names_count ? 3 : 2);
        pm_pack_str (&pk, "code");
        pm_pack_str (&pk, pm_err_name (code));
        pm_pack_str (&pk, "message");
        pm_pack_str (&pk, self->message);
        if (self->err_names_count) {
            pm_pack_str (&pk, "names");
            msgpack_pack_array (&pk, self->err_names_count);
            for (size_t i = 0; i < self->err_names_count; i++)
                pm_pack_str (&pk, self->err_names [i]);
        }
    }
    if (results) {
        pm_pack_str (&pk, "results");
        msgpack_pack_array (&pk, self->results_count);
        for (size_t i = 0; i < self->results_count; i++) {
            const pm_result_t *result = &self->results [i];
            msgpack_pack_map (&pk, 5);
            pm_pack_str (&pk, "name");
            pm_pack_str (&pk, result->name);
            pm_pack_str (&pk, "ok");
            if (result->ok)
                msgpack_pack_true (&pk);
            else
                msgpack_pack_false (&pk);
            pm_pack_str (&pk, "state");
            pm_pack_str (&pk, pm_state_name (result->state));
            pm_pack_str (&pk, "note");
            pm_pack_nstr (&pk, result->note);
            pm_pack_str (&pk, "error");
            pm_pack_nstr (&pk, result->error);
        }
    }
    if (services) {
        pm_pack_str (&pk, "services");
        msgpack_pack_array (&pk, self->services_count);
        for (size_t i = 0; i < self->services_count; i++)
            pm_record_pack (&pk, &self->services [i]);
    }
    if (self->agent) {
        pm_pack_str (&pk, "agent");
        pm_pack_str (&pk, self->agent);
    }
    if (self->version) {
        pm_pack_str (&pk, "version");
        pm_pack_str (&pk, self->version);
    }
    if (self->agent_pid) {
        pm_pack_str (&pk, "pid");
        msgpack_pack_int64 (&pk, self->agent_pid);
    }
    if (self->config) {
        pm_pack_str (&pk, "config");
        pm_pack_str (&pk, self->config);
    }
    if (self->control) {
        pm_pack_str (&pk, "control");
        pm_pack_str (&pk, self->control);
    }
    if (self->events) {
        pm_pack_str (&pk, "events");
        pm_pack_str (&pk, self->events);
    }
    if (self->started_at != 0) {
        pm_pack_str (&pk, "started_at");
        msgpack_pack_double (&pk, self->started_at);
    }
    if (self->generation != 0) {
        pm_pack_str (&pk, "generation");
        msgpack_pack_uint64 (&pk, self->generation);
    }
    if (self->instance) {
        pm_pack_str (&pk, "instance");
        pm_pack_str (&pk, self->instance);
    }
    if (self->broker) {
        pm_pack_str (&pk, "broker");
        msgpack_pack_true (&pk);
    }
    if (leases) {
        pm_pack_str (&pk, "leases");
        msgpack_pack_array (&pk, self->leases_count);
        for (size_t i = 0; i < self->leases_count; i++)
            msgpack_pack_int64 (&pk, self->leases [i]);
    }
    if (logs) {
        pm_pack_str (&pk, "logs");
        pm_logblocks_pack (&pk, self->logs, self->logs_count);
    }
    if (self->has_reload) {
        pm_pack_str (&pk, "reload");
        pm_reload_pack (&pk, self);
    }
    if (agents) {
        pm_pack_str (&pk, "agents");
        msgpack_pack_array (&pk, self->agents_count);
        for (size_t i = 0; i < self->agents_count; i++) {
            const pm_agent_info_t *agent = &self->agents [i];
            msgpack_pack_map (&pk, 8);
            pm_pack_str (&pk, "name");
            pm_pack_str (&pk, agent->name ? agent->name : "");
            pm_pack_str (&pk, "state");
            pm_pack_str (&pk, agent->connected ? "connected" : "unreachable");
            pm_pack_str (&pk, "since");
            msgpack_pack_double (&pk, agent->since);
            pm_pack_str (&pk, "address");
            pm_pack_str (&pk, agent->address ? agent->address : "");
            pm_pack_str (&pk, "version");
            pm_pack_str (&pk, agent->version ? agent->version : "");
            pm_pack_str (&pk, "instance");
            pm_pack_str (&pk, agent->instance ? agent->instance : "");
            pm_pack_str (&pk, "pid");
            msgpack_pack_int64 (&pk, agent->pid);
            pm_pack_str (&pk, "services");
            msgpack_pack_uint64 (&pk, agent->services);
        }
    }
    return pm_pack_finish (&sbuf, data, size);
}

static int
s_decode_error (pm_decoder_t *dec, const msgpack_object *obj,
                pm_reply_t *reply)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "error: expected a map");
    bool have_code = false;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        if (pm_key_is (key, "code")) {
            char *code = NULL;
            if (have_code)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "error.code: given twice");
            if (pm_decode_string (dec, val, "error.code", 1, 32, false,
                                  &code))
                return -1;
            int rc = pm_err_parse (code, &reply->err);
            free (code);
            if (rc) {
                char shown [48];
                pm_key_text (val, shown, sizeof shown);
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "error.code: unknown code '%s'",
                                        shown);
            }
            have_code = true;
        }
        else
        if (pm_key_is (key, "message")) {
            if (reply->message)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "error.message: given twice");
            if (pm_decode_string (dec, val, "error.message", 0, PM_TEXT_MAX,
                                  true, &reply->message))
                return -1;
        }
        else
        if (pm_key_is (key, "names")) {
            if (reply->err_names)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "error.names: given twice");
            if (pm_decode_names (dec, val, "error.names", &reply->err_names,
                                 &reply->err_names_count))
                return -1;
        }
    }
    if (!have_code)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "error.code: required");
    return 0;
}

static int
s_decode_result (pm_decoder_t *dec, const msgpack_object *obj, size_t index,
                 pm_result_t *result)
{
    char path [64];
    snprintf (path, sizeof path, "results[%zu]", index);
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a map", path);
    unsigned seen = 0;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        static const char *const names [] = {
            "name", "ok", "state", "note", "error"
        };
        int field = 0;
        while (field < 5 && !pm_key_is (key, names [field]))
            field++;
        if (field == 5)
            continue;           //  replies may grow; unknown keys are skipped
        char where [96];
        snprintf (where, sizeof where, "%s.%s", path, names [field]);
        if (seen & S_BIT (field))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "%s: given twice", where);
        seen |= S_BIT (field);
        int rc = 0;
        char *text = NULL;
        switch (field) {
            case 0:
                rc = pm_decode_string (dec, val, where, 1, PM_TARGET_MAX,
                                       false, &result->name);
                break;
            case 1:
                rc = pm_decode_bool (dec, val, where, &result->ok);
                break;
            case 2:
                rc = pm_decode_string (dec, val, where, 1, 32, false, &text);
                if (rc == 0 && pm_state_parse (text, &result->state))
                    rc = pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                          "%s: unknown state", where);
                free (text);
                break;
            case 3:
                rc = pm_decode_string (dec, val, where, 0, PM_TEXT_MAX, true,
                                       &result->note);
                break;
            case 4:
                rc = pm_decode_string (dec, val, where, 0, PM_TEXT_MAX, true,
                                       &result->error);
                break;
        }
        if (rc)
            return -1;
    }
    for (int field = 0; field < 3; field++)
        if (!(seen & S_BIT (field)))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "%s.%s: required", path,
                                    field == 0 ? "name"
                                  : field == 1 ? "ok" : "state");
    return 0;
}

//  Checks that obj is an array of at most PM_NAMES_MAX elements.
static int
s_check_list (pm_decoder_t *dec, const msgpack_object *obj, const char *path)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected an array", path);
    if (obj->via.array.size > PM_NAMES_MAX)
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "%s: %u elements, over the limit of %d",
                                path, (unsigned) obj->via.array.size,
                                PM_NAMES_MAX);
    return 0;
}

//  The reply's top-level fields after v, id and ok.
enum {
    S_REPLY_ERROR = 0,
    S_REPLY_RESULTS,
    S_REPLY_SERVICES,
    S_REPLY_AGENT,
    S_REPLY_VERSION,
    S_REPLY_PID,
    S_REPLY_CONFIG,
    S_REPLY_CONTROL,
    S_REPLY_EVENTS,
    S_REPLY_STARTED_AT,
    S_REPLY_LEASES,
    S_REPLY_LOGS,
    S_REPLY_RELOAD,
    S_REPLY_ID,
    S_REPLY_OK,
    S_REPLY_GENERATION,
    S_REPLY_AGENTS,
    S_REPLY_BROKER,
    S_REPLY_INSTANCE,
    S_REPLY_COUNT_
};

static const char *const s_reply_fields [S_REPLY_COUNT_] = {
    "error", "results", "services", "agent", "version", "pid", "config",
    "control", "events", "started_at", "leases", "logs", "reload", "id", "ok",
    "generation", "agents", "broker", "instance"
};

//  One element of "agents".
static int
s_decode_agent (pm_decoder_t *dec, const msgpack_object *obj, uint32_t index,
                pm_agent_info_t *agent)
{
    char where [64];
    snprintf (where, sizeof where, "agents[%u]", (unsigned) index);
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a map", where);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        char *state = NULL;
        int rc = 0;
        if (pm_key_is (key, "name"))
            rc = pm_decode_string (dec, val, where, 1, PM_NAME_MAX, false,
                                   &agent->name);
        else
        if (pm_key_is (key, "state")) {
            rc = pm_decode_string (dec, val, where, 1, PM_NAME_MAX, false,
                                   &state);
            agent->connected = state && strcmp (state, "connected") == 0;
            free (state);
        }
        else
        if (pm_key_is (key, "since"))
            rc = pm_decode_number (dec, val, where, 0, &agent->since);
        else
        if (pm_key_is (key, "address"))
            rc = pm_decode_string (dec, val, where, 0, PM_TEXT_MAX, false,
                                   &agent->address);
        else
        if (pm_key_is (key, "version"))
            rc = pm_decode_string (dec, val, where, 0, PM_NAME_MAX, false,
                                   &agent->version);
        else
        if (pm_key_is (key, "instance"))
            rc = pm_decode_string (dec, val, where, 0, PM_NAME_MAX, false,
                                   &agent->instance);
        else
        if (pm_key_is (key, "pid"))
            rc = pm_decode_int (dec, val, where, 0, INT64_MAX, "an integer",
                                &agent->pid);
        else
        if (pm_key_is (key, "services"))
            rc = pm_decode_uint (dec, val, where, &agent->services);
        if (rc)
            return -1;
    }
    if (!agent->name)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s.name: required",
                                where);
    return 0;
}

static int
s_decode_reply_field (pm_decoder_t *dec, int field,
                      const msgpack_object *val, pm_reply_t *reply)
{
    const char *path = s_reply_fields [field];
    int64_t pid = 0;
    switch (field) {
        case S_REPLY_ID:
            return pm_decode_uint (dec, val, path, &reply->id);
        case S_REPLY_OK:
            return pm_decode_bool (dec, val, path, &reply->ok);
        case S_REPLY_ERROR:
            return s_decode_error (dec, val, reply);
        case S_REPLY_RESULTS:
            if (s_check_list (dec, val, path))
                return -1;
            reply->results = pm_alloc (val->via.array.size,
                                      sizeof (pm_result_t));
            for (uint32_t i = 0; i < val->via.array.size; i++) {
                //  Counted as it goes, so destroy frees what was made.
                reply->results_count++;
                if (s_decode_result (dec, &val->via.array.ptr [i], i,
                                     &reply->results [i]))
                    return -1;
            }
            return 0;
        case S_REPLY_SERVICES:
            if (s_check_list (dec, val, path))
                return -1;
            reply->services = pm_alloc (val->via.array.size,
                                       sizeof (pm_record_t));
            for (uint32_t i = 0; i < val->via.array.size; i++) {
                char where [64];
                snprintf (where, sizeof where, "services[%u]", (unsigned) i);
                reply->services_count++;
                if (pm_record_unpack (dec, &val->via.array.ptr [i], where,
                                      &reply->services [i]))
                    return -1;
            }
            return 0;
        case S_REPLY_AGENT:
            return pm_decode_string (dec, val, path, 1, PM_NAME_MAX, false,
                                     &reply->agent);
        case S_REPLY_VERSION:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, false,
                                     &reply->version);
        case S_REPLY_PID:
            if (pm_decode_int (dec, val, path, 0, S_PID_MAX,
                               "a process id (integer >= 0)", &pid))
                return -1;
            reply->agent_pid = pid;
            return 0;
        case S_REPLY_CONFIG:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, false,
                                     &reply->config);
        case S_REPLY_CONTROL:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, false,
                                     &reply->control);
        case S_REPLY_EVENTS:
            return pm_decode_string (dec, val, path, 0, PM_TEXT_MAX, false,
                                     &reply->events);
        case S_REPLY_STARTED_AT:
            return pm_decode_number (dec, val, path, 0, &reply->started_at);
        case S_REPLY_GENERATION:
            return pm_decode_uint (dec, val, path, &reply->generation);
        case S_REPLY_INSTANCE:
            return pm_decode_string (dec, val, path, 1, PM_INSTANCE_MAX,
                                     false, &reply->instance);
        case S_REPLY_LEASES:
            if (s_check_list (dec, val, path))
                return -1;
            reply->leases = pm_alloc (val->via.array.size, sizeof (int64_t));
            for (uint32_t i = 0; i < val->via.array.size; i++) {
                char where [64];
                snprintf (where, sizeof where, "leases[%u]", (unsigned) i);
                if (pm_decode_int (dec, &val->via.array.ptr [i], where, 1,
                                   S_PID_MAX, "a process id (integer > 0)",
                                   &reply->leases [i]))
                    return -1;
                reply->leases_count++;
            }
            return 0;
        case S_REPLY_LOGS:
            return pm_logblocks_unpack (dec, val, &reply->logs,
                                        &reply->logs_count);
        case S_REPLY_RELOAD:
            return pm_reload_unpack (dec, val, reply);
        case S_REPLY_BROKER:
            return pm_decode_bool (dec, val, path, &reply->broker);
        case S_REPLY_AGENTS:
            if (s_check_list (dec, val, path))
                return -1;
            reply->agents = pm_alloc (val->via.array.size,
                                      sizeof (pm_agent_info_t));
            for (uint32_t i = 0; i < val->via.array.size; i++) {
                reply->agents_count++;
                if (s_decode_agent (dec, &val->via.array.ptr [i], i,
                                    &reply->agents [i]))
                    return -1;
            }
            return 0;
    }
    return 0;
}

pm_err_t
pm_reply_decode (const void *data, size_t size, pm_reply_t **reply_p,
                 char *err, size_t errlen)
{
    char spare [1];
    pm_decoder_t dec = pm_decoder_start (err, errlen, spare);
    *reply_p = NULL;
    msgpack_unpacked unpacked;
    pm_reply_t *reply = NULL;
    if (pm_decode_frame (&dec, data, size, &unpacked)
    ||  pm_decode_version (&dec, &unpacked.data))
        goto done;
    const msgpack_object *root = &unpacked.data;
    reply = pm_reply_new (0);
    unsigned seen = 0;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        int field = 0;
        while (field < S_REPLY_COUNT_
           && !pm_key_is (&kv->key, s_reply_fields [field]))
            field++;
        if (field == S_REPLY_COUNT_)
            continue;           //  v, or a key from a later version
        if (seen & S_BIT (field)) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "%s: given twice",
                             s_reply_fields [field]);
            goto fail;
        }
        seen |= S_BIT (field);
        if (s_decode_reply_field (&dec, field, &kv->val, reply))
            goto fail;
    }
    if (!(seen & S_BIT (S_REPLY_ID))) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "id: required");
        goto fail;
    }
    if (!(seen & S_BIT (S_REPLY_OK))) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "ok: required");
        goto fail;
    }
    if (!reply->ok && !(seen & S_BIT (S_REPLY_ERROR))) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST,
                         "error: required when ok is false");
        goto fail;
    }
    if (reply->ok && (seen & S_BIT (S_REPLY_ERROR))) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST,
                         "error: present but ok is true");
        goto fail;
    }
    goto done;
fail:
    pm_reply_destroy (&reply);
done:
    msgpack_unpacked_destroy (&unpacked);
    if (!reply)
        return dec.code == PM_OK ? PM_ERR_INTERNAL : dec.code;
    *reply_p = reply;
    return PM_OK;
}
