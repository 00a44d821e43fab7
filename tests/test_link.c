/*  test_link.c - the link words' parser (proto/pm_link.c)

    Every word parses when well formed, with its fields; each way of
    being malformed (an unknown word, frames too many or too few, a
    field over its limit, text with control bytes, a hello that does not
    decode or names no valid agent) is refused with a reason and leaves
    nothing owned.

    `test_link --write-corpus DIR` writes one valid message of every word
    to DIR in fuzz_link.c's input format (each frame: a 2-byte big-endian
    length, then its bytes): the seeds in tests/fuzz_corpus_link.
*/
#include "check.h"
#include "pm_link.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pm_link_frame_t frames [8];
    size_t count;
    char *owned [8];
} s_msg_t;

static void
s_add (s_msg_t *m, const void *data, size_t size)
{
    m->frames [m->count].data = data;
    m->frames [m->count].size = size;
    m->count++;
}

static void
s_add_text (s_msg_t *m, const char *text)
{
    s_add (m, text, strlen (text));
}

//  A hello reply of agent `agent`, encoded (owned by m).
static void
s_add_hello (s_msg_t *m, const char *agent)
{
    pm_reply_t *hello = pm_reply_new (1);
    hello->ok = true;
    if (agent)
        hello->agent = strdup (agent);
    hello->version = strdup ("0.1");
    hello->agent_pid = 42;
    char *data;
    size_t size;
    CHECK (pm_reply_encode (hello, &data, &size) == 0);
    pm_reply_destroy (&hello);
    m->owned [m->count] = data;
    s_add (m, data, size);
}

static void
s_free (s_msg_t *m)
{
    for (size_t i = 0; i < m->count; i++)
        free (m->owned [i]);
    memset (m, 0, sizeof *m);
}

static int
s_parse (s_msg_t *m, pm_link_msg_t *out, char *why)
{
    return pm_link_parse (m->frames, m->count, out, why, 256);
}

//  The message does not parse, and why mentions what.
static void
s_refused (s_msg_t *m, const char *what)
{
    pm_link_msg_t out;
    char why [256] = "";
    CHECK (s_parse (m, &out, why) == -1);
    CHECK (out.word == PM_LINK_W_NONE && out.hello == NULL
           && out.names == NULL);
    if (!strstr (why, what))
        fprintf (stderr, "why: '%s', expected '%s' in it\n", why, what);
    CHECK (strstr (why, what) != NULL);
    s_free (m);
}

