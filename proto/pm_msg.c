/*  pm_msg.c - requests and replies on the wire (see pm_proto.h)

    Owns: pm_request_t and pm_reply_t, their constructors and helpers, and
    their msgpack encoding and validating decoding, exactly as PROTOCOL.md
    describes them.

    Leaves to others: status records and published messages (pm_record.c),
    the byte-level frame checks and field helpers (pm_frame.c), and every
    semantic rule (names or all, unknown services, ...), which the agent
    applies to the decoded request.
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Memory is not a reason to fail a request: running out aborts.
static void *
s_alloc (size_t count, size_t size)
{
    void *ptr = calloc (count ? count : 1, size);
    if (!ptr)
        abort ();
    return ptr;
}

static char *
s_strdup (const char *text)
{
    char *copy = strdup (text);
    if (!copy)
        abort ();
    return copy;
}

//  Grows *array (of elem bytes each) to hold count + 1 elements, keeping
//  capacity at powers of two so repeated appends stay linear.
static void *
s_grow (void *array, size_t count, size_t elem)
{
    if (count == 0 || (count & (count - 1)) == 0) {
        size_t capacity = count ? count * 2 : 1;
        array = realloc (array, capacity * elem);
        if (!array)
            abort ();
    }
    return array;
}

/* ------------------------------------------------------------------ */
/*  Requests                                                           */
/* ------------------------------------------------------------------ */

//  The arguments, as bits, and which command takes which.
enum {
    S_ARG_NAMES = 0,
    S_ARG_ALL,
    S_ARG_WITH_DEPENDENTS,
    S_ARG_WAIT,
    S_ARG_TIMEOUT,
    S_ARG_SIGNAL,
    S_ARG_TAIL,
    S_ARG_SINCE,
    S_ARG_PID,
    S_ARG_COUNT_
};

static const char *const s_arg_names [S_ARG_COUNT_] = {
    "names", "all", "with_dependents", "wait", "timeout", "signal", "tail",
    "since", "pid"
};

#define S_BIT(arg) (1u << (arg))

static const unsigned s_cmd_args [PM_CMD_COUNT_] = {
    [PM_CMD_HELLO]    = 0,
    [PM_CMD_STATUS]   = S_BIT (S_ARG_NAMES),
    [PM_CMD_START]    = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WAIT) | S_BIT (S_ARG_TIMEOUT),
    [PM_CMD_STOP]     = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WITH_DEPENDENTS) | S_BIT (S_ARG_WAIT)
                      | S_BIT (S_ARG_TIMEOUT),
    [PM_CMD_RESTART]  = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WITH_DEPENDENTS) | S_BIT (S_ARG_WAIT)
                      | S_BIT (S_ARG_TIMEOUT),
    [PM_CMD_SIGNAL]   = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_SIGNAL),
    [PM_CMD_SHUTDOWN] = 0,
    [PM_CMD_LOGS]     = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_TAIL)
                      | S_BIT (S_ARG_SINCE),
    [PM_CMD_RELOAD]   = 0,
    [PM_CMD_LEASE]    = S_BIT (S_ARG_PID),
};

//  Arguments a command cannot do without.
static const unsigned s_cmd_required [PM_CMD_COUNT_] = {
    [PM_CMD_SIGNAL] = S_BIT (S_ARG_SIGNAL),
    [PM_CMD_LEASE]  = S_BIT (S_ARG_PID),
};

//  The largest process id the protocol carries (pid_t is an int).
#define S_PID_MAX INT_MAX

pm_request_t *
pm_request_new (pm_cmd_t cmd, uint64_t id)
{
    pm_request_t *self = s_alloc (1, sizeof *self);
    self->cmd = cmd;
    self->id = id;
    return self;
}

void
pm_request_destroy (pm_request_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_request_t *self = *self_p;
    for (size_t i = 0; i < self->names_count; i++)
        free (self->names [i]);
    free (self->names);
    free (self);
    *self_p = NULL;
}

