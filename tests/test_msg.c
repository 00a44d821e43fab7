/*  test_msg.c - unit tests of libpmproto's messages (pm_names.c,
    pm_msg.c, pm_reply.c, pm_record.c, pm_frame.c, pm_json.c)

    Round-trips every request, reply and event; feeds the decoders every
    kind of malformed frame (not msgpack, truncated at every length,
    trailing bytes, wrong types, limits, deep nesting, random bytes) and
    checks each gives a clean error with the right code and a message that
    names the field.  Frames for malformed cases are written in a small
    literal notation (s_frame) so each case reads like the wire map.
*/
#include "pm_proto.h"

#include <ctype.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_checks;

#define CHECK(cond) do {                                                   \
    s_checks++;                                                            \
    if (!(cond)) {                                                         \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                 #cond);                                                   \
        exit (1);                                                          \
    }                                                                      \
} while (0)

//  Checks from a helper report the caller's line.
#define CHECK_AT(line, cond, ...) do {                                     \
    s_checks++;                                                            \
    if (!(cond)) {                                                         \
        fprintf (stderr, "%s:%d: check failed: %s: ", __FILE__, line,      \
                 #cond);                                                   \
        fprintf (stderr, __VA_ARGS__);                                     \
        fprintf (stderr, "\n");                                            \
        exit (1);                                                          \
    }                                                                      \
} while (0)

static bool
s_streq (const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp (a, b) == 0;
}

/* ------------------------------------------------------------------ */
/*  A literal notation for frames                                      */
/* ------------------------------------------------------------------ */

/*  { k: v, ... }  [ v, ... ]  'text' (\xNN, \\, \' escapes)  b'bytes' (bin)
    f'1.5' (float32)  123  -5  1.5  true false nil nan inf -inf, and bare
    words ([A-Za-z_][A-Za-z0-9_-]*) as strings.  "%" directives are
    expanded with printf first. */

typedef struct {
    const char *text;
    msgpack_packer *pk;
} s_lit_t;

static void
s_lit_skip (s_lit_t *lit)
{
    while (*lit->text == ' ')
        lit->text++;
}

static size_t
s_lit_quoted (s_lit_t *lit, char *out)
{
    //  lit->text is at the opening quote.
    const char *p = lit->text + 1;
    size_t n = 0;
    while (*p && *p != '\'') {
        if (*p == '\\' && p [1] == 'x') {
            char hex [3] = { p [2], p [3], 0 };
            out [n++] = (char) strtol (hex, NULL, 16);
            p += 4;
        }
        else
        if (*p == '\\') {
            out [n++] = p [1];
            p += 2;
        }
        else
            out [n++] = *p++;
    }
    if (*p != '\'') {
        fprintf (stderr, "test literal: unterminated string\n");
        exit (2);
    }
    lit->text = p + 1;
    return n;
}

static void
s_lit_value (s_lit_t *lit)
{
    s_lit_skip (lit);
    const char *p = lit->text;
    msgpack_packer *pk = lit->pk;
    if (*p == '{' || *p == '[') {
        //  Count the elements first: pack the children into a scratch
        //  buffer, then the header and the children into the real one.
        bool map = *p == '{';
        char close = map ? '}' : ']';
        msgpack_sbuffer inner;
        msgpack_sbuffer_init (&inner);
        msgpack_packer inner_pk;
        msgpack_packer_init (&inner_pk, &inner, msgpack_sbuffer_write);
        s_lit_t sub = { p + 1, &inner_pk };
        size_t count = 0;
        s_lit_skip (&sub);
        while (*sub.text != close) {
            s_lit_value (&sub);
            if (map) {
                s_lit_skip (&sub);
                if (*sub.text++ != ':') {
                    fprintf (stderr, "test literal: expected ':'\n");
                    exit (2);
                }
                s_lit_value (&sub);
            }
            count++;
            s_lit_skip (&sub);
            if (*sub.text == ',')
                sub.text++;
            s_lit_skip (&sub);
        }
        lit->text = sub.text + 1;
        if (map)
            msgpack_pack_map (pk, count);
        else
            msgpack_pack_array (pk, count);
        msgpack_pack_str_body (pk, inner.data, inner.size);  //  raw bytes
        msgpack_sbuffer_destroy (&inner);
        return;
    }
    if (*p == '\'' || ((*p == 'b' || *p == 'f') && p [1] == '\'')) {
        char kind = *p == '\'' ? 's' : *p;
        if (kind != 's')
            lit->text++;
        char *buf = malloc (strlen (lit->text) + 1);
        size_t n = s_lit_quoted (lit, buf);
        if (kind == 's') {
            msgpack_pack_str (pk, n);
            msgpack_pack_str_body (pk, buf, n);
        }
        else
        if (kind == 'b') {
            msgpack_pack_bin (pk, n);
            msgpack_pack_bin_body (pk, buf, n);
        }
        else {
            buf [n] = 0;
            msgpack_pack_float (pk, strtof (buf, NULL));
        }
        free (buf);
        return;
    }
    if (*p == '-' || isdigit ((unsigned char) *p)) {
        if (strncmp (p, "-inf", 4) == 0) {
            msgpack_pack_double (pk, -INFINITY);
            lit->text += 4;
            return;
        }
        char *end;
        size_t len = strspn (p, "-+0123456789.eE");
        char number [64];
        snprintf (number, sizeof number, "%.*s", (int) len, p);
        if (strpbrk (number, ".eE"))
            msgpack_pack_double (pk, strtod (number, &end));
        else
        if (*number == '-')
            msgpack_pack_int64 (pk, strtoll (number, &end, 10));
        else
            msgpack_pack_uint64 (pk, strtoull (number, &end, 10));
        lit->text += len;
        return;
    }
    size_t len = 0;
    while (isalnum ((unsigned char) p [len]) || p [len] == '_'
       ||  p [len] == '-')
        len++;
    if (len == 0) {
        fprintf (stderr, "test literal: unexpected '%s'\n", p);
        exit (2);
    }
    lit->text += len;
    if (len == 4 && strncmp (p, "true", 4) == 0)
        msgpack_pack_true (pk);
    else
    if (len == 5 && strncmp (p, "false", 5) == 0)
        msgpack_pack_false (pk);
    else
    if (len == 3 && strncmp (p, "nil", 3) == 0)
        msgpack_pack_nil (pk);
    else
    if (len == 3 && strncmp (p, "nan", 3) == 0)
        msgpack_pack_double (pk, NAN);
    else
    if (len == 3 && strncmp (p, "inf", 3) == 0)
        msgpack_pack_double (pk, INFINITY);
    else {
        msgpack_pack_str (pk, len);
        msgpack_pack_str_body (pk, p, len);
    }
}