static const uint8_t s_token [8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void
s_register (s_msg_t *m)
{
    s_add_text (m, PM_LINK_REGISTER);
    s_add_text (m, "0123456789abcdef0123456789abcdef");
    s_add_hello (m, "box1");
    s_add_text (m, "web");
    s_add_text (m, "db");
}

static void
test_valid (void)
{
    s_msg_t m = { 0 };
    pm_link_msg_t out;
    char why [256];

    s_register (&m);
    CHECK (s_parse (&m, &out, why) == 0);
    CHECK (out.word == PM_LINK_W_REGISTER);
    CHECK (strcmp (out.instance, "0123456789abcdef0123456789abcdef") == 0);
    CHECK (out.hello && strcmp (out.hello->agent, "box1") == 0);
    CHECK (out.names_count == 2 && strcmp (out.names [0], "web") == 0
           && strcmp (out.names [1], "db") == 0);
    pm_link_clear (&out);
    CHECK (out.hello == NULL && out.names == NULL);
    s_free (&m);

    //  An agent with no services registers too.
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_hello (&m, "box1");
    CHECK (s_parse (&m, &out, why) == 0 && out.names_count == 0);
    pm_link_clear (&out);
    s_free (&m);

    s_add_text (&m, PM_LINK_HEARTBEAT);
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_HEARTBEAT);
    s_free (&m);

    s_add_text (&m, PM_LINK_REPLY);
    s_add (&m, s_token, sizeof s_token);
    s_add_text (&m, "body");
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_REPLY);
    uint64_t token;
    memcpy (&token, s_token, sizeof token);
    CHECK (out.token == token && out.body.size == 4);
    s_free (&m);

    s_add_text (&m, PM_LINK_REQUEST);
    s_add (&m, s_token, sizeof s_token);
    s_add (&m, "", 0);
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_REQUEST
           && out.token == token && out.body.size == 0);
    s_free (&m);

    s_add_text (&m, PM_LINK_PUBLISH);
    s_add_text (&m, "log/web/");
    s_add_text (&m, "x");
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_PUBLISH
           && out.topic.size == 8 && out.body.size == 1);
    s_free (&m);

    s_add_text (&m, PM_LINK_REGISTERED);
    s_add_text (&m, "1000");
    s_add_text (&m, "log/");
    s_add (&m, "", 0);          //  everything
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_REGISTERED
           && out.heartbeat_ms == 1000 && out.prefixes_count == 2
           && out.prefixes [0].size == 4 && out.prefixes [1].size == 0);
    s_free (&m);

    s_add_text (&m, PM_LINK_SUBSCRIBE);
    s_add_text (&m, "state/");
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_SUBSCRIBE
           && out.prefixes_count == 1);
    s_free (&m);
    s_add_text (&m, PM_LINK_UNSUBSCRIBE);
    s_add_text (&m, "state/");
    CHECK (s_parse (&m, &out, why) == 0
           && out.word == PM_LINK_W_UNSUBSCRIBE);
    s_free (&m);

    s_add_text (&m, PM_LINK_REFUSED);
    s_add_text (&m, "the name is held");
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_REFUSED
           && out.body.size == 16);
    s_free (&m);
    s_add_text (&m, PM_LINK_REFUSED);
    CHECK (s_parse (&m, &out, why) == 0 && out.body.size == 0);
    s_free (&m);
    s_add_text (&m, PM_LINK_UNKNOWN);
    CHECK (s_parse (&m, &out, why) == 0 && out.word == PM_LINK_W_UNKNOWN);
    s_free (&m);
}

static void
test_malformed (void)
{
    s_msg_t m = { 0 };
    CHECK (pm_link_parse (NULL, 0, &(pm_link_msg_t) { 0 }, (char [64]) { 0 },
                          64) == -1);
    s_add_text (&m, "HELLO");
    s_refused (&m, "unknown word");
    s_add_text (&m, "REGISTERE");           //  a prefix of a word
    s_refused (&m, "unknown word");
    s_add_text (&m, "REGISTERED\n");
    s_refused (&m, "unknown word");

    s_add_text (&m, PM_LINK_HEARTBEAT);
    s_add_text (&m, "extra");
    s_refused (&m, "HEARTBEAT with 1 frame");
    s_add_text (&m, PM_LINK_PUBLISH);
    s_add_text (&m, "log/web/");
    s_refused (&m, "PUBLISH with 1 frame");
    s_add_text (&m, PM_LINK_REQUEST);
    s_add_text (&m, "1234567");
    s_add_text (&m, "body");
    s_refused (&m, "token of 7 bytes");
    s_add_text (&m, PM_LINK_SUBSCRIBE);
    s_refused (&m, "SUBSCRIBE with 0 frames");

    //  REGISTER: instance, hello, names.
    s_add_text (&m, PM_LINK_REGISTER);
    s_add (&m, "", 0);
    s_add_hello (&m, "box1");
    s_refused (&m, "instance");
    char long_instance [PM_INSTANCE_MAX + 2];
    memset (long_instance, 'i', sizeof long_instance - 1);
    long_instance [sizeof long_instance - 1] = 0;
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, long_instance);
    s_add_hello (&m, "box1");
    s_refused (&m, "instance");
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_text (&m, "not msgpack");
    s_refused (&m, "does not decode");
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_hello (&m, NULL);
    s_refused (&m, "no valid agent");
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_hello (&m, "bad/name");
    s_refused (&m, "no valid agent");
    //  A bad name after a good one: what was taken is freed (ASan).
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_hello (&m, "box1");
    s_add_text (&m, "web");
    s_add (&m, "d\0b", 3);
    s_refused (&m, "service name 2");
    char long_name [PM_NAME_MAX + 2];
    memset (long_name, 'n', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    s_add_text (&m, PM_LINK_REGISTER);
    s_add_text (&m, "i");
    s_add_hello (&m, "box1");
    s_add_text (&m, long_name);
    s_refused (&m, "service name 1");

    //  REGISTERED: a heartbeat in digits, 1 to the maximum.
    const char *beats [] = { "", "0", "abc", "10x", "-5", " 5", "600001",
                             "99999999999999999999" };
    for (size_t i = 0; i < sizeof beats / sizeof beats [0]; i++) {
        s_add_text (&m, PM_LINK_REGISTERED);
        s_add_text (&m, beats [i]);
        s_refused (&m, "heartbeat");
    }
    char long_prefix [PM_TOPIC_MAX + 2];
    memset (long_prefix, 'p', sizeof long_prefix - 1);
    long_prefix [sizeof long_prefix - 1] = 0;
    s_add_text (&m, PM_LINK_REGISTERED);
    s_add_text (&m, "1000");
    s_add_text (&m, long_prefix);
    s_refused (&m, "prefix 1");
    s_add_text (&m, PM_LINK_SUBSCRIBE);
    s_add (&m, "lo\0g", 4);
    s_refused (&m, "no NUL");
    s_add_text (&m, PM_LINK_PUBLISH);
    s_add (&m, "", 0);
    s_add_text (&m, "body");
    s_refused (&m, "topic of 0 bytes");
}