int
pm_request_add_name (pm_request_t *self, const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > PM_NAME_MAX || self->names_count >= PM_NAMES_MAX)
        return -1;
    self->names = s_grow (self->names, self->names_count, sizeof (char *));
    self->names [self->names_count++] = s_strdup (name);
    return 0;
}

//  True if the request's value for arg differs from "absent", so the
//  encoder sends it.
static bool
s_arg_present (const pm_request_t *self, int arg)
{
    switch (arg) {
        case S_ARG_NAMES:           return self->names_count > 0;
        case S_ARG_ALL:             return self->all;
        case S_ARG_WITH_DEPENDENTS: return self->with_dependents;
        case S_ARG_WAIT:            return self->wait != PM_WAIT_DEFAULT;
        case S_ARG_TIMEOUT:         return self->timeout != 0;
        case S_ARG_SIGNAL:          return true;
        case S_ARG_TAIL:            return self->has_tail;
        case S_ARG_SINCE:           return self->has_since;
        case S_ARG_PID:             return true;
        default:                    return false;
    }
}

int
pm_request_encode (const pm_request_t *self, char **data, size_t *size)
{
    if (!self || (unsigned) self->cmd >= PM_CMD_COUNT_)
        return -1;
    if (self->names_count && !self->names)
        return -1;
    if (!(self->timeout >= 0) || isinf (self->timeout))
        return -1;
    unsigned takes = s_cmd_args [self->cmd];
    size_t nargs = 0;
    for (int arg = 0; arg < S_ARG_COUNT_; arg++)
        if ((takes & S_BIT (arg)) && s_arg_present (self, arg))
            nargs++;

    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    pm_packer_init (&pk, &sbuf);
    msgpack_pack_map (&pk, 4);
    pm_pack_str (&pk, "v");
    msgpack_pack_uint64 (&pk, PM_PROTOCOL_VERSION);
    pm_pack_str (&pk, "id");
    msgpack_pack_uint64 (&pk, self->id);
    pm_pack_str (&pk, "cmd");
    pm_pack_str (&pk, pm_cmd_name (self->cmd));
    pm_pack_str (&pk, "args");
    msgpack_pack_map (&pk, nargs);
    for (int arg = 0; arg < S_ARG_COUNT_; arg++) {
        if (!(takes & S_BIT (arg)) || !s_arg_present (self, arg))
            continue;
        pm_pack_str (&pk, s_arg_names [arg]);
        switch (arg) {
            case S_ARG_NAMES:
                msgpack_pack_array (&pk, self->names_count);
                for (size_t i = 0; i < self->names_count; i++)
                    pm_pack_str (&pk, self->names [i]);
                break;
            case S_ARG_ALL:
                msgpack_pack_true (&pk);
                break;
            case S_ARG_WITH_DEPENDENTS:
                msgpack_pack_true (&pk);
                break;
            case S_ARG_WAIT:
                pm_pack_str (&pk, pm_wait_name (self->wait));
                break;
            case S_ARG_TIMEOUT:
                msgpack_pack_double (&pk, self->timeout);
                break;
            case S_ARG_SIGNAL: {
                //  By name when it has one: numbers differ between systems.
                const char *name = pm_signal_name (self->signum);
                if (name)
                    pm_pack_str (&pk, name);
                else
                    msgpack_pack_int64 (&pk, self->signum);
                break;
            }
            case S_ARG_TAIL:
                msgpack_pack_uint64 (&pk, self->tail);
                break;
            case S_ARG_SINCE:
                msgpack_pack_uint64 (&pk, self->since);
                break;
            case S_ARG_PID:
                msgpack_pack_int64 (&pk, self->pid);
                break;
        }
    }
    return pm_pack_finish (&sbuf, data, size);
}