static char *
s_frame (size_t *size, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static char *
s_frame (size_t *size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text;
    if (vasprintf (&text, fmt, args) < 0)
        abort ();
    va_end (args);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    s_lit_t lit = { text, &pk };
    s_lit_value (&lit);
    s_lit_skip (&lit);
    if (*lit.text) {
        fprintf (stderr, "test literal: trailing '%s'\n", lit.text);
        exit (2);
    }
    free (text);
    *size = sbuf.size;
    return msgpack_sbuffer_release (&sbuf);
}

//  A string of n copies of c, for limits (caller frees).
static char *
s_repeat (char c, size_t n)
{
    char *text = malloc (n + 1);
    memset (text, c, n);
    text [n] = 0;
    return text;
}

/* ------------------------------------------------------------------ */
/*  Expectations                                                       */
/* ------------------------------------------------------------------ */

//  Decodes a request frame given in literal notation and expects code,
//  a message containing part, and the id the decoder reports.
static void
s_expect_req (int line, pm_err_t code, const char *part, uint64_t want_id,
              const char *spec)
{
    size_t size;
    char *data = s_frame (&size, "%s", spec);
    pm_request_t *req = (pm_request_t *) 1;
    uint64_t id = 12345;
    char err [256];
    memset (err, 'x', sizeof err);
    pm_err_t rc = pm_request_decode (data, size, &req, &id, err, sizeof err);
    CHECK_AT (line, rc == code, "%s: got %s (%s), want %s", spec,
              pm_err_name (rc), err, pm_err_name (code));
    CHECK_AT (line, memchr (err, 0, sizeof err) != NULL, "%s", spec);
    if (code == PM_OK) {
        CHECK_AT (line, req != NULL, "%s", spec);
        pm_request_destroy (&req);
    }
    else {
        CHECK_AT (line, req == NULL, "%s", spec);
        CHECK_AT (line, strstr (err, part) != NULL,
                  "%s: message '%s' lacks '%s'", spec, err, part);
    }
    CHECK_AT (line, id == want_id, "%s: id %llu, want %llu", spec,
              (unsigned long long) id, (unsigned long long) want_id);
    free (data);
}

#define EXPECT_REQ(code, part, id, spec) \
    s_expect_req (__LINE__, code, part, id, spec)

static void
s_expect_reply (int line, pm_err_t code, const char *part, const char *spec)
{
    size_t size;
    char *data = s_frame (&size, "%s", spec);
    pm_reply_t *reply = (pm_reply_t *) 1;
    char err [256];
    pm_err_t rc = pm_reply_decode (data, size, &reply, err, sizeof err);
    CHECK_AT (line, rc == code, "%s: got %s (%s), want %s", spec,
              pm_err_name (rc), err, pm_err_name (code));
    if (code == PM_OK)
        pm_reply_destroy (&reply);
    else {
        CHECK_AT (line, reply == NULL, "%s", spec);
        CHECK_AT (line, strstr (err, part) != NULL,
                  "%s: message '%s' lacks '%s'", spec, err, part);
    }
    free (data);
}

#define EXPECT_REPLY(code, part, spec) \
    s_expect_reply (__LINE__, code, part, spec)

static void
s_expect_event (int line, pm_err_t code, const char *part, const char *spec)
{
    size_t size;
    char *data = s_frame (&size, "%s", spec);
    pm_event_t *event = (pm_event_t *) 1;
    char err [256];
    pm_err_t rc = pm_event_decode (data, size, &event, err, sizeof err);
    CHECK_AT (line, rc == code, "%s: got %s (%s), want %s", spec,
              pm_err_name (rc), err, pm_err_name (code));
    if (code == PM_OK)
        pm_event_destroy (&event);
    else {
        CHECK_AT (line, event == NULL, "%s", spec);
        CHECK_AT (line, strstr (err, part) != NULL,
                  "%s: message '%s' lacks '%s'", spec, err, part);
    }
    free (data);
}

#define EXPECT_EVENT(code, part, spec) \
    s_expect_event (__LINE__, code, part, spec)

//  Runs every decoder and the JSON renderer on raw bytes; they must all
//  return (the sanitizers and valgrind catch the rest).  Returns how many
//  decoders accepted the bytes.
static int
s_feed_all (const void *data, size_t size)
{
    int accepted = 0;
    char err [128];
    uint64_t id;
    pm_request_t *req = NULL;
    if (pm_request_decode (data, size, &req, &id, err, sizeof err) == PM_OK)
        accepted++;
    else
        CHECK (req == NULL && strlen (err) > 0);
    pm_request_destroy (&req);
    pm_reply_t *reply = NULL;
    if (pm_reply_decode (data, size, &reply, err, sizeof err) == PM_OK)
        accepted++;
    else
        CHECK (reply == NULL && strlen (err) > 0);
    pm_reply_destroy (&reply);
    pm_event_t *event = NULL;
    if (pm_event_decode (data, size, &event, err, sizeof err) == PM_OK)
        accepted++;
    else
        CHECK (event == NULL && strlen (err) > 0);
    pm_event_destroy (&event);
    free (pm_json_from_msgpack (data, size));
    return accepted;
}

//  Every proper prefix of a valid frame is a clean bad-request for every
//  decoder; one byte more is "trailing bytes".
static void
s_check_truncations (int line, const char *data, size_t size)
{
    for (size_t len = 0; len < size; len++) {
        char err [256];
        uint64_t id;
        pm_request_t *req = NULL;
        pm_err_t rc = pm_request_decode (data, len, &req, &id, err,
                                         sizeof err);
        CHECK_AT (line, rc == PM_ERR_BAD_REQUEST && !req,
                  "request cut at %zu of %zu: %s", len, size, err);
        pm_reply_t *reply = NULL;
        rc = pm_reply_decode (data, len, &reply, err, sizeof err);
        CHECK_AT (line, rc == PM_ERR_BAD_REQUEST && !reply,
                  "reply cut at %zu of %zu: %s", len, size, err);
        pm_event_t *event = NULL;
        rc = pm_event_decode (data, len, &event, err, sizeof err);
        CHECK_AT (line, rc == PM_ERR_BAD_REQUEST && !event,
                  "event cut at %zu of %zu: %s", len, size, err);
        char *json = pm_json_from_msgpack (data, len);
        CHECK_AT (line, json == NULL, "json cut at %zu", len);
    }
    char *longer = malloc (size + 1);
    memcpy (longer, data, size);
    longer [size] = (char) 0xc0;
    char err [256];
    uint64_t id;
    pm_request_t *req = NULL;
    pm_reply_t *reply = NULL;
    pm_event_t *event = NULL;
    CHECK_AT (line, pm_request_decode (longer, size + 1, &req, &id, err,
                                       sizeof err) == PM_ERR_BAD_REQUEST
              && strstr (err, "trailing"), "%s", err);
    CHECK_AT (line, pm_reply_decode (longer, size + 1, &reply, err,
                                     sizeof err) == PM_ERR_BAD_REQUEST
              && strstr (err, "trailing"), "%s", err);
    CHECK_AT (line, pm_event_decode (longer, size + 1, &event, err,
                                     sizeof err) == PM_ERR_BAD_REQUEST
              && strstr (err, "trailing"), "%s", err);
    CHECK_AT (line, pm_json_from_msgpack (longer, size + 1) == NULL, "json");
    free (longer);
}

/* ------------------------------------------------------------------ */
/*  Names                                                              */
/* ------------------------------------------------------------------ */

static void
test_names (void)
{
    for (int i = 0; i < PM_STATE_COUNT_; i++) {
        pm_state_t state;
        CHECK (pm_state_parse (pm_state_name (i), &state) == 0);
        CHECK ((int) state == i);
    }
    CHECK (s_streq (pm_state_name (PM_STATE_RUNNING), "running"));
    CHECK (s_streq (pm_state_name (PM_STATE_BACKOFF), "backoff"));
    CHECK (s_streq (pm_state_name (PM_STATE_COUNT_), "?"));
    CHECK (s_streq (pm_state_name ((pm_state_t) -1), "?"));
    pm_state_t state;
    CHECK (pm_state_parse ("Running", &state) == -1);
    CHECK (pm_state_parse ("", &state) == -1);
    CHECK (pm_state_parse (NULL, &state) == -1);

    static const char *cmds [] = { "hello", "status", "start", "stop",
        "restart", "signal", "shutdown", "logs", "reload", "lease", "wait",
        "agents" };
    for (int i = 0; i < PM_CMD_COUNT_; i++) {
        pm_cmd_t cmd;
        CHECK (s_streq (pm_cmd_name (i), cmds [i]));
        CHECK (pm_cmd_parse (cmds [i], &cmd) == 0 && (int) cmd == i);
    }
    pm_cmd_t cmd;
    CHECK (pm_cmd_parse ("STATUS", &cmd) == -1);
    CHECK (s_streq (pm_cmd_name (PM_CMD_COUNT_), "?"));

    pm_wait_t wait;
    CHECK (pm_wait_parse ("none", &wait) == 0 && wait == PM_WAIT_NONE);
    CHECK (pm_wait_parse ("started", &wait) == 0 && wait == PM_WAIT_STARTED);
    CHECK (pm_wait_parse ("running", &wait) == 0 && wait == PM_WAIT_RUNNING);
    CHECK (pm_wait_parse ("stopped", &wait) == 0 && wait == PM_WAIT_STOPPED);
    CHECK (pm_wait_parse ("default", &wait) == -1);
    CHECK (pm_wait_parse ("ready", &wait) == -1);
    CHECK (s_streq (pm_wait_name (PM_WAIT_STOPPED), "stopped"));
    CHECK (s_streq (pm_wait_name ((pm_wait_t) 99), "?"));

    pm_cond_t cond;
    CHECK (pm_cond_parse ("started", &cond) == 0 && cond == PM_COND_STARTED);
    CHECK (pm_cond_parse ("ready", &cond) == 0 && cond == PM_COND_READY);
    CHECK (pm_cond_parse ("completed", &cond) == 0
           && cond == PM_COND_COMPLETED);
    CHECK (pm_cond_parse ("running", &cond) == -1);
    CHECK (s_streq (pm_cond_name (PM_COND_READY), "ready"));
    CHECK (s_streq (pm_cond_name ((pm_cond_t) 3), "?"));

    static const char *errs [] = { "ok", "bad-request", "too-large",
        "bad-version", "unknown-command", "unknown-service", "not-running",
        "failed", "timeout", "shutting-down", "bad-signal", "bad-config",
        "busy", "internal", "unauthorised", "unknown-agent",
        "agent-unreachable", "ambiguous" };
    for (int i = 1; i < PM_ERR_COUNT_; i++) {
        pm_err_t err;
        CHECK (s_streq (pm_err_name (i), errs [i]));
        CHECK (pm_err_parse (errs [i], &err) == 0 && (int) err == i);
    }
    pm_err_t err;
    CHECK (pm_err_parse ("ok", &err) == -1);
    CHECK (s_streq (pm_err_name (PM_ERR_COUNT_), "?"));

    pm_stream_t stream;
    CHECK (s_streq (pm_stream_name (PM_STREAM_OUT), "out"));
    CHECK (s_streq (pm_stream_name (PM_STREAM_ERR), "err"));
    CHECK (pm_stream_parse ("err", &stream) == 0 && stream == PM_STREAM_ERR);
    CHECK (pm_stream_parse ("stderr", &stream) == -1);
}

static void
test_signals (void)
{
    int signum = 0;
    CHECK (pm_signal_parse ("SIGTERM", &signum) == 0 && signum == SIGTERM);
    CHECK (pm_signal_parse ("TERM", &signum) == 0 && signum == SIGTERM);
    CHECK (pm_signal_parse ("15", &signum) == 0 && signum == 15);
    CHECK (pm_signal_parse ("SIGKILL", &signum) == 0 && signum == SIGKILL);
    CHECK (pm_signal_parse ("HUP", &signum) == 0 && signum == SIGHUP);
    CHECK (pm_signal_parse ("SIGUSR2", &signum) == 0 && signum == SIGUSR2);
    CHECK (pm_signal_parse ("SIGIOT", &signum) == 0 && signum == SIGABRT);
    CHECK (pm_signal_parse ("CLD", &signum) == 0 && signum == SIGCHLD);
    CHECK (pm_signal_parse ("1", &signum) == 0 && signum == 1);
    CHECK (pm_signal_parse ("64", &signum) == 0 && signum == 64);
    CHECK (pm_signal_parse ("40", &signum) == 0 && signum == 40);
    signum = -7;
    CHECK (pm_signal_parse ("term", &signum) == -1);
    CHECK (pm_signal_parse ("sigterm", &signum) == -1);
    CHECK (pm_signal_parse ("SIGterm", &signum) == -1);
    CHECK (pm_signal_parse ("SIGFOO", &signum) == -1);
    CHECK (pm_signal_parse ("SIG", &signum) == -1);
    CHECK (pm_signal_parse ("SIGSIGTERM", &signum) == -1);
    CHECK (pm_signal_parse ("0", &signum) == -1);
    CHECK (pm_signal_parse ("65", &signum) == -1);
    CHECK (pm_signal_parse ("015", &signum) == -1);
    CHECK (pm_signal_parse ("-15", &signum) == -1);
    CHECK (pm_signal_parse ("+15", &signum) == -1);
    CHECK (pm_signal_parse (" 15", &signum) == -1);
    CHECK (pm_signal_parse ("15 ", &signum) == -1);
    CHECK (pm_signal_parse ("99999999999999999999", &signum) == -1);
    CHECK (pm_signal_parse ("", &signum) == -1);
    CHECK (pm_signal_parse (NULL, &signum) == -1);
    CHECK (signum == -7);

    CHECK (s_streq (pm_signal_name (SIGTERM), "SIGTERM"));
    CHECK (s_streq (pm_signal_name (SIGINT), "SIGINT"));
    CHECK (s_streq (pm_signal_name (SIGABRT), "SIGABRT"));
    CHECK (s_streq (pm_signal_name (SIGCHLD), "SIGCHLD"));
    CHECK (pm_signal_name (0) == NULL);
    CHECK (pm_signal_name (-1) == NULL);
    CHECK (pm_signal_name (40) == NULL);
    CHECK (pm_signal_name (65) == NULL);
    //  Every named signal parses back, with and without its prefix.
    int named = 0;
    for (int n = 1; n <= 64; n++) {
        const char *name = pm_signal_name (n);
        if (!name)
            continue;
        named++;
        CHECK (strncmp (name, "SIG", 3) == 0);
        CHECK (pm_signal_parse (name, &signum) == 0 && signum == n);
        CHECK (pm_signal_parse (name + 3, &signum) == 0 && signum == n);
    }
    CHECK (named >= 30);
}

static void
test_topics (void)
{
    char buf [64];
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_STATE, "demo", "db",
                            PM_STREAM_OUT) == 14);
    CHECK (s_streq (buf, "state/demo/db/"));
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_LOG, "demo", "db",
                            PM_STREAM_OUT) == 16);
    CHECK (s_streq (buf, "log/demo/db/out/"));
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_LOG, "demo", "db",
                            PM_STREAM_ERR) == 16);
    CHECK (s_streq (buf, "log/demo/db/err/"));
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_AGENT, "demo", NULL,
                            PM_STREAM_OUT) == 11);
    CHECK (s_streq (buf, "agent/demo/"));
    //  Exactly fitting, one byte short, and no room at all.
    CHECK (pm_topic_format (buf, 15, PM_EVENT_STATE, "demo", "db",
                            PM_STREAM_OUT) == 14);
    CHECK (pm_topic_format (buf, 14, PM_EVENT_STATE, "demo", "db",
                            PM_STREAM_OUT) == -1);
    CHECK (pm_topic_format (buf, 0, PM_EVENT_AGENT, "demo", NULL,
                            PM_STREAM_OUT) == -1);
    char *longname = s_repeat ('a', 100);
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_LOG, "demo", longname,
                            PM_STREAM_OUT) == -1);
    free (longname);
    //  The longest topic there is: two names at their limit.
    char *maxname = s_repeat ('m', PM_NAME_MAX);
    char maxbuf [PM_TOPIC_MAX + 1];
    CHECK (pm_topic_format (maxbuf, sizeof maxbuf, PM_EVENT_LOG, maxname,
                            maxname, PM_STREAM_ERR) == PM_TOPIC_MAX);
    CHECK (pm_topic_format (maxbuf, sizeof maxbuf, PM_EVENT_STATE, maxname,
                            maxname, PM_STREAM_OUT) < PM_TOPIC_MAX);
    free (maxname);
    //  Names that would break prefix matching, or are missing.
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_STATE, "de/mo", "db",
                            PM_STREAM_OUT) == -1);
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_STATE, "demo", "",
                            PM_STREAM_OUT) == -1);
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_STATE, "demo", NULL,
                            PM_STREAM_OUT) == -1);
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_AGENT, NULL, NULL,
                            PM_STREAM_OUT) == -1);
    CHECK (pm_topic_format (buf, sizeof buf, PM_EVENT_LOG, "demo", "db",
                            (pm_stream_t) 7) == -1);
    CHECK (pm_topic_format (buf, sizeof buf, (pm_event_kind_t) 9, "demo",
                            "db", PM_STREAM_OUT) == -1);
}

/* ------------------------------------------------------------------ */
/*  Requests                                                           */
/* ------------------------------------------------------------------ */

static pm_request_t *
s_request_round_trip (const pm_request_t *req)
{
    char *data;
    size_t size;
    CHECK (pm_request_encode (req, &data, &size) == 0);
    pm_request_t *copy = NULL;
    uint64_t id = 0;
    char err [256];
    pm_err_t rc = pm_request_decode (data, size, &copy, &id, err, sizeof err);
    if (rc != PM_OK)
        fprintf (stderr, "decode: %s\n", err);
    CHECK (rc == PM_OK);
    CHECK (copy && id == req->id && copy->id == req->id);
    CHECK (copy->cmd == req->cmd);
    free (data);
    return copy;
}

