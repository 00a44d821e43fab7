/*  pm_msg.c - requests on the wire (see pm_proto.h)

    Owns: pm_request_t, its constructor and helpers, and its msgpack
    encoding and validating decoding, exactly as PROTOCOL.md section 3
    describes them: which command takes which argument, of which type.

    Leaves to others: replies (pm_reply.c), status records and published
    messages (pm_record.c), the byte-level frame checks and field helpers
    (pm_frame.c), and every semantic rule (names or all, unknown services,
    ...), which the agent applies to the decoded request.
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    S_ARG_FOR,
    S_ARG_AGENT,
    S_ARG_AGENTS,
    S_ARG_COUNT_
};

static const char *const s_arg_names [S_ARG_COUNT_] = {
    "names", "all", "with_dependents", "wait", "timeout", "signal", "tail",
    "since", "pid", "for", "agent", "agents"
};

#define S_BIT(arg) (1u << (arg))

static const unsigned s_cmd_args [PM_CMD_COUNT_] = {
    [PM_CMD_HELLO]    = S_BIT (S_ARG_AGENT),
    [PM_CMD_STATUS]   = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_AGENTS),
    [PM_CMD_START]    = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WAIT) | S_BIT (S_ARG_TIMEOUT)
                      | S_BIT (S_ARG_AGENTS),
    [PM_CMD_STOP]     = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WITH_DEPENDENTS) | S_BIT (S_ARG_WAIT)
                      | S_BIT (S_ARG_TIMEOUT) | S_BIT (S_ARG_AGENTS),
    [PM_CMD_RESTART]  = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_WITH_DEPENDENTS) | S_BIT (S_ARG_WAIT)
                      | S_BIT (S_ARG_TIMEOUT) | S_BIT (S_ARG_AGENTS),
    [PM_CMD_SIGNAL]   = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_SIGNAL) | S_BIT (S_ARG_AGENTS),
    [PM_CMD_SHUTDOWN] = S_BIT (S_ARG_AGENT),
    [PM_CMD_LOGS]     = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_TAIL)
                      | S_BIT (S_ARG_SINCE) | S_BIT (S_ARG_AGENTS),
    [PM_CMD_RELOAD]   = S_BIT (S_ARG_AGENT),
    [PM_CMD_LEASE]    = S_BIT (S_ARG_PID) | S_BIT (S_ARG_AGENT),
    [PM_CMD_WAIT]     = S_BIT (S_ARG_NAMES) | S_BIT (S_ARG_ALL)
                      | S_BIT (S_ARG_FOR) | S_BIT (S_ARG_TIMEOUT)
                      | S_BIT (S_ARG_AGENTS),
};

//  Arguments a command cannot do without.
static const unsigned s_cmd_required [PM_CMD_COUNT_] = {
    [PM_CMD_SIGNAL] = S_BIT (S_ARG_SIGNAL),
    [PM_CMD_LEASE]  = S_BIT (S_ARG_PID),
    [PM_CMD_WAIT]   = S_BIT (S_ARG_FOR),
};

//  The largest process id the protocol carries (pid_t is an int).
#define S_PID_MAX INT_MAX

pm_request_t *
pm_request_new (pm_cmd_t cmd, uint64_t id)
{
    pm_request_t *self = pm_alloc (1, sizeof *self);
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
    for (size_t i = 0; i < self->agents_count; i++)
        free (self->agents [i]);
    free (self->agents);
    free (self->agent);
    free (self);
    *self_p = NULL;
}

int
pm_request_add_name (pm_request_t *self, const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > PM_TARGET_MAX || self->names_count >= PM_NAMES_MAX)
        return -1;
    self->names = pm_grow (self->names, self->names_count, sizeof (char *));
    self->names [self->names_count++] = pm_strdup (name);
    return 0;
}

int
pm_request_add_agent (pm_request_t *self, const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > PM_NAME_MAX || self->agents_count >= PM_NAMES_MAX)
        return -1;
    self->agents = pm_grow (self->agents, self->agents_count,
                            sizeof (char *));
    self->agents [self->agents_count++] = pm_strdup (name);
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
        case S_ARG_FOR:             return true;
        case S_ARG_AGENT:           return self->agent != NULL;
        case S_ARG_AGENTS:          return self->agents_count > 0;
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
            case S_ARG_FOR:
                pm_pack_str (&pk, pm_state_name (self->wait_for));
                break;
            case S_ARG_AGENT:
                pm_pack_str (&pk, self->agent);
                break;
            case S_ARG_AGENTS:
                msgpack_pack_array (&pk, self->agents_count);
                for (size_t i = 0; i < self->agents_count; i++)
                    pm_pack_str (&pk, self->agents [i]);
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

//  The states `wait` can wait for; "ready" is running (a service is
//  running exactly when its readiness is confirmed).
static int
s_decode_for (pm_decoder_t *dec, const msgpack_object *obj, pm_state_t *state)
{
    char text [16];
    if (s_small_string (obj, text, sizeof text) == 0) {
        if (strcmp (text, "ready") == 0) {
            *state = PM_STATE_RUNNING;
            return 0;
        }
        if (pm_state_parse (text, state) == 0
        &&  (*state == PM_STATE_RUNNING || *state == PM_STATE_STOPPED
          || *state == PM_STATE_COMPLETED || *state == PM_STATE_FAILED))
            return 0;
    }
    return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                            "args.for: expected \"running\", \"ready\", "
                            "\"stopped\", \"completed\" or \"failed\"");
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
                //  Bounded so that milliseconds fit everywhere.
                if (rc == 0 && req->timeout > PM_TIMEOUT_MAX)
                    rc = pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                          "args.timeout: expected a number "
                                          "from 0 to %d (a year)",
                                          PM_TIMEOUT_MAX);
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
            case S_ARG_FOR:
                rc = s_decode_for (dec, val, &req->wait_for);
                break;
            case S_ARG_AGENT:
                rc = pm_decode_string (dec, val, "args.agent", 1,
                                       PM_NAME_MAX, false, &req->agent);
                break;
            case S_ARG_AGENTS:
                rc = pm_decode_names (dec, val, "args.agents", &req->agents,
                                      &req->agents_count);
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
    pm_decoder_t dec = pm_decoder_start (err, errlen, spare);
    *req_p = NULL;
    if (id)
        *id = 0;
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