//  Copies a short string (1..size-1 bytes, no NUL) into buf; -1 if obj
//  is anything else.
static int
s_small_string (const msgpack_object *obj, char *buf, size_t size)
{
    if (obj->type != MSGPACK_OBJECT_STR || obj->via.str.size == 0
    ||  obj->via.str.size >= size
    ||  memchr (obj->via.str.ptr, 0, obj->via.str.size))
        return -1;
    memcpy (buf, obj->via.str.ptr, obj->via.str.size);
    buf [obj->via.str.size] = 0;
    return 0;
}

static int
s_decode_signal (pm_decoder_t *dec, const msgpack_object *obj, int *signum)
{
    char text [32];
    if (obj->type == MSGPACK_OBJECT_STR) {
        if (s_small_string (obj, text, sizeof text) == 0
        &&  pm_signal_parse (text, signum) == 0)
            return 0;
        pm_key_text (obj, text, sizeof text);
        return pm_decoder_fail (dec, PM_ERR_BAD_SIGNAL,
                                "args.signal: unknown signal '%s'", text);
    }
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            snprintf (text, sizeof text, "%llu",
                      (unsigned long long) obj->via.u64);
        else
            snprintf (text, sizeof text, "%lld", (long long) obj->via.i64);
        if (pm_signal_parse (text, signum))
            return pm_decoder_fail (dec, PM_ERR_BAD_SIGNAL,
                                    "args.signal: unknown signal number %s",
                                    text);
        return 0;
    }
    return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                            "args.signal: expected a signal name (string) "
                            "or number (integer)");
}

//  The waits each command accepts, and how to say so.
static int
s_decode_wait (pm_decoder_t *dec, const msgpack_object *obj, pm_cmd_t cmd,
               pm_wait_t *wait)
{
    const char *expected = cmd == PM_CMD_STOP
                         ? "expected \"none\" or \"stopped\""
                         : "expected \"none\", \"started\" or \"running\"";
    char text [16];
    pm_wait_t value;
    bool fits = s_small_string (obj, text, sizeof text) == 0
             && pm_wait_parse (text, &value) == 0
             && (cmd == PM_CMD_STOP ? value == PM_WAIT_NONE
                                      || value == PM_WAIT_STOPPED
                                    : value != PM_WAIT_STOPPED);
    if (!fits)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "args.wait: %s",
                                expected);
    *wait = value;
    return 0;
}

//  Decodes args (NULL when absent) into req.
static int
s_decode_args (pm_decoder_t *dec, const msgpack_object *args,
               pm_request_t *req)
{
    if (args && args->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "args: expected a map");
    unsigned seen = 0;
    unsigned takes = s_cmd_args [req->cmd];
    const char *cmd = pm_cmd_name (req->cmd);
    uint32_t count = args ? args->via.map.size : 0;
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *key = &args->via.map.ptr [i].key;
        const msgpack_object *val = &args->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR)
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "args: keys must be strings");
        int arg = 0;
        while (arg < S_ARG_COUNT_ && !pm_key_is (key, s_arg_names [arg]))
            arg++;
        if (arg == S_ARG_COUNT_) {
            char shown [48];
            pm_key_text (key, shown, sizeof shown);
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "args.%s: unknown argument", shown);
        }
        const char *name = s_arg_names [arg];
        if (!(takes & S_BIT (arg)))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "args.%s: not an argument of %s",
                                    name, cmd);
        if (seen & S_BIT (arg))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "args.%s: given twice", name);
        seen |= S_BIT (arg);
        int rc = 0;
        int64_t pid = 0;
        switch (arg) {
            case S_ARG_NAMES:
                rc = pm_decode_names (dec, val, "args.names", &req->names,
                                      &req->names_count);
                break;
            case S_ARG_ALL:
                rc = pm_decode_bool (dec, val, "args.all", &req->all);
                break;
            case S_ARG_WITH_DEPENDENTS:
                rc = pm_decode_bool (dec, val, "args.with_dependents",
                                     &req->with_dependents);
                break;
            case S_ARG_WAIT:
                rc = s_decode_wait (dec, val, req->cmd, &req->wait);
                break;
            case S_ARG_TIMEOUT:
                rc = pm_decode_number (dec, val, "args.timeout", 0,
                                       &req->timeout);
                break;
            case S_ARG_SIGNAL:
                rc = s_decode_signal (dec, val, &req->signum);
                break;
            case S_ARG_TAIL:
                rc = pm_decode_uint (dec, val, "args.tail", &req->tail);
                req->has_tail = rc == 0;
                break;
            case S_ARG_SINCE:
                rc = pm_decode_uint (dec, val, "args.since", &req->since);
                req->has_since = rc == 0;
                break;
            case S_ARG_PID:
                rc = pm_decode_int (dec, val, "args.pid", 1, S_PID_MAX,
                                    "a process id (integer > 0)", &pid);
                if (rc == 0)
                    req->pid = pid;
                break;
        }
        if (rc)
            return -1;
    }
    unsigned missing = s_cmd_required [req->cmd] & ~seen;
    for (int arg = 0; arg < S_ARG_COUNT_; arg++)
        if (missing & S_BIT (arg))
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "args.%s: required by %s",
                                    s_arg_names [arg], cmd);
    return 0;
}