static void
test_request_round_trip (void)
{
    //  Every command with no optional argument set.
    for (int c = 0; c < PM_CMD_COUNT_; c++) {
        pm_request_t *req = pm_request_new (c, 1000 + c);
        req->signum = SIGTERM;      //  required by signal
        req->pid = 1;               //  required by lease
        req->wait_for = PM_STATE_RUNNING;   //  required by wait
        pm_request_t *copy = s_request_round_trip (req);
        CHECK (copy->names_count == 0 && !copy->names && !copy->all);
        CHECK (copy->wait == PM_WAIT_DEFAULT && copy->timeout == 0);
        pm_request_destroy (&copy);
        pm_request_destroy (&req);
        CHECK (req == NULL);
    }
    pm_request_t *req = pm_request_new (PM_CMD_START, UINT64_MAX);
    CHECK (pm_request_add_name (req, "db") == 0);
    CHECK (pm_request_add_name (req, "api") == 0);
    CHECK (pm_request_add_name (req, "worker") == 0);
    req->all = true;                //  the agent refuses both; we carry both
    req->wait = PM_WAIT_STARTED;
    req->timeout = 2.5;
    pm_request_t *copy = s_request_round_trip (req);
    CHECK (copy->names_count == 3);
    CHECK (s_streq (copy->names [0], "db") && s_streq (copy->names [2],
                                                       "worker"));
    CHECK (copy->all && copy->wait == PM_WAIT_STARTED);
    CHECK (copy->timeout == 2.5);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_STOP, 7);
    pm_request_add_name (req, "db");
    req->with_dependents = true;
    req->wait = PM_WAIT_STOPPED;
    req->timeout = 10;
    copy = s_request_round_trip (req);
    CHECK (copy->with_dependents && copy->wait == PM_WAIT_STOPPED);
    CHECK (copy->timeout == 10 && copy->names_count == 1);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_RESTART, 8);
    req->all = true;
    req->with_dependents = true;
    req->wait = PM_WAIT_NONE;
    copy = s_request_round_trip (req);
    CHECK (copy->all && copy->with_dependents && copy->wait == PM_WAIT_NONE);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_SIGNAL, 9);
    pm_request_add_name (req, "api");
    req->signum = SIGUSR1;
    copy = s_request_round_trip (req);
    CHECK (copy->signum == SIGUSR1 && copy->names_count == 1);
    pm_request_destroy (&copy);
    req->signum = 40;               //  no name: travels as a number
    copy = s_request_round_trip (req);
    CHECK (copy->signum == 40);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_LOGS, 10);
    pm_request_add_name (req, "db");
    req->has_tail = true;
    req->tail = 0;
    req->has_since = true;
    req->since = UINT64_MAX;
    copy = s_request_round_trip (req);
    CHECK (copy->has_tail && copy->tail == 0);
    CHECK (copy->has_since && copy->since == UINT64_MAX);
    pm_request_destroy (&copy);
    req->has_tail = false;
    req->has_since = false;
    copy = s_request_round_trip (req);
    CHECK (!copy->has_tail && !copy->has_since);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_LEASE, 11);
    req->pid = 4242;
    copy = s_request_round_trip (req);
    CHECK (copy->pid == 4242);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    req = pm_request_new (PM_CMD_STATUS, 12);
    for (int i = 0; i < PM_NAMES_MAX; i++) {
        char name [16];
        snprintf (name, sizeof name, "s%d", i);
        CHECK (pm_request_add_name (req, name) == 0);
    }
    CHECK (pm_request_add_name (req, "one-too-many") == -1);
    copy = s_request_round_trip (req);
    CHECK (copy->names_count == PM_NAMES_MAX);
    CHECK (s_streq (copy->names [PM_NAMES_MAX - 1], "s4095"));
    pm_request_destroy (&copy);
    pm_request_destroy (&req);

    //  add_name refuses what the decoder would refuse: a target may be
    //  service@agent, each part a name.
    req = pm_request_new (PM_CMD_STATUS, 13);
    char *longname = s_repeat ('n', PM_TARGET_MAX);
    CHECK (pm_request_add_name (req, longname) == 0);
    longname [0] = 'm';
    free (longname);
    longname = s_repeat ('n', PM_TARGET_MAX + 1);
    CHECK (pm_request_add_name (req, longname) == -1);
    CHECK (pm_request_add_name (req, "") == -1);
    CHECK (pm_request_add_name (req, NULL) == -1);
    CHECK (req->names_count == 1);
    copy = s_request_round_trip (req);
    CHECK (strlen (copy->names [0]) == PM_TARGET_MAX);
    pm_request_destroy (&copy);
    pm_request_destroy (&req);
    free (longname);

    //  Arguments a command does not take are not sent.
    req = pm_request_new (PM_CMD_HELLO, 14);
    req->all = true;
    req->timeout = 3;
    copy = s_request_round_trip (req);
    CHECK (!copy->all && copy->timeout == 0);
    pm_request_destroy (&copy);
    //  An invalid command or timeout is not encoded.
    char *data;
    size_t size;
    req->cmd = PM_CMD_COUNT_;
    CHECK (pm_request_encode (req, &data, &size) == -1);
    req->cmd = PM_CMD_START;
    req->timeout = -1;
    CHECK (pm_request_encode (req, &data, &size) == -1);
    req->timeout = NAN;
    CHECK (pm_request_encode (req, &data, &size) == -1);
    pm_request_destroy (&req);
    pm_request_destroy (&req);      //  NULL: nothing
    pm_request_destroy (NULL);
}

static void
test_request_decode_valid (void)
{
    EXPECT_REQ (PM_OK, "", 1, "{v: 1, id: 1, cmd: hello}");
    EXPECT_REQ (PM_OK, "", 1, "{cmd: hello, id: 1, v: 1, args: {}}");
    EXPECT_REQ (PM_OK, "", 0, "{v: 1, id: 0, cmd: status}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: start, args: {all: true,"
                " wait: none, timeout: 0}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: start, args: {timeout: 3}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: start, "
                "args: {timeout: f'0.5'}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: stop, args: {names: [],"
                " wait: stopped}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: signal, args: {names: [a],"
                " signal: 9}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: signal, args: {all: true,"
                " signal: 'HUP'}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: logs, args: {tail: 10}}");
    EXPECT_REQ (PM_OK, "", 5, "{v: 1, id: 5, cmd: lease, args: {pid: 1}}");

    //  Decoded values, including the default wait and an integer signal.
    size_t size;
    char *data = s_frame (&size, "{v: 1, id: 77, cmd: restart, args: "
                          "{names: ['db', 'api'], with_dependents: true, "
                          "timeout: 4}}");
    pm_request_t *req = NULL;
    char err [256];
    CHECK (pm_request_decode (data, size, &req, NULL, err, sizeof err)
           == PM_OK);
    CHECK (req->cmd == PM_CMD_RESTART && req->id == 77);
    CHECK (req->names_count == 2 && s_streq (req->names [1], "api"));
    CHECK (req->with_dependents && !req->all);
    CHECK (req->wait == PM_WAIT_DEFAULT && req->timeout == 4.0);
    pm_request_destroy (&req);
    free (data);
    data = s_frame (&size, "{v: 1, id: 3, cmd: signal, "
                    "args: {signal: 15, names: [x]}}");
    CHECK (pm_request_decode (data, size, &req, NULL, NULL, 0) == PM_OK);
    CHECK (req->signum == SIGTERM);
    pm_request_destroy (&req);
    free (data);
}

static void
test_request_decode_errors (void)
{
    //  Not msgpack, not a map.
    char err [256];
    pm_request_t *req = NULL;
    uint64_t id = 99;
    CHECK (pm_request_decode ("", 0, &req, &id, err, sizeof err)
           == PM_ERR_BAD_REQUEST && !req && id == 0);
    CHECK (pm_request_decode (NULL, 0, &req, &id, err, sizeof err)
           == PM_ERR_BAD_REQUEST);
    CHECK (pm_request_decode ("\xc1", 1, &req, &id, err, sizeof err)
           == PM_ERR_BAD_REQUEST && strstr (err, "0xc1"));
    const char *text = "{\"v\":1,\"id\":2,\"cmd\":\"hello\"}";
    CHECK (pm_request_decode (text, strlen (text), &req, &id, err, sizeof err)
           == PM_ERR_BAD_REQUEST);
    //  The message is always terminated, even in a tiny buffer.
    char tiny [4] = "xxx";
    CHECK (pm_request_decode ("\xc1", 1, &req, &id, tiny, 1)
           == PM_ERR_BAD_REQUEST && tiny [0] == 0);
    CHECK (pm_request_decode ("\xc1", 1, &req, &id, tiny, sizeof tiny)
           == PM_ERR_BAD_REQUEST && strlen (tiny) == 3);

    EXPECT_REQ (PM_ERR_BAD_REQUEST, "expected a map", 0, "[1, 2, 3]");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "expected a map", 0, "'hello'");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "expected a map", 0, "nil");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "expected a map", 0, "42");

    //  v
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "v: required", 4, "{id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_VERSION, "v: protocol version 2", 4,
                "{v: 2, id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_VERSION, "version 0", 4,
                "{v: 0, id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_VERSION, "v:", 4,
                "{v: 2, id: 4, cmd: nonsense, extra: 1}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "v: expected an unsigned integer", 4,
                "{v: '1', id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "v: expected", 4,
                "{v: 1.0, id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "v: expected", 4,
                "{v: -1, id: 4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "v: expected", 4,
                "{v: nil, id: 4, cmd: hello}");

    //  id
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: required", 0, "{v: 1, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: expected an unsigned integer", 0,
                "{v: 1, id: -4, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: expected", 0,
                "{v: 1, id: '4', cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: expected", 0,
                "{v: 1, id: 4.0, cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: expected", 0,
                "{v: 1, id: [4], cmd: hello}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "id: given twice", 5,
                "{v: 1, id: 4, id: 5, cmd: hello}");

    //  cmd
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "cmd: required", 6, "{v: 1, id: 6}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "cmd: expected a string", 6,
                "{v: 1, id: 6, cmd: 3}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "cmd: expected a string", 6,
                "{v: 1, id: 6, cmd: nil}");
    EXPECT_REQ (PM_ERR_UNKNOWN_COMMAND, "cmd: unknown command 'explode'", 6,
                "{v: 1, id: 6, cmd: explode}");
    EXPECT_REQ (PM_ERR_UNKNOWN_COMMAND, "unknown command 'HELLO'", 6,
                "{v: 1, id: 6, cmd: HELLO}");
    EXPECT_REQ (PM_ERR_UNKNOWN_COMMAND, "unknown command ''", 6,
                "{v: 1, id: 6, cmd: ''}");
    EXPECT_REQ (PM_ERR_UNKNOWN_COMMAND, "unknown command 'he?lo'", 6,
                "{v: 1, id: 6, cmd: 'he\\x00lo'}");
    EXPECT_REQ (PM_ERR_UNKNOWN_COMMAND, "unknown command 'xxxxxxxxxx", 6,
                "{v: 1, id: 6, cmd: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                "xxxxxxxxxxxxxxxxxxxxxxxxxx'}");

    //  Top-level keys
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "extra: unknown field", 7,
                "{v: 1, id: 7, cmd: hello, extra: 1}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "keys must be strings", 7,
                "{v: 1, id: 7, cmd: hello, 1: 1}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "cmd: given twice", 7,
                "{v: 1, id: 7, cmd: hello, cmd: status}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "a?b: unknown field", 7,
                "{v: 1, id: 7, cmd: hello, 'a\\x01b': 1}");

    //  args
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args: expected a map", 8,
                "{v: 1, id: 8, cmd: status, args: []}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args: expected a map", 8,
                "{v: 1, id: 8, cmd: status, args: nil}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.colour: unknown argument", 8,
                "{v: 1, id: 8, cmd: status, args: {colour: red}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args: keys must be strings", 8,
                "{v: 1, id: 8, cmd: status, args: {1: red}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.all: not an argument of status", 8,
                "{v: 1, id: 8, cmd: status, args: {all: true}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names: not an argument of hello",
                8, "{v: 1, id: 8, cmd: hello, args: {names: [a]}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.with_dependents: not an argument "
                "of start", 8, "{v: 1, id: 8, cmd: start, "
                "args: {with_dependents: true}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.tail: not an argument of start", 8,
                "{v: 1, id: 8, cmd: start, args: {tail: 1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: not an argument of "
                "signal", 8, "{v: 1, id: 8, cmd: signal, args: {signal: 1, "
                "timeout: 1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: not an argument of logs", 8,
                "{v: 1, id: 8, cmd: logs, args: {pid: 1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: not an argument of shutdown",
                8, "{v: 1, id: 8, cmd: shutdown, args: {wait: none}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.all: not an argument of reload",
                8, "{v: 1, id: 8, cmd: reload, args: {all: true}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names: not an argument of lease",
                8, "{v: 1, id: 8, cmd: lease, args: {pid: 3, names: []}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.all: given twice", 8,
                "{v: 1, id: 8, cmd: start, args: {all: true, all: false}}");

    //  names
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names: expected an array", 9,
                "{v: 1, id: 9, cmd: status, args: {names: db}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names: expected an array", 9,
                "{v: 1, id: 9, cmd: status, args: {names: {a: b}}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names[1]: expected a string", 9,
                "{v: 1, id: 9, cmd: status, args: {names: [a, 1]}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names[0]: expected a string", 9,
                "{v: 1, id: 9, cmd: status, args: {names: [b'a']}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names[0]: expected a string", 9,
                "{v: 1, id: 9, cmd: status, args: {names: [nil]}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names[2]: expected a non-empty", 9,
                "{v: 1, id: 9, cmd: status, args: {names: [a, b, '']}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.names[0]: contains a NUL byte", 9,
                "{v: 1, id: 9, cmd: status, args: {names: ['a\\x00b']}}");
    char *spec;
    //  A name is a target: service, or service@agent (two names and '@').
    char *name = s_repeat ('n', PM_TARGET_MAX);
    if (asprintf (&spec, "{v: 1, id: 9, cmd: status, args: {names: [%s]}}",
                  name) < 0)
        abort ();
    EXPECT_REQ (PM_OK, "", 9, spec);
    free (spec);
    free (name);
    name = s_repeat ('n', PM_TARGET_MAX + 1);
    if (asprintf (&spec, "{v: 1, id: 9, cmd: status, args: {names: [a, %s]}}",
                  name) < 0)
        abort ();
    EXPECT_REQ (PM_ERR_TOO_LARGE, "args.names[1]: 258 bytes, over the limit "
                "of 257", 9, spec);
    free (spec);
    free (name);

    //  More than PM_NAMES_MAX names, built directly.
    for (int extra = 0; extra <= 1; extra++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 4);
        msgpack_pack_str (&pk, 1); msgpack_pack_str_body (&pk, "v", 1);
        msgpack_pack_uint64 (&pk, 1);
        msgpack_pack_str (&pk, 2); msgpack_pack_str_body (&pk, "id", 2);
        msgpack_pack_uint64 (&pk, 10);
        msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "cmd", 3);
        msgpack_pack_str (&pk, 6); msgpack_pack_str_body (&pk, "status", 6);
        msgpack_pack_str (&pk, 4); msgpack_pack_str_body (&pk, "args", 4);
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str (&pk, 5); msgpack_pack_str_body (&pk, "names", 5);
        msgpack_pack_array (&pk, PM_NAMES_MAX + extra);
        for (int i = 0; i < PM_NAMES_MAX + extra; i++) {
            msgpack_pack_str (&pk, 1);
            msgpack_pack_str_body (&pk, "x", 1);
        }
        id = 0;
        pm_err_t rc = pm_request_decode (sbuf.data, sbuf.size, &req, &id,
                                         err, sizeof err);
        if (extra) {
            CHECK (rc == PM_ERR_TOO_LARGE && !req && id == 10);
            CHECK (strstr (err, "args.names: 4097 names, over the limit "
                           "of 4096"));
        }
        else {
            CHECK (rc == PM_OK && req->names_count == PM_NAMES_MAX);
            pm_request_destroy (&req);
        }
        msgpack_sbuffer_destroy (&sbuf);
    }

    //  all, with_dependents
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.all: expected a boolean", 11,
                "{v: 1, id: 11, cmd: start, args: {all: 1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.all: expected a boolean", 11,
                "{v: 1, id: 11, cmd: start, args: {all: 'true'}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.with_dependents: expected a "
                "boolean", 11, "{v: 1, id: 11, cmd: stop, "
                "args: {with_dependents: nil}}");

    //  wait
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected \"none\", "
                "\"started\" or \"running\"", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: stopped}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: restart, args: {wait: stopped}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected \"none\" or "
                "\"stopped\"", 12,
                "{v: 1, id: 12, cmd: stop, args: {wait: running}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: stop, args: {wait: started}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: default}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: forever}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: 1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: ''}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.wait: expected", 12,
                "{v: 1, id: 12, cmd: start, args: {wait: 'RUNNING'}}");

    //  timeout
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: start, args: {timeout: -1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: start, args: {timeout: -0.5}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: start, args: {timeout: nan}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: start, args: {timeout: inf}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: stop, args: {timeout: '5'}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: restart, args: {timeout: nil}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.timeout: expected a number >= 0",
                13, "{v: 1, id: 13, cmd: start, args: {timeout: true}}");

    //  signal
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.signal: required by signal", 14,
                "{v: 1, id: 14, cmd: signal, args: {all: true}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.signal: required by signal", 14,
                "{v: 1, id: 14, cmd: signal}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal 'SIGFOO'",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: SIGFOO}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal 'term'",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: term}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal ''",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: ''}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal number 0",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: 0}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal number 65",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: 65}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal number -9",
                14, "{v: 1, id: 14, cmd: signal, args: {signal: -9}}");
    EXPECT_REQ (PM_ERR_BAD_SIGNAL, "args.signal: unknown signal", 14,
                "{v: 1, id: 14, cmd: signal, args: {signal: "
                "'SIGTERMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.signal: expected a signal name", 14,
                "{v: 1, id: 14, cmd: signal, args: {signal: 9.0}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.signal: expected a signal name", 14,
                "{v: 1, id: 14, cmd: signal, args: {signal: nil}}");

    //  tail, since
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.tail: expected an unsigned", 15,
                "{v: 1, id: 15, cmd: logs, args: {tail: -1}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.tail: expected an unsigned", 15,
                "{v: 1, id: 15, cmd: logs, args: {tail: 1.5}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.since: expected an unsigned", 15,
                "{v: 1, id: 15, cmd: logs, args: {since: '3'}}");

    //  pid
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: required by lease", 16,
                "{v: 1, id: 16, cmd: lease}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: expected a process id", 16,
                "{v: 1, id: 16, cmd: lease, args: {pid: 0}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: expected a process id", 16,
                "{v: 1, id: 16, cmd: lease, args: {pid: -5}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: expected a process id", 16,
                "{v: 1, id: 16, cmd: lease, args: {pid: 4294967296}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.pid: expected a process id", 16,
                "{v: 1, id: 16, cmd: lease, args: {pid: '42'}}");
}