static void
s_write_seed (const char *dir, const char *name, s_msg_t *m)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.link", dir, name);
    FILE *file = fopen (path, "wb");
    CHECK (file != NULL);
    for (size_t i = 0; file && i < m->count; i++) {
        unsigned char length [2] = { (unsigned char) (m->frames [i].size >> 8),
                                     (unsigned char) m->frames [i].size };
        CHECK (fwrite (length, 1, 2, file) == 2);
        CHECK (fwrite (m->frames [i].data, 1, m->frames [i].size, file)
               == m->frames [i].size);
    }
    CHECK (file && fclose (file) == 0);
    s_free (m);
}

static void
s_write_corpus (const char *dir)
{
    s_msg_t m = { 0 };
    s_register (&m);
    s_write_seed (dir, "register", &m);
    s_add_text (&m, PM_LINK_HEARTBEAT);
    s_write_seed (dir, "heartbeat", &m);
    s_add_text (&m, PM_LINK_REPLY);
    s_add (&m, s_token, sizeof s_token);
    s_add_hello (&m, "box1");
    s_write_seed (dir, "reply", &m);
    s_add_text (&m, PM_LINK_REQUEST);
    s_add (&m, s_token, sizeof s_token);
    s_add_text (&m, "\x83\xa1v\x01\xa2id\x01\xa3""cmd\xa5hello");
    s_write_seed (dir, "request", &m);
    s_add_text (&m, PM_LINK_PUBLISH);
    s_add_text (&m, "log/web/");
    s_add_text (&m, "\x81\xa1v\x01");
    s_write_seed (dir, "publish", &m);
    s_add_text (&m, PM_LINK_REGISTERED);
    s_add_text (&m, "1000");
    s_add_text (&m, "log/");
    s_add_text (&m, "state/");
    s_write_seed (dir, "registered", &m);
    s_add_text (&m, PM_LINK_REFUSED);
    s_add_text (&m, "the name box1 is held by a live agent");
    s_write_seed (dir, "refused", &m);
    s_add_text (&m, PM_LINK_UNKNOWN);
    s_write_seed (dir, "unknown", &m);
    s_add_text (&m, PM_LINK_SUBSCRIBE);
    s_add_text (&m, "agent/");
    s_write_seed (dir, "subscribe", &m);
    s_add_text (&m, PM_LINK_UNSUBSCRIBE);
    s_add_text (&m, "agent/");
    s_write_seed (dir, "unsubscribe", &m);
}

int
main (int argc, char **argv)
{
    if (argc == 3 && strcmp (argv [1], "--write-corpus") == 0) {
        s_write_corpus (argv [2]);
        return check_report ("test_link --write-corpus");
    }
    test_valid ();
    test_malformed ();
    return check_report ("test_link");
}