pm_err_t
pm_request_decode (const void *data, size_t size, pm_request_t **req_p,
                   uint64_t *id, char *err, size_t errlen)
{
    char spare [1];
    if (!err || errlen == 0) {
        err = spare;
        errlen = sizeof spare;
    }
    err [0] = 0;
    *req_p = NULL;
    if (id)
        *id = 0;
    pm_decoder_t dec = { err, errlen, PM_OK };
    msgpack_unpacked unpacked;
    pm_request_t *req = NULL;
    if (pm_decode_frame (&dec, data, size, &unpacked))
        goto done;
    const msgpack_object *root = &unpacked.data;

    //  Find the id first, so that any later failure can still be answered
    //  to the right request, then the version, which decides how to read
    //  the rest.
    const msgpack_object *fields [4] = { NULL };   //  v, id, cmd, args
    static const char *const keys [4] = { "v", "id", "cmd", "args" };
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        if (pm_key_is (&kv->key, "id")
        &&  kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER && id)
            *id = kv->val.via.u64;
    }
    if (pm_decode_version (&dec, root))
        goto done;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST,
                             "keys must be strings");
            goto done;
        }
        int index = 0;
        while (index < 4 && !pm_key_is (&kv->key, keys [index]))
            index++;
        if (index == 4) {
            char shown [48];
            pm_key_text (&kv->key, shown, sizeof shown);
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST,
                             "%s: unknown field", shown);
            goto done;
        }
        if (fields [index]) {
            pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "%s: given twice",
                             keys [index]);
            goto done;
        }
        fields [index] = &kv->val;
    }
    uint64_t req_id;
    if (!fields [1]) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "id: required");
        goto done;
    }
    if (pm_decode_uint (&dec, fields [1], "id", &req_id))
        goto done;
    if (!fields [2]) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "cmd: required");
        goto done;
    }
    if (fields [2]->type != MSGPACK_OBJECT_STR) {
        pm_decoder_fail (&dec, PM_ERR_BAD_REQUEST, "cmd: expected a string");
        goto done;
    }
    char cmd_name [32];
    pm_cmd_t cmd;
    if (s_small_string (fields [2], cmd_name, sizeof cmd_name)
    ||  pm_cmd_parse (cmd_name, &cmd)) {
        pm_key_text (fields [2], cmd_name, sizeof cmd_name);
        pm_decoder_fail (&dec, PM_ERR_UNKNOWN_COMMAND,
                         "cmd: unknown command '%s'", cmd_name);
        goto done;
    }
    req = pm_request_new (cmd, req_id);
    //  No args is the same as empty args (a required one is missing).
    if (s_decode_args (&dec, fields [3], req))
        pm_request_destroy (&req);