/* ------------------------------------------------------------------ */
/*  Replies                                                            */
/* ------------------------------------------------------------------ */

static void
s_fill_record (pm_record_t *record, const char *name, bool full)
{
    memset (record, 0, sizeof *record);
    record->name = strdup (name);
    record->command = strdup (full ? "postgres -D \"data dir\"" : "");
    record->uptime = -1;
    if (full) {
        record->state = PM_STATE_RUNNING;
        record->pid = 31337;
        record->started_at = 1700000000.25;
        record->state_since = 1700000001.5;
        record->uptime = 12.125;
        record->restarts = 3;
        record->has_exit_code = true;
        record->exit_code = -2;
        record->signal = strdup ("SIGKILL");
        record->ready = true;
        record->error = strdup ("exec: No such file or directory");
        record->deps = calloc (2, sizeof *record->deps);
        record->deps [0].name = strdup ("db");
        record->deps [0].cond = PM_COND_READY;
        record->deps [1].name = strdup ("migrate");
        record->deps [1].cond = PM_COND_COMPLETED;
        record->deps_count = 2;
        record->seq = 99;
        record->next_start = 1700000100.0;
    }
    else {
        record->state = PM_STATE_INACTIVE;
        record->state_since = 1700000000.0;
    }
}

static void
s_check_record (const pm_record_t *a, const pm_record_t *b)
{
    CHECK (s_streq (a->name, b->name));
    CHECK (a->state == b->state);
    CHECK (a->pid == b->pid);
    CHECK (a->started_at == b->started_at);
    CHECK (a->state_since == b->state_since);
    CHECK (a->uptime == b->uptime);
    CHECK (a->restarts == b->restarts);
    CHECK (a->has_exit_code == b->has_exit_code);
    CHECK (!a->has_exit_code || a->exit_code == b->exit_code);
    CHECK (s_streq (a->signal, b->signal));
    CHECK (a->ready == b->ready);
    CHECK (s_streq (a->error, b->error));
    CHECK (a->deps_count == b->deps_count);
    for (size_t i = 0; i < a->deps_count; i++) {
        CHECK (s_streq (a->deps [i].name, b->deps [i].name));
        CHECK (a->deps [i].cond == b->deps [i].cond);
    }
    CHECK (s_streq (a->command, b->command));
    CHECK (a->seq == b->seq);
    CHECK (a->next_start == b->next_start);
}

static pm_reply_t *
s_reply_round_trip (const pm_reply_t *reply, char **data_p, size_t *size_p)
{
    char *data;
    size_t size;
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    pm_reply_t *copy = NULL;
    char err [256];
    pm_err_t rc = pm_reply_decode (data, size, &copy, err, sizeof err);
    if (rc != PM_OK)
        fprintf (stderr, "decode: %s\n", err);
    CHECK (rc == PM_OK && copy);
    CHECK (copy->id == reply->id && copy->ok == reply->ok);
    if (data_p) {
        *data_p = data;
        *size_p = size;
    }
    else
        free (data);
    return copy;
}

static void
test_reply_round_trip (void)
{
    //  A bare success.
    pm_reply_t *reply = pm_reply_new (1);
    pm_reply_t *copy = s_reply_round_trip (reply, NULL, NULL);
    CHECK (copy->ok && copy->err == PM_OK && !copy->message);
    CHECK (!copy->results && !copy->services && !copy->agent);
    pm_reply_destroy (&copy);
    pm_reply_destroy (&reply);
    CHECK (reply == NULL);

    //  Results, with and without notes and errors.
    reply = pm_reply_new (2);
    pm_reply_add_result (reply, "db", true, PM_STATE_RUNNING,
                         "already-running", NULL);
    pm_reply_add_result (reply, "api", false, PM_STATE_FAILED, NULL,
                         "exec ./api: No such file or directory");
    pm_reply_add_result (reply, "worker", true, PM_STATE_STARTING, NULL,
                         NULL);
    pm_reply_set_error (reply, PM_ERR_FAILED, "%d of %d targets failed", 1,
                        3);
    copy = s_reply_round_trip (reply, NULL, NULL);
    CHECK (!copy->ok && copy->err == PM_ERR_FAILED);
    CHECK (s_streq (copy->message, "1 of 3 targets failed"));
    CHECK (copy->results_count == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK (s_streq (copy->results [i].name, reply->results [i].name));
        CHECK (copy->results [i].ok == reply->results [i].ok);
        CHECK (copy->results [i].state == reply->results [i].state);
        CHECK (s_streq (copy->results [i].note, reply->results [i].note));
        CHECK (s_streq (copy->results [i].error, reply->results [i].error));
    }
    pm_reply_destroy (&copy);
    pm_reply_destroy (&reply);

    //  Status: a full record and one with every nil field.
    reply = pm_reply_new (3);
    pm_record_t full, empty;
    s_fill_record (&full, "api", true);
    s_fill_record (&empty, "idle", false);
    //  As a broker qualifies them.
    free (full.name);
    full.name = s_repeat ('a', PM_TARGET_MAX);
    full.agent = strdup ("box1");
    full.instance = strdup ("0a1b");
    pm_reply_add_service (reply, &full);
    pm_reply_add_service (reply, &empty);
    char *data;
    size_t size;
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (copy->services_count == 2);
    s_check_record (&copy->services [0], &full);
    s_check_record (&copy->services [1], &empty);
    CHECK (copy->services [1].pid == 0 && copy->services [1].uptime < 0);
    CHECK (!copy->services [1].has_exit_code && !copy->services [1].signal);
    //  The nil fields are nil on the wire, not absent.
    char *json = pm_json_from_msgpack (data, size);
    CHECK (json && strstr (json, "{\"name\":\"idle\",\"state\":\"inactive\","
                           "\"pid\":null,\"started_at\":null,"
                           "\"state_since\":1700000000.0,\"uptime\":null,"
                           "\"restarts\":0,\"exit_code\":null,"
                           "\"signal\":null,\"ready\":false,\"error\":null,"
                           "\"depends_on\":{},\"command\":\"\",\"seq\":0,"
                           "\"next_start\":null}"));
    CHECK (strstr (json, "\"depends_on\":{\"db\":\"ready\","
                   "\"migrate\":\"completed\"}"));
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_reply_destroy (&copy);
    //  The reply holds copies: the originals can go first.
    pm_record_clear (&full);
    pm_record_clear (&empty);
    CHECK (full.name == NULL && full.deps == NULL && full.deps_count == 0);
    CHECK (s_streq (reply->services [0].deps [1].name, "migrate"));
    pm_record_t twice;
    pm_record_copy (&twice, &reply->services [0]);
    s_check_record (&twice, &reply->services [0]);
    CHECK (twice.name != reply->services [0].name);
    pm_record_clear (&twice);
    pm_record_clear (NULL);
    pm_reply_destroy (&reply);

    //  Hello.
    reply = pm_reply_new (4);
    reply->agent = strdup ("demo-1a2b3c4d");
    reply->version = strdup ("0.1.0");
    reply->agent_pid = 4321;
    reply->config = strdup ("/home/me/proj/pmbus.cfg");
    reply->control = strdup ("ipc:///run/user/1000/pmbus/demo/control.sock");
    reply->events = strdup ("ipc:///run/user/1000/pmbus/demo/events.sock");
    reply->started_at = 1700000000.75;
    reply->instance = strdup ("5f0e");
    reply->leases = calloc (2, sizeof (int64_t));
    reply->leases [0] = 100;
    reply->leases [1] = 200;
    reply->leases_count = 2;
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (s_streq (copy->agent, reply->agent));
    CHECK (s_streq (copy->version, "0.1.0") && copy->agent_pid == 4321);
    CHECK (s_streq (copy->config, reply->config));
    CHECK (s_streq (copy->control, reply->control));
    CHECK (s_streq (copy->events, reply->events));
    CHECK (copy->started_at == 1700000000.75);
    CHECK (s_streq (copy->instance, "5f0e"));
    CHECK (copy->leases_count == 2 && copy->leases [1] == 200);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_reply_destroy (&copy);
    //  An empty lease list is said as one; no list at all is absent.
    reply->leases_count = 0;
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (copy->leases != NULL && copy->leases_count == 0);
    pm_reply_destroy (&copy);
    json = pm_json_from_msgpack (data, size);
    CHECK (json && strstr (json, "\"leases\":[]"));
    free (json);
    free (data);
    free (reply->leases);
    reply->leases = NULL;
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (copy->leases == NULL && copy->leases_count == 0);
    pm_reply_destroy (&copy);
    json = pm_json_from_msgpack (data, size);
    CHECK (json && !strstr (json, "leases"));
    free (json);
    free (data);
    //  Each hello field is optional on its own (status carries leases).
    pm_reply_destroy (&reply);
    reply = pm_reply_new (4);
    reply->leases = calloc (1, sizeof (int64_t));
    reply->leases [0] = 77;
    reply->leases_count = 1;
    reply->services = calloc (1, sizeof (pm_record_t));
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (!copy->agent && !copy->version && copy->agent_pid == 0);
    CHECK (copy->leases_count == 1 && copy->leases [0] == 77);
    CHECK (copy->services != NULL && copy->services_count == 0);
    json = pm_json_from_msgpack (data, size);
    CHECK (s_streq (json, "{\"v\":1,\"id\":4,\"ok\":true,\"services\":[],"
                    "\"leases\":[77]}"));
    free (json);
    free (data);
    pm_reply_destroy (&copy);
    pm_reply_destroy (&reply);

    //  Unknown service, with names.
    reply = pm_reply_new (5);
    pm_reply_set_error (reply, PM_ERR_UNKNOWN_SERVICE, "unknown service%s: %s",
                        "s", "nope, nada");
    pm_reply_add_err_name (reply, "nope");
    pm_reply_add_err_name (reply, "nada");
    copy = s_reply_round_trip (reply, &data, &size);
    CHECK (copy->err == PM_ERR_UNKNOWN_SERVICE);
    CHECK (s_streq (copy->message, "unknown services: nope, nada"));
    CHECK (copy->err_names_count == 2);
    CHECK (s_streq (copy->err_names [0], "nope"));
    CHECK (s_streq (copy->err_names [1], "nada"));
    json = pm_json_from_msgpack (data, size);
    CHECK (s_streq (json, "{\"v\":1,\"id\":5,\"ok\":false,\"error\":{"
                    "\"code\":\"unknown-service\",\"message\":\"unknown "
                    "services: nope, nada\",\"names\":[\"nope\",\"nada\"]}}"));
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_reply_destroy (&copy);
    //  set_error replaces the message and cuts it to PM_TEXT_MAX.
    char *huge = s_repeat ('m', PM_TEXT_MAX + 50);
    pm_reply_set_error (reply, PM_ERR_INTERNAL, "%s", huge);
    free (huge);
    CHECK (strlen (reply->message) == PM_TEXT_MAX);
    copy = s_reply_round_trip (reply, NULL, NULL);
    CHECK (copy->err == PM_ERR_INTERNAL && strlen (copy->message)
           == PM_TEXT_MAX);
    pm_reply_destroy (&copy);
    //  A failure built by hand without a code goes out as "internal".
    reply->err = PM_OK;
    copy = s_reply_round_trip (reply, NULL, NULL);
    CHECK (copy->err == PM_ERR_INTERNAL);
    pm_reply_destroy (&copy);
    pm_reply_destroy (&reply);

    //  Every error code survives the trip.
    for (int code = 1; code < PM_ERR_COUNT_; code++) {
        reply = pm_reply_new (code);
        pm_reply_set_error (reply, code, "code %s", pm_err_name (code));
        copy = s_reply_round_trip (reply, NULL, NULL);
        CHECK ((int) copy->err == code);
        pm_reply_destroy (&copy);
        pm_reply_destroy (&reply);
    }

    //  A record with an over-long command or error is cut, not refused.
    reply = pm_reply_new (6);
    pm_record_t record;
    s_fill_record (&record, "long", false);
    free (record.command);
    record.command = s_repeat ('c', PM_TEXT_MAX + 10);
    //  A multi-byte character straddling the limit is dropped whole.
    memcpy (record.command + PM_TEXT_MAX - 1, "\xc3\xa9", 2);
    pm_reply_add_service (reply, &record);
    pm_record_clear (&record);
    copy = s_reply_round_trip (reply, NULL, NULL);
    CHECK (strlen (copy->services [0].command) == PM_TEXT_MAX - 1);
    pm_reply_destroy (&copy);
    pm_reply_destroy (&reply);
    pm_reply_destroy (NULL);
}

static void
test_reply_decode_errors (void)
{
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true}");
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true, future: [1, 2]}");
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: false, error: {code: busy}}");
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true, results: []}");
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true, results: [{name: a, "
                  "ok: true, state: running}]}");
    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true, services: [{name: a, "
                  "state: stopped}]}");

    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "expected a map", "[]");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "v: required", "{id: 1, ok: true}");
    EXPECT_REPLY (PM_ERR_BAD_VERSION, "v: protocol version 3",
                  "{v: 3, id: 1, ok: true}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "id: required", "{v: 1, ok: true}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "id: expected", "{v: 1, id: -1, "
                  "ok: true}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "ok: required", "{v: 1, id: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "ok: expected a boolean",
                  "{v: 1, id: 1, ok: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "ok: given twice",
                  "{v: 1, id: 1, ok: true, ok: true}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error: required when ok is false",
                  "{v: 1, id: 1, ok: false}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error: present but ok is true",
                  "{v: 1, id: 1, ok: true, error: {code: busy}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error: expected a map",
                  "{v: 1, id: 1, ok: false, error: busy}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.code: required",
                  "{v: 1, id: 1, ok: false, error: {message: x}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.code: unknown code 'ok'",
                  "{v: 1, id: 1, ok: false, error: {code: ok}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.code: expected a string",
                  "{v: 1, id: 1, ok: false, error: {code: 3}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.message: expected a string",
                  "{v: 1, id: 1, ok: false, error: {code: busy, "
                  "message: 3}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.names[0]: expected a string",
                  "{v: 1, id: 1, ok: false, error: {code: unknown-service, "
                  "names: [1]}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "error.names: expected an array",
                  "{v: 1, id: 1, ok: false, error: {code: unknown-service, "
                  "names: a}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results: expected an array",
                  "{v: 1, id: 1, ok: true, results: {}}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0]: expected a map",
                  "{v: 1, id: 1, ok: true, results: [a]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[1].name: required",
                  "{v: 1, id: 1, ok: true, results: [{name: a, ok: true, "
                  "state: running}, {ok: true, state: running}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0].state: required",
                  "{v: 1, id: 1, ok: true, results: [{name: a, ok: true}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0].ok: expected a boolean",
                  "{v: 1, id: 1, ok: true, results: [{name: a, ok: nil, "
                  "state: running}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0].state: unknown state",
                  "{v: 1, id: 1, ok: true, results: [{name: a, ok: true, "
                  "state: dancing}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0].note: expected a string "
                  "or nil", "{v: 1, id: 1, ok: true, results: [{name: a, "
                  "ok: true, state: running, note: 1}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "results[0].error: expected a string",
                  "{v: 1, id: 1, ok: true, results: [{name: a, ok: true, "
                  "state: running, error: true}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "services: expected an array",
                  "{v: 1, id: 1, ok: true, services: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "services[0]: expected a map",
                  "{v: 1, id: 1, ok: true, services: [[]]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "services[0].name: required",
                  "{v: 1, id: 1, ok: true, services: [{state: running}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "services[0].state: required",
                  "{v: 1, id: 1, ok: true, services: [{name: a}]}");
    //  Every record field with a wrong type.
    static const char *bad_fields [][2] = {
        { "name: 1", "services[0].name: expected a string" },
        { "name: ''", "services[0].name: expected a non-empty" },
        { "state: 1", "services[0].state: expected a state name" },
        { "state: up", "services[0].state: expected a state name" },
        { "pid: '1'", "services[0].pid: expected a process id" },
        { "pid: -1", "services[0].pid: expected a process id" },
        { "started_at: x", "services[0].started_at: expected a number" },
        { "started_at: -1.0", "services[0].started_at: expected a number" },
        { "state_since: nil", "services[0].state_since: expected a number" },
        { "uptime: nan", "services[0].uptime: expected a number" },
        { "restarts: -1", "services[0].restarts: expected an unsigned" },
        { "exit_code: 1.5", "services[0].exit_code: expected an integer" },
        { "exit_code: 4294967296", "services[0].exit_code: expected" },
        { "signal: 9", "services[0].signal: expected a string or nil" },
        { "ready: nil", "services[0].ready: expected a boolean" },
        { "error: []", "services[0].error: expected a string or nil" },
        { "depends_on: []", "services[0].depends_on: expected a map" },
        { "depends_on: nil", "services[0].depends_on: expected a map" },
        { "depends_on: {db: up}", "services[0].depends_on.db: expected "
                                  "\"started\", \"ready\" or \"completed\"" },
        { "depends_on: {1: ready}", "services[0].depends_on key 0: expected "
                                    "a string" },
        { "depends_on: {db: ready, db: started}",
          "services[0].depends_on.db: given twice" },
        { "command: nil", "services[0].command: expected a string" },
        { "seq: 1.0", "services[0].seq: expected an unsigned" },
        { "next_start: inf", "services[0].next_start: expected a number" },
        { "pid: 1, pid: 2", "services[0].pid: given twice" },
    };
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields [0]; i++) {
        char *spec;
        const char *name = strncmp (bad_fields [i][0], "name", 4) == 0
                         ? "" : "name: a, ";
        const char *state = strncmp (bad_fields [i][0], "state:", 6) == 0
                          ? "" : "state: running, ";
        if (asprintf (&spec, "{v: 1, id: 1, ok: true, services: [{%s%s%s}]}",
                      name, state, bad_fields [i][0]) < 0)
            abort ();
        EXPECT_REPLY (PM_ERR_BAD_REQUEST, bad_fields [i][1], spec);
        free (spec);
    }
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "agent: expected a string",
                  "{v: 1, id: 1, ok: true, agent: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "version: expected a string",
                  "{v: 1, id: 1, ok: true, version: nil}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "pid: expected a process id",
                  "{v: 1, id: 1, ok: true, pid: -3}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "config: expected a string",
                  "{v: 1, id: 1, ok: true, config: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "control: expected a string",
                  "{v: 1, id: 1, ok: true, control: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "events: expected a string",
                  "{v: 1, id: 1, ok: true, events: 1}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "started_at: expected a number",
                  "{v: 1, id: 1, ok: true, started_at: '1'}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "leases: expected an array",
                  "{v: 1, id: 1, ok: true, leases: 5}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "leases[1]: expected a process id",
                  "{v: 1, id: 1, ok: true, leases: [5, 0]}");
    char *huge = s_repeat ('e', PM_TEXT_MAX + 1);
    char *spec;
    if (asprintf (&spec, "{v: 1, id: 1, ok: false, error: {code: failed, "
                  "message: %s}}", huge) < 0)
        abort ();
    EXPECT_REPLY (PM_ERR_TOO_LARGE, "error.message: 4097 bytes, over the "
                  "limit of 4096", spec);
    free (spec);
    free (huge);
}

/* ------------------------------------------------------------------ */
/*  Events                                                             */
/* ------------------------------------------------------------------ */


//  Makes event's lines one line of size bytes (copied; the event owns it).
static void
s_set_line (pm_event_t *event, const char *bytes, size_t size, bool partial)
{
    for (size_t i = 0; i < event->lines_count; i++)
        free (event->lines [i].line);
    free (event->lines);
    event->lines = calloc (1, sizeof *event->lines);
    CHECK (event->lines);
    event->lines_count = 1;
    event->lines [0].line = bytes ? malloc (size + 1) : NULL;
    if (bytes) {
        memcpy (event->lines [0].line, bytes, size);
        event->lines [0].line [size] = 0;
    }
    event->lines [0].line_size = size;
    event->lines [0].partial = partial;
}
static pm_event_t *
s_event_round_trip (const pm_event_t *event, char **data_p, size_t *size_p)
{
    char *data;
    size_t size;
    CHECK (pm_event_encode (event, &data, &size) == 0);
    pm_event_t *copy = NULL;
    char err [256];
    pm_err_t rc = pm_event_decode (data, size, &copy, err, sizeof err);
    if (rc != PM_OK)
        fprintf (stderr, "decode: %s\n", err);
    CHECK (rc == PM_OK && copy);
    CHECK (copy->kind == event->kind && copy->seq == event->seq);
    CHECK (copy->ts == event->ts);
    CHECK (s_streq (copy->agent, event->agent));
    CHECK (s_streq (copy->instance, event->instance));
    CHECK (s_streq (copy->service, event->service));
    *data_p = data;
    *size_p = size;
    return copy;
}