done:
    msgpack_unpacked_destroy (&unpacked);
    if (!req)
        return dec.code == PM_OK ? PM_ERR_INTERNAL : dec.code;
    *req_p = req;
    return PM_OK;
}

/* ------------------------------------------------------------------ */
/*  Replies                                                            */
/* ------------------------------------------------------------------ */

pm_reply_t *
pm_reply_new (uint64_t id)
{
    pm_reply_t *self = s_alloc (1, sizeof *self);
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
    free (self->leases);
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
    self->err_names = s_grow (self->err_names, self->err_names_count,
                              sizeof (char *));
    self->err_names [self->err_names_count++] = s_strdup (name);
}

void
pm_reply_add_result (pm_reply_t *self, const char *name, bool ok,
                     pm_state_t state, const char *note, const char *error)
{
    self->results = s_grow (self->results, self->results_count,
                            sizeof (pm_result_t));
    pm_result_t *result = &self->results [self->results_count++];
    result->name = s_strdup (name);
    result->ok = ok;
    result->state = state;
    result->note = note ? s_strdup (note) : NULL;
    result->error = error ? s_strdup (error) : NULL;
}

void
pm_reply_add_service (pm_reply_t *self, const pm_record_t *record)
{
    self->services = s_grow (self->services, self->services_count,
                             sizeof (pm_record_t));
    pm_record_copy (&self->services [self->services_count++], record);
}

int
pm_reply_encode (const pm_reply_t *self, char **data, size_t *size)
{
    if (!self)
        return -1;
    bool hello = self->agent != NULL;
    size_t fields = 3 + (!self->ok) + (self->results_count > 0)
                  + (self->services_count > 0) + (hello ? 8 : 0);

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
    if (self->results_count) {
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
    if (self->services_count) {
        pm_pack_str (&pk, "services");
        msgpack_pack_array (&pk, self->services_count);
        for (size_t i = 0; i < self->services_count; i++)
            pm_record_pack (&pk, &self->services [i]);
    }
    if (hello) {
        pm_pack_str (&pk, "agent");
        pm_pack_str (&pk, self->agent);
        pm_pack_str (&pk, "version");
        pm_pack_str (&pk, self->version);
        pm_pack_str (&pk, "pid");
        msgpack_pack_int64 (&pk, self->agent_pid);
        pm_pack_str (&pk, "config");
        pm_pack_str (&pk, self->config);
        pm_pack_str (&pk, "control");
        pm_pack_str (&pk, self->control);
        pm_pack_str (&pk, "events");
        pm_pack_str (&pk, self->events);
        pm_pack_str (&pk, "started_at");
        msgpack_pack_double (&pk, self->started_at);
        pm_pack_str (&pk, "leases");
        msgpack_pack_array (&pk, self->leases_count);
        for (size_t i = 0; i < self->leases_count; i++)
            msgpack_pack_int64 (&pk, self->leases [i]);
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
                rc = pm_decode_string (dec, val, where, 1, PM_NAME_MAX, false,
                                       &result->name);
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
    S_REPLY_ID,
    S_REPLY_OK,
    S_REPLY_COUNT_
};

static const char *const s_reply_fields [S_REPLY_COUNT_] = {
    "error", "results", "services", "agent", "version", "pid", "config",
    "control", "events", "started_at", "leases", "id", "ok"
};

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
            reply->results = s_alloc (val->via.array.size,
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
            reply->services = s_alloc (val->via.array.size,
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
        case S_REPLY_LEASES:
            if (s_check_list (dec, val, path))
                return -1;
            reply->leases = s_alloc (val->via.array.size, sizeof (int64_t));
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
    }
    return 0;
}

pm_err_t
pm_reply_decode (const void *data, size_t size, pm_reply_t **reply_p,
                 char *err, size_t errlen)
{
    char spare [1];
    if (!err || errlen == 0) {
        err = spare;
        errlen = sizeof spare;
    }
    err [0] = 0;
    *reply_p = NULL;
    pm_decoder_t dec = { err, errlen, PM_OK };
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