static void
test_event_round_trip (void)
{
    char *data;
    size_t size;
    char *json;

    //  State, with a full record.
    pm_event_t *event = pm_event_new (PM_EVENT_STATE);
    event->seq = 1;
    event->ts = 1700000002.5;
    event->agent = strdup ("demo");
    event->service = strdup ("api");
    event->old_state = PM_STATE_STARTING;
    event->new_state = PM_STATE_RUNNING;
    s_fill_record (&event->record, "api", true);
    pm_event_t *copy = s_event_round_trip (event, &data, &size);
    CHECK (copy->old_state == PM_STATE_STARTING);
    CHECK (copy->new_state == PM_STATE_RUNNING);
    s_check_record (&copy->record, &event->record);
    json = pm_json_from_msgpack (data, size);
    const char *prefix = "{\"v\":1,\"kind\":\"state\",\"seq\":1,"
                         "\"ts\":1700000002.5,\"agent\":\"demo\","
                         "\"service\":\"api\",\"old\":\"starting\","
                         "\"new\":\"running\",\"record\":{\"name\":"
                         "\"api\",";
    CHECK (json && strncmp (json, prefix, strlen (prefix)) == 0);
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_event_destroy (&copy);
    pm_event_destroy (&event);
    CHECK (event == NULL);

    //  Log lines: text, text with a NUL, bytes that are not UTF-8.
    event = pm_event_new (PM_EVENT_LOG);
    event->seq = 42;
    event->ts = 1700000003.0;
    event->agent = strdup ("demo");
    event->instance = strdup ("0123456789abcdef0123456789abcdef");
    event->service = strdup ("db");
    event->stream = PM_STREAM_ERR;
    s_set_line (event, "ready to accept connections", 27, false);
    copy = s_event_round_trip (event, &data, &size);
    CHECK (copy->stream == PM_STREAM_ERR && copy->lines_count == 1);
    CHECK (!copy->lines [0].partial);
    CHECK (copy->lines [0].line_size == 27);
    CHECK (s_streq (copy->lines [0].line, "ready to accept connections"));
    //  A decoded line carries its own seq, time and stream.
    CHECK (copy->lines [0].seq == 42 && copy->lines [0].ts == event->ts);
    CHECK (copy->lines [0].stream == PM_STREAM_ERR);
    json = pm_json_from_msgpack (data, size);
    CHECK (s_streq (json, "{\"v\":1,\"kind\":\"log\",\"seq\":42,"
                    "\"ts\":1700000003.0,\"agent\":\"demo\",\"instance\":"
                    "\"0123456789abcdef0123456789abcdef\",\"service\":"
                    "\"db\",\"stream\":\"err\",\"lines\":[\"ready to accept "
                    "connections\"]}"));
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_event_destroy (&copy);

    //  Valid UTF-8 with a NUL is still a str.
    s_set_line (event, "a\0b\xc3\xa9z", 6, true);
    copy = s_event_round_trip (event, &data, &size);
    pm_line_t *got = &copy->lines [0];
    CHECK (got->line_size == 6 && memcmp (got->line, "a\0b\xc3\xa9z", 6)
           == 0 && got->line [6] == 0);
    CHECK (got->partial);
    //  fixstr 6, its bytes, then "partial": [0] (1 + 7 + 1 + 1 bytes).
    CHECK ((unsigned char) data [size - 17] == 0xa6);
    json = pm_json_from_msgpack (data, size);
    CHECK (json && strstr (json, "\"lines\":[\"a\\u0000b\xc3\xa9z\"],"
                           "\"partial\":[0]}"));
    free (json);
    free (data);
    pm_event_destroy (&copy);

    //  NUL and invalid UTF-8: a bin, byte for byte.
    s_set_line (event, "x\0\xff\xfe\xc3(\n", 7, false);
    copy = s_event_round_trip (event, &data, &size);
    got = &copy->lines [0];
    CHECK (got->line_size == 7);
    CHECK (memcmp (got->line, "x\0\xff\xfe\xc3(\n", 7) == 0);
    CHECK (got->line [7] == 0);
    CHECK (!got->partial);
    CHECK ((unsigned char) data [size - 7 - 2] == 0xc4);   //  bin8
    json = pm_json_from_msgpack (data, size);
    CHECK (json && strstr (json, "\"lines\":[\"x\\u0000\\ufffd\\ufffd\\ufffd"
                           "(\\n\"]}"));
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_event_destroy (&copy);

    //  An empty line.
    s_set_line (event, NULL, 0, false);
    copy = s_event_round_trip (event, &data, &size);
    CHECK (copy->lines [0].line_size == 0
           && s_streq (copy->lines [0].line, ""));
    free (data);
    pm_event_destroy (&copy);

    //  A batch: consecutive lines, numbered from seq; a cut line's
    //  pieces named in partial; no line at all does not encode.
    pm_line_t batch [4] = {
        { .line = "one", .line_size = 3 },
        { .line = "a long li", .line_size = 9, .partial = true },
        { .line = "ne", .line_size = 2 },
        { .line = "\xff", .line_size = 1 },
    };
    pm_event_t view = *event;
    view.lines = batch;
    view.lines_count = 4;
    view.seq = 100;
    CHECK (pm_event_encode (&view, &data, &size) == 0);
    CHECK (pm_event_decode (data, size, &copy, NULL, 0) == PM_OK);
    CHECK (copy->lines_count == 4);
    for (size_t i = 0; i < 4; i++) {
        CHECK (copy->lines [i].seq == 100 + i);
        CHECK (copy->lines [i].partial == (i == 1));
        CHECK (copy->lines [i].line_size == batch [i].line_size);
        CHECK (memcmp (copy->lines [i].line, batch [i].line,
                       batch [i].line_size) == 0);
    }
    json = pm_json_from_msgpack (data, size);
    CHECK (json && strstr (json, "\"seq\":100,") && strstr (json,
           "\"lines\":[\"one\",\"a long li\",\"ne\",\"\\ufffd\"],"
           "\"partial\":[1]}"));
    free (json);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_event_destroy (&copy);
    view.lines_count = 0;
    CHECK (pm_event_encode (&view, &data, &size) == -1);
    pm_event_destroy (&event);

    //  Agent events, with and without a message.
    event = pm_event_new (PM_EVENT_AGENT);
    event->seq = 7;
    event->ts = 1700000004.125;
    event->agent = strdup ("demo");
    event->event = strdup ("shutdown");
    copy = s_event_round_trip (event, &data, &size);
    CHECK (s_streq (copy->event, "shutdown") && !copy->message);
    CHECK (!copy->service);
    json = pm_json_from_msgpack (data, size);
    CHECK (s_streq (json, "{\"v\":1,\"kind\":\"agent\",\"seq\":7,"
                    "\"ts\":1700000004.125,\"agent\":\"demo\","
                    "\"event\":\"shutdown\"}"));
    free (json);
    free (data);
    pm_event_destroy (&copy);
    event->message = strdup ("SIGTERM: stopping 3 services");
    copy = s_event_round_trip (event, &data, &size);
    CHECK (s_streq (copy->message, event->message));
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_event_destroy (&copy);
    pm_event_destroy (&event);
    pm_event_destroy (NULL);

    event = pm_event_new ((pm_event_kind_t) 5);
    CHECK (pm_event_encode (event, &data, &size) == -1);
    pm_event_destroy (&event);
}

static void
test_event_decode_errors (void)
{
    EXPECT_EVENT (PM_OK, "", "{v: 1, kind: agent, seq: 1, ts: 1, agent: a, "
                  "event: started}");
    EXPECT_EVENT (PM_OK, "", "{v: 1, kind: agent, seq: 1, ts: 1.5, agent: a, "
                  "event: started, message: nil, line: 3, later: 1}");
    EXPECT_EVENT (PM_OK, "", "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, lines: [b'\\xff', x], "
                  "partial: [1]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines: expected an array",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, lines: []}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines: expected an array",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, lines: x}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines[1]: expected a string or bin",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, lines: [x, 3]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "partial[0]: 2 is not the index",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, partial: [2], lines: [x, y]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "partial: expected an array",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, partial: true, lines: [x]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "seq: 18446744073709551615 cannot "
                  "number 2 lines", "{v: 1, kind: log, "
                  "seq: 18446744073709551615, ts: 1, agent: a, "
                  "service: s, stream: out, lines: [x, y]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines: required",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: s, stream: out, line: x}");
    EXPECT_EVENT (PM_OK, "", "{kind: state, v: 1, seq: 1, ts: 1, agent: a, "
                  "service: s, old: stopped, new: waiting, "
                  "record: {name: s, state: waiting}}");

    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "expected a map", "'state'");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "v: required", "{kind: agent}");
    EXPECT_EVENT (PM_ERR_BAD_VERSION, "v: protocol version 9",
                  "{v: 9, kind: agent}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "kind: required", "{v: 1, seq: 1}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "kind: expected \"state\", \"log\" or "
                  "\"agent\"", "{v: 1, kind: metric}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "kind: expected", "{v: 1, kind: 1}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "seq: required", "{v: 1, kind: agent, "
                  "ts: 1, agent: a, event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "seq: expected an unsigned",
                  "{v: 1, kind: agent, seq: -1, ts: 1, agent: a, "
                  "event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "ts: expected a number",
                  "{v: 1, kind: agent, seq: 1, ts: '1', agent: a, "
                  "event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "ts: required",
                  "{v: 1, kind: agent, seq: 1, agent: a, event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "agent: expected a string",
                  "{v: 1, kind: agent, seq: 1, ts: 1, agent: nil, "
                  "event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "event: required",
                  "{v: 1, kind: agent, seq: 1, ts: 1, agent: a}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "event: expected a non-empty",
                  "{v: 1, kind: agent, seq: 1, ts: 1, agent: a, event: ''}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "message: expected a string",
                  "{v: 1, kind: agent, seq: 1, ts: 1, agent: a, "
                  "event: started, message: 1}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "seq: given twice",
                  "{v: 1, kind: agent, seq: 1, seq: 2, ts: 1, agent: a, "
                  "event: started}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "service: required",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, stream: out, "
                  "lines: [x]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "stream: expected \"out\" or \"err\"",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, service: s, "
                  "stream: stdout, lines: [x]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines[0]: expected a string or bin",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, service: s, "
                  "stream: out, lines: [nil]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "lines: required",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, service: s, "
                  "stream: out}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "partial[0]: expected",
                  "{v: 1, kind: log, seq: 1, ts: 1, agent: a, service: s, "
                  "stream: out, lines: [x], partial: [true]}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "old: expected a state name",
                  "{v: 1, kind: state, seq: 1, ts: 1, agent: a, service: s, "
                  "old: gone, new: running, record: {name: s, "
                  "state: running}}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "record: expected a map",
                  "{v: 1, kind: state, seq: 1, ts: 1, agent: a, service: s, "
                  "old: stopped, new: running, record: nil}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "record.pid: expected a process id",
                  "{v: 1, kind: state, seq: 1, ts: 1, agent: a, service: s, "
                  "old: stopped, new: running, record: {name: s, "
                  "state: running, pid: x}}");
    EXPECT_EVENT (PM_ERR_BAD_REQUEST, "record: required",
                  "{v: 1, kind: state, seq: 1, ts: 1, agent: a, service: s, "
                  "old: stopped, new: running}");
    char *name = s_repeat ('s', PM_NAME_MAX + 1);
    char *spec;
    if (asprintf (&spec, "{v: 1, kind: log, seq: 1, ts: 1, agent: a, "
                  "service: %s, stream: out, lines: [x]}", name) < 0)
        abort ();
    EXPECT_EVENT (PM_ERR_TOO_LARGE, "service: 129 bytes, over the limit",
                  spec);
    free (spec);
    free (name);
}

/* ------------------------------------------------------------------ */
/*  Hostile frames                                                     */
/* ------------------------------------------------------------------ */

static void
test_truncations (void)
{
    //  Requests of every shape, cut at every length.
    pm_request_t *req = pm_request_new (PM_CMD_RESTART, 0x1234567890ULL);
    pm_request_add_name (req, "db");
    pm_request_add_name (req, "api");
    req->with_dependents = true;
    req->wait = PM_WAIT_STARTED;
    req->timeout = 1.5;
    char *data;
    size_t size;
    CHECK (pm_request_encode (req, &data, &size) == 0);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_request_destroy (&req);
    req = pm_request_new (PM_CMD_LOGS, 3);
    req->has_since = true;
    req->since = 1ULL << 40;
    CHECK (pm_request_encode (req, &data, &size) == 0);
    s_check_truncations (__LINE__, data, size);
    free (data);
    pm_request_destroy (&req);
}

static void
test_limits (void)
{
    char err [256];
    uint64_t id;
    pm_request_t *req = NULL;
    pm_reply_t *reply = NULL;
    pm_event_t *event = NULL;

    //  Over PM_FRAME_MAX: refused before it is even parsed.
    size_t size = PM_FRAME_MAX + 1;
    char *big = calloc (1, size);
    CHECK (pm_request_decode (big, size, &req, &id, err, sizeof err)
           == PM_ERR_TOO_LARGE && !req);
    CHECK (strstr (err, "frame is 1048577 bytes, over the limit of 1048576"));
    CHECK (pm_reply_decode (big, size, &reply, err, sizeof err)
           == PM_ERR_TOO_LARGE && !reply);
    CHECK (pm_event_decode (big, size, &event, err, sizeof err)
           == PM_ERR_TOO_LARGE && !event);
    free (big);

    //  A well-formed request whose padding takes it just over the limit,
    //  and one just under it.
    for (int over = 0; over <= 1; over++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 4);
        msgpack_pack_str (&pk, 1); msgpack_pack_str_body (&pk, "v", 1);
        msgpack_pack_uint64 (&pk, 1);
        msgpack_pack_str (&pk, 2); msgpack_pack_str_body (&pk, "id", 2);
        msgpack_pack_uint64 (&pk, 77);
        msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "cmd", 3);
        msgpack_pack_str (&pk, 5); msgpack_pack_str_body (&pk, "hello", 5);
        msgpack_pack_str (&pk, 3); msgpack_pack_str_body (&pk, "pad", 3);
        size_t pad = PM_FRAME_MAX - sbuf.size - 5 + over;
        char *fill = s_repeat ('p', pad);
        msgpack_pack_str (&pk, pad);
        msgpack_pack_str_body (&pk, fill, pad);
        free (fill);
        CHECK (sbuf.size == (size_t) PM_FRAME_MAX + over);
        id = 0;
        pm_err_t rc = pm_request_decode (sbuf.data, sbuf.size, &req, &id, err,
                                         sizeof err);
        if (over)
            CHECK (rc == PM_ERR_TOO_LARGE && id == 0);
        else
            CHECK (rc == PM_ERR_BAD_REQUEST && id == 77
                   && strstr (err, "pad: unknown field"));
        msgpack_sbuffer_destroy (&sbuf);
    }

    //  Encoders refuse to make a frame no decoder would take.
    reply = pm_reply_new (1);
    pm_record_t record;
    memset (&record, 0, sizeof record);
    record.name = strdup ("x");
    record.command = s_repeat ('c', PM_TEXT_MAX);
    for (int i = 0; i < 300; i++)
        pm_reply_add_service (reply, &record);
    pm_record_clear (&record);
    char *data;
    CHECK (pm_reply_encode (reply, &data, &size) == -1);
    pm_reply_destroy (&reply);

    //  Containers that claim more elements than the frame has bytes: no
    //  allocation in proportion to the claim, just an error.
    static const struct { const char *bytes; size_t size; } claims [] = {
        { "\xdd\xff\xff\xff\xff", 5 },                  //  array32
        { "\xdf\xff\xff\xff\xff", 5 },                  //  map32
        { "\xdc\xff\xff", 3 },                          //  array16
        { "\x81\xa1v\xdd\x7f\xff\xff\xff\x01", 9 },     //  inside a map
        { "\xdb\xff\xff\xff\xff" "abc", 8 },            //  str32
        { "\xc6\x00\x00\x00\x10", 5 },                  //  bin32
        { "\xc9\xff\xff\xff\xff\x01", 6 },              //  ext32
        { "\xd8\x01", 2 },                              //  fixext16
        { "\xcb\x00\x00", 3 },                          //  float64
    };
    for (size_t i = 0; i < sizeof claims / sizeof claims [0]; i++) {
        CHECK (pm_request_decode (claims [i].bytes, claims [i].size, &req,
                                  &id, err, sizeof err)
               == PM_ERR_BAD_REQUEST);
        CHECK (strstr (err, "not a complete msgpack object"));
        CHECK (pm_json_from_msgpack (claims [i].bytes, claims [i].size)
               == NULL);
        s_feed_all (claims [i].bytes, claims [i].size);
    }

    //  Deep nesting, in args and at the top.
    char nest [256];
    size_t n = 0;
    memcpy (nest, "\x84\xa1v\x01\xa2id\x05\xa3" "cmd\xa6status\xa4" "args",
            23);
    n = 23;
    for (int i = 0; i < 100; i++)
        nest [n++] = (char) 0x91;           //  [ [ [ ...
    nest [n++] = (char) 0xc0;
    id = 0;
    CHECK (pm_request_decode (nest, n, &req, &id, err, sizeof err)
           == PM_ERR_BAD_REQUEST && !req);
    CHECK (strstr (err, "nested deeper than 16"));
    CHECK (pm_json_from_msgpack (nest, n) == NULL);
    s_feed_all (nest, n);
    //  16 levels are fine for JSON; 17 are not.
    for (int depth = 16; depth <= 17; depth++) {
        memset (nest, 0x91, depth);
        nest [depth] = 0x01;
        char *json = pm_json_from_msgpack (nest, depth + 1);
        if (depth == 16) {
            CHECK (json && strlen (json) == 16 * 2 + 1);
            CHECK (strncmp (json, "[[[[", 4) == 0);
        }
        else
            CHECK (json == NULL);
        free (json);
    }
    //  Empty containers count as levels too.
    memset (nest, 0x91, 16);
    nest [16] = (char) 0x90;
    CHECK (pm_json_from_msgpack (nest, 17) == NULL);

    //  The reserved type byte, alone and inside a frame.
    CHECK (pm_json_from_msgpack ("\x92\x01\xc1", 3) == NULL);
    CHECK (pm_json_from_msgpack ("", 0) == NULL);
}

//  xorshift64*: fixed seed, same frames on every run and machine.
static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
s_random (void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 2685821657736338717ULL;
}

static void
test_random (void)
{
    //  Pure noise.
    unsigned char buf [512];
    for (int i = 0; i < 4000; i++) {
        size_t size = s_random () % sizeof buf;
        for (size_t j = 0; j < size; j++)
            buf [j] = (unsigned char) s_random ();
        //  Half of them start like a map, so they get past the first byte.
        if (size && i % 2)
            buf [0] = 0x80 | (s_random () % 16);
        s_feed_all (buf, size);
    }
    //  Valid frames with a few bytes changed: these reach the field
    //  checks, and some still decode.
    pm_reply_t *reply = pm_reply_new (9);
    pm_record_t record;
    s_fill_record (&record, "api", true);
    pm_reply_add_service (reply, &record);
    pm_record_clear (&record);
    pm_reply_add_result (reply, "api", true, PM_STATE_RUNNING, "note", NULL);
    pm_reply_set_error (reply, PM_ERR_UNKNOWN_SERVICE, "x");
    pm_reply_add_err_name (reply, "ghost");
    char *seeds [3];
    size_t sizes [3];
    CHECK (pm_reply_encode (reply, &seeds [0], &sizes [0]) == 0);
    pm_reply_destroy (&reply);
    pm_request_t *req = pm_request_new (PM_CMD_START, 5);
    pm_request_add_name (req, "api");
    req->wait = PM_WAIT_RUNNING;
    req->timeout = 3;
    CHECK (pm_request_encode (req, &seeds [1], &sizes [1]) == 0);
    pm_request_destroy (&req);
    pm_event_t *event = pm_event_new (PM_EVENT_LOG);
    event->agent = strdup ("demo");
    event->service = strdup ("db");
    event->seq = 1;
    s_set_line (event, "hello\xff", 6, false);
    CHECK (pm_event_encode (event, &seeds [2], &sizes [2]) == 0);
    pm_event_destroy (&event);
    int accepted = 0;
    for (int i = 0; i < 6000; i++) {
        int which = i % 3;
        size_t size = sizes [which];
        unsigned char *copy = malloc (size);
        memcpy (copy, seeds [which], size);
        int flips = 1 + (int) (s_random () % 4);
        for (int f = 0; f < flips; f++)
            copy [s_random () % size] = (unsigned char) s_random ();
        accepted += s_feed_all (copy, size);
        free (copy);
    }
    CHECK (accepted > 0);
    for (int i = 0; i < 3; i++)
        free (seeds [i]);
}

/* ------------------------------------------------------------------ */
/*  JSON                                                               */
/* ------------------------------------------------------------------ */

static void
s_expect_json (int line, const char *spec, const char *want)
{
    size_t size;
    char *data = s_frame (&size, "%s", spec);
    char *json = pm_json_from_msgpack (data, size);
    CHECK_AT (line, s_streq (json, want), "%s: got '%s', want '%s'", spec,
              json ? json : "(null)", want);
    free (json);
    free (data);
}

#define EXPECT_JSON(spec, want) s_expect_json (__LINE__, spec, want)

static void
test_json (void)
{
    EXPECT_JSON ("{v: 1, id: 2, ok: true}", "{\"v\":1,\"id\":2,\"ok\":true}");
    EXPECT_JSON ("nil", "null");
    EXPECT_JSON ("[true, false, nil]", "[true,false,null]");
    EXPECT_JSON ("[0, -1, 18446744073709551615, -9223372036854775808]",
                 "[0,-1,18446744073709551615,-9223372036854775808]");
    EXPECT_JSON ("[1.0, 0.1, -2.5, 1e300, 1700000000.123456]",
                 "[1.0,0.1,-2.5,1e+300,1700000000.123456]");
    EXPECT_JSON ("[0.30000000000000004, 5e-324]",
                 "[0.30000000000000004,5e-324]");
    EXPECT_JSON ("[f'0.1', f'3', f'-1.5']", "[0.1,3.0,-1.5]");
    EXPECT_JSON ("[nan, inf, -inf]", "[null,null,null]");
    EXPECT_JSON ("'say \\\"hi\\\"\\\\'", "\"say \\\"hi\\\"\\\\\"");
    EXPECT_JSON ("'tab\\x09nl\\x0acr\\x0d\\x08\\x0c\\x01\\x1f\\x7f'",
                 "\"tab\\tnl\\ncr\\r\\b\\f\\u0001\\u001f\x7f\"");
    EXPECT_JSON ("'caf\\xc3\\xa9 \\xe2\\x82\\xac \\xf0\\x9f\\x98\\x80'",
                 "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    //  Invalid UTF-8: stray continuation, overlong, surrogate, cut short,
    //  beyond U+10FFFF.
    EXPECT_JSON ("'a\\x80b'", "\"a\\ufffdb\"");
    EXPECT_JSON ("'\\xc0\\xaf'", "\"\\ufffd\\ufffd\"");
    EXPECT_JSON ("'\\xed\\xa0\\x80'", "\"\\ufffd\\ufffd\\ufffd\"");
    EXPECT_JSON ("'\\xe2\\x82'", "\"\\ufffd\\ufffd\"");
    EXPECT_JSON ("'\\xf4\\x90\\x80\\x80'",
                 "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    EXPECT_JSON ("b'bin\\x00\\xff'", "\"bin\\u0000\\ufffd\"");
    EXPECT_JSON ("{1: a, nil: b, true: c, [1, 2]: d, {x: 'q\\\"'}: e, "
                 "b'k': f, 1.5: g}",
                 "{\"1\":\"a\",\"null\":\"b\",\"true\":\"c\",\"[1,2]\":\"d\","
                 "\"{\\\"x\\\":\\\"q\\\\\\\"\\\"}\":\"e\",\"k\":\"f\","
                 "\"1.5\":\"g\"}");
    EXPECT_JSON ("{}", "{}");
    EXPECT_JSON ("[]", "[]");
    EXPECT_JSON ("''", "\"\"");
    //  ext: fixext1 and a timestamp.
    char *json = pm_json_from_msgpack ("\xd4\x05\xab", 3);
    CHECK (s_streq (json, "{\"ext\":5,\"hex\":\"ab\"}"));
    free (json);
    json = pm_json_from_msgpack ("\xd6\xff\x00\x00\x00\x01", 6);
    CHECK (s_streq (json, "{\"ext\":-1,\"hex\":\"00000001\"}"));
    free (json);
    //  Not msgpack, trailing bytes, empty.
    CHECK (pm_json_from_msgpack ("\xc1", 1) == NULL);
    CHECK (pm_json_from_msgpack ("\x01\x02", 2) == NULL);
    CHECK (pm_json_from_msgpack (NULL, 0) == NULL);
}

/* ------------------------------------------------------------------ */
/*  Seed corpus for the fuzz target                                    */
/* ------------------------------------------------------------------ */

static void
s_write_seed (const char *dir, const char *name, char *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.msgpack", dir, name);
    FILE *file = fopen (path, "wb");
    CHECK (file != NULL);
    CHECK (fwrite (data, 1, size, file) == size);
    CHECK (fclose (file) == 0);
    free (data);
}

//  `test_msg --write-corpus DIR` writes one valid frame of every kind to
//  DIR: the seeds in tests/fuzz_corpus were made this way.
static void
s_write_corpus (const char *dir)
{
    char *data;
    size_t size;
    for (int c = 0; c < PM_CMD_COUNT_; c++) {
        pm_request_t *req = pm_request_new (c, 100 + c);
        req->signum = SIGTERM;
        req->pid = 4242;
        if (c != PM_CMD_HELLO && c != PM_CMD_SHUTDOWN && c != PM_CMD_RELOAD
        &&  c != PM_CMD_LEASE) {
            pm_request_add_name (req, "db");
            pm_request_add_name (req, "api");
        }
        req->with_dependents = c == PM_CMD_RESTART;
        req->wait = c == PM_CMD_STOP ? PM_WAIT_STOPPED : PM_WAIT_STARTED;
        req->timeout = 2.5;
        req->has_tail = true;
        req->tail = 20;
        req->has_since = c == PM_CMD_LOGS;
        req->since = 7;
        CHECK (pm_request_encode (req, &data, &size) == 0);
        char name [32];
        snprintf (name, sizeof name, "request-%s", pm_cmd_name (c));
        s_write_seed (dir, name, data, size);
        pm_request_destroy (&req);
    }
    pm_request_t *req = pm_request_new (PM_CMD_START, 1);
    req->all = true;
    CHECK (pm_request_encode (req, &data, &size) == 0);
    s_write_seed (dir, "request-start-all", data, size);
    pm_request_destroy (&req);

    pm_reply_t *reply = pm_reply_new (1);
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    s_write_seed (dir, "reply-ok", data, size);
    pm_reply_add_result (reply, "db", true, PM_STATE_RUNNING,
                         "already-running", NULL);
    pm_reply_add_result (reply, "api", false, PM_STATE_FAILED, NULL,
                         "exec ./api: No such file or directory");
    pm_reply_set_error (reply, PM_ERR_FAILED, "1 of 2 targets failed");
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    s_write_seed (dir, "reply-results", data, size);
    pm_reply_destroy (&reply);

    reply = pm_reply_new (2);
    pm_record_t full, empty;
    s_fill_record (&full, "api", true);
    s_fill_record (&empty, "idle", false);
    pm_reply_add_service (reply, &full);
    pm_reply_add_service (reply, &empty);
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    s_write_seed (dir, "reply-status", data, size);
    pm_reply_destroy (&reply);

    reply = pm_reply_new (3);
    reply->agent = strdup ("demo");
    reply->version = strdup ("0.1.0");
    reply->agent_pid = 4321;
    reply->config = strdup ("/home/me/proj/pmbus.cfg");
    reply->control = strdup ("ipc:///run/user/1000/pmbus/demo/control.sock");
    reply->events = strdup ("ipc:///run/user/1000/pmbus/demo/events.sock");
    reply->started_at = 1700000000.5;
    reply->leases = calloc (1, sizeof (int64_t));
    reply->leases [0] = 999;
    reply->leases_count = 1;
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    s_write_seed (dir, "reply-hello", data, size);
    pm_reply_destroy (&reply);

    reply = pm_reply_new (4);
    pm_reply_set_error (reply, PM_ERR_UNKNOWN_SERVICE,
                        "unknown service: ghost");
    pm_reply_add_err_name (reply, "ghost");
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    s_write_seed (dir, "reply-unknown-service", data, size);
    pm_reply_destroy (&reply);

    pm_event_t *event = pm_event_new (PM_EVENT_STATE);
    event->seq = 3;
    event->ts = 1700000002.5;
    event->agent = strdup ("demo");
    event->service = strdup ("api");
    event->old_state = PM_STATE_STARTING;
    event->new_state = PM_STATE_RUNNING;
    event->record = full;
    memset (&full, 0, sizeof full);
    CHECK (pm_event_encode (event, &data, &size) == 0);
    s_write_seed (dir, "event-state", data, size);
    pm_event_destroy (&event);

    event = pm_event_new (PM_EVENT_LOG);
    event->seq = 4;
    event->ts = 1700000003.25;
    event->agent = strdup ("demo");
    event->service = strdup ("db");
    s_set_line (event, "listening on 127.0.0.1:5432", 27, false);
    CHECK (pm_event_encode (event, &data, &size) == 0);
    s_write_seed (dir, "event-log-text", data, size);
    s_set_line (event, "a\0\xff\xfe" "b", 5, true);
    event->stream = PM_STREAM_ERR;
    CHECK (pm_event_encode (event, &data, &size) == 0);
    s_write_seed (dir, "event-log-bin", data, size);
    pm_event_destroy (&event);

    event = pm_event_new (PM_EVENT_AGENT);
    event->seq = 1;
    event->ts = 1700000000.0;
    event->agent = strdup ("demo");
    event->event = strdup ("shutdown");
    event->message = strdup ("SIGTERM");
    CHECK (pm_event_encode (event, &data, &size) == 0);
    s_write_seed (dir, "event-agent", data, size);
    pm_event_destroy (&event);
    pm_record_clear (&empty);
}

//  `wait` requests and `logs` replies.
static void
test_wait_and_logs (void)
{
    pm_request_t *req = pm_request_new (PM_CMD_WAIT, 5);
    pm_request_add_name (req, "db");
    req->wait_for = PM_STATE_COMPLETED;
    req->timeout = 3;
    pm_request_t *copy = s_request_round_trip (req);
    CHECK (copy->wait_for == PM_STATE_COMPLETED && copy->timeout == 3);
    CHECK (copy->names_count == 1 && s_streq (copy->names [0], "db"));
    pm_request_destroy (&copy);
    pm_request_destroy (&req);
    EXPECT_REQ (PM_OK, "", 6, "{v: 1, id: 6, cmd: wait, args: {all: true, for: ready}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.for: required by wait", 6,
                "{v: 1, id: 6, cmd: wait, args: {names: [db]}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.for: expected", 6,
                "{v: 1, id: 6, cmd: wait, args: {names: [db], for: waiting}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.for: expected", 6,
                "{v: 1, id: 6, cmd: wait, args: {names: [db], for: 3}}");
    EXPECT_REQ (PM_ERR_BAD_REQUEST, "args.for: not an argument of start", 6,
                "{v: 1, id: 6, cmd: start, args: {names: [db], for: running}}");

    pm_reply_t *reply = pm_reply_new (9);
    pm_logblock_t *block = pm_reply_add_logblock (reply, "web");
    block->first = 11;
    block->last = 13;
    block->gone_from = 5;
    block->gone_to = 10;
    block->more = true;
    pm_logblock_add_line (block, 11, 100.5, PM_STREAM_OUT, false, "hello", 5);
    pm_logblock_add_line (block, 12, 100.75, PM_STREAM_ERR, true,
                          "a\0\xff", 3);
    pm_logblock_add_line (block, 13, 101, PM_STREAM_OUT, false, "", 0);
    //  A broker's block: service@agent (past one name's limit) and the
    //  instance of the agent that answered.
    char *qualified = s_repeat ('q', PM_TARGET_MAX);
    qualified [PM_NAME_MAX] = '@';
    pm_logblock_t *empty = pm_reply_add_logblock (reply, qualified);
    empty->instance = strdup ("beef");
    pm_reply_t *back = s_reply_round_trip (reply, NULL, NULL);
    CHECK (back->logs_count == 2);
    pm_logblock_t *web = &back->logs [0];
    CHECK (s_streq (web->service, "web"));
    CHECK (web->first == 11 && web->last == 13);
    CHECK (web->gone_from == 5 && web->gone_to == 10 && web->more);
    CHECK (web->lines_count == 3);
    CHECK (web->lines [0].seq == 11 && web->lines [0].ts == 100.5);
    CHECK (web->lines [0].line_size == 5 && s_streq (web->lines [0].line, "hello"));
    CHECK (web->lines [1].stream == PM_STREAM_ERR && web->lines [1].partial);
    CHECK (web->lines [1].line_size == 3
           && memcmp (web->lines [1].line, "a\0\xff", 3) == 0);
    CHECK (!web->lines [2].partial && web->lines [2].line_size == 0);
    CHECK (!web->instance);
    pm_logblock_t *db = &back->logs [1];
    CHECK (s_streq (db->service, qualified) && db->lines_count == 0);
    CHECK (s_streq (db->instance, "beef"));
    CHECK (db->gone_from == 0 && !db->more && db->first == 0);
    free (qualified);
    CHECK (pm_line_encoded_size (10) > 10);
    pm_reply_destroy (&back);
    pm_reply_destroy (&reply);

    reply = pm_reply_new (10);
    pm_reply_add_reload (reply, PM_RELOAD_ADDED, "new");
    pm_reply_add_reload (reply, PM_RELOAD_RESTARTED, "api");
    pm_reply_add_reload (reply, PM_RELOAD_RESTARTED, "web");
    back = s_reply_round_trip (reply, NULL, NULL);
    CHECK (back->has_reload);
    CHECK (back->reload_count [PM_RELOAD_ADDED] == 1);
    CHECK (s_streq (back->reload [PM_RELOAD_ADDED][0], "new"));
    CHECK (back->reload_count [PM_RELOAD_RESTARTED] == 2);
    CHECK (s_streq (back->reload [PM_RELOAD_RESTARTED][1], "web"));
    CHECK (back->reload_count [PM_RELOAD_UNCHANGED] == 0);
    CHECK (s_streq (pm_reload_list_name (PM_RELOAD_UPDATED), "updated_in_place"));
    pm_reply_destroy (&back);
    pm_reply_destroy (&reply);
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "reload: expected a map",
                  "{v: 1, id: 1, ok: true, reload: [1]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "reload.added[0]: expected",
                  "{v: 1, id: 1, ok: true, reload: {added: [3]}}");

    EXPECT_REPLY (PM_OK, "", "{v: 1, id: 1, ok: true, logs: []}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs: expected an array",
                  "{v: 1, id: 1, ok: true, logs: 3}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs[0].service: required",
                  "{v: 1, id: 1, ok: true, logs: [{first: 1}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs[0].gone: expected",
                  "{v: 1, id: 1, ok: true, logs: [{service: a, gone: [1]}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs[0].lines[0].line: required",
                  "{v: 1, id: 1, ok: true, logs: [{service: a, lines: [{seq: 1}]}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs[0].lines[0].stream: expected",
                  "{v: 1, id: 1, ok: true, logs: [{service: a, lines: "
                  "[{seq: 1, line: x, stream: foo}]}]}");
    EXPECT_REPLY (PM_ERR_BAD_REQUEST, "logs[0].lines[0].line: expected",
                  "{v: 1, id: 1, ok: true, logs: [{service: a, lines: "
                  "[{seq: 1, line: 5}]}]}");
}

//  What a broker adds: the agent of a record, and the agents list.
static void
test_broker_fields (void)
{
    pm_reply_t *reply = pm_reply_new (5);
    reply->ok = true;
    reply->services = calloc (2, sizeof (pm_record_t));
    reply->services_count = 2;
    reply->services [0].name = strdup ("web");
    reply->services [0].command = strdup ("x");
    reply->services [0].uptime = -1;
    reply->services [0].agent = strdup ("box1");
    reply->services [1].name = strdup ("db");
    reply->services [1].command = strdup ("y");
    reply->services [1].uptime = -1;
    reply->agents = calloc (2, sizeof (pm_agent_info_t));
    reply->agents_count = 2;
    reply->agents [0].name = strdup ("box1");
    reply->agents [0].connected = true;
    reply->agents [0].since = 12.5;
    reply->agents [0].address = strdup ("127.0.0.1");
    reply->agents [0].version = strdup ("0.1.0");
    reply->agents [0].instance = strdup ("00ff");
    reply->agents [0].pid = 42;
    reply->agents [0].services = 3;
    reply->agents [1].name = strdup ("box2");
    char *data;
    size_t size;
    CHECK (pm_reply_encode (reply, &data, &size) == 0);
    pm_reply_t *back = NULL;
    char err [256];
    CHECK (pm_reply_decode (data, size, &back, err, sizeof err) == PM_OK);
    CHECK (back && back->services_count == 2 && back->agents_count == 2);
    if (back && back->services_count == 2 && back->agents_count == 2) {
        CHECK (s_streq (back->services [0].agent, "box1"));
        CHECK (back->services [1].agent == NULL);
        CHECK (s_streq (back->agents [0].name, "box1"));
        CHECK (back->agents [0].connected && !back->agents [1].connected);
        CHECK (back->agents [0].since == 12.5 && back->agents [0].pid == 42);
        CHECK (back->agents [0].services == 3);
        CHECK (s_streq (back->agents [0].address, "127.0.0.1"));
        CHECK (s_streq (back->agents [0].instance, "00ff"));
    }
    free (data);
    pm_reply_destroy (&back);
    pm_reply_destroy (&reply);
}

int
main (int argc, char *argv [])
{
    if (argc == 3 && strcmp (argv [1], "--write-corpus") == 0) {
        s_write_corpus (argv [2]);
        return 0;
    }
    test_names ();
    test_signals ();
    test_topics ();
    test_request_round_trip ();
    test_request_decode_valid ();
    test_request_decode_errors ();
    test_reply_round_trip ();
    test_reply_decode_errors ();
    test_event_round_trip ();
    test_event_decode_errors ();
    test_truncations ();
    test_limits ();
    test_random ();
    test_json ();
    test_wait_and_logs ();
    test_broker_fields ();
    printf ("test_msg: %d checks passed\n", s_checks);
    return 0;
}
