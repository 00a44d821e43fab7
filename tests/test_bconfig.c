/*  test_bconfig.c - the broker's configuration file (broker/bconfig.c) */
#include "bconfig.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_dir [] = "/tmp/pmbus-test-bconfig-XXXXXX";

//  Loads text as a file; returns the config (or NULL, err filled).
static pm_bconfig_t *
s_load (const char *text, char *err, size_t errlen)
{
    char path [256];
    snprintf (path, sizeof path, "%s/broker.cfg", s_dir);
    FILE *file = fopen (path, "w");
    fputs (text, file);
    fclose (file);
    return pm_bconfig_load (path, err, errlen);
}

//  text fails, naming key at line with reason.
static void
s_error (int line, const char *text, int want_line, const char *key,
         const char *reason)
{
    char err [1024] = "";
    pm_bconfig_t *config = s_load (text, err, sizeof err);
    char where [256];
    snprintf (where, sizeof where, *key ? "broker.cfg:%d: %s: " : "broker.cfg:%d: %s", want_line, key);
    if (config || !strstr (err, where) || !strstr (err, reason)) {
        fprintf (stderr, "line %d: got %s (want %s...%s)\n", line,
                 config ? "success" : err, where, reason);
        s_check_failures++;
    }
    pm_bconfig_destroy (&config);
}

#define ENDPOINTS "control = \"ipc://c\"; events = \"ipc://e\"; " \
                  "agents = \"ipc://a\";"

int
main (void)
{
    CHECK (mkdtemp (s_dir));
    char err [1024];

    pm_bconfig_t *config = s_load ("broker: { name = \"lab\"; " ENDPOINTS
                                   " };\n", err, sizeof err);
    CHECK (config);
    if (config) {
        char want [512];
        snprintf (want, sizeof want, "ipc://%s/c", s_dir);
        CHECK (strcmp (config->control, want) == 0);
        CHECK (config->heartbeat == 1.0);
        CHECK (config->subscriber_queue == PM_BROKER_QUEUE);
        CHECK (config->secret_key == NULL);
    }
    pm_bconfig_destroy (&config);

    config = s_load ("broker: {\n name = \"lab\";\n"
                     " control = \"tcp://0.0.0.0:7700\";\n"
                     " events = \"tcp://0.0.0.0:7701\";\n"
                     " agents = \"tcp://0.0.0.0:7702\";\n"
                     " curve = { secret_key = \"k/b_secret\"; clients = \"k/c\";"
                     " agents = \"/abs/a\"; };\n heartbeat = 0.5;\n"
                     " subscriber_queue = 100;\n};\n", err, sizeof err);
    CHECK (config);
    if (config) {
        char want [512];
        snprintf (want, sizeof want, "%s/k/b_secret", s_dir);
        CHECK (strcmp (config->secret_key, want) == 0);
        CHECK (strcmp (config->agent_keys, "/abs/a") == 0);
        CHECK (config->heartbeat == 0.5);
        CHECK (config->subscriber_queue == 100);
    }
    pm_bconfig_destroy (&config);

    s_error (__LINE__, "agent: {};\n", 1, "agent", "unknown key");
    s_error (__LINE__, "x = 1;\n", 1, "x", "unknown key");
    s_error (__LINE__, "broker = 1;\n", 1, "broker", "expected a group");
    s_error (__LINE__, "broker: { " ENDPOINTS " };\n", 1, "broker.name",
             "missing");
    s_error (__LINE__, "broker: { name = \"a/b\"; " ENDPOINTS " };\n", 1,
             "broker.name", "not a valid name");
    s_error (__LINE__, "broker: { name = \"lab\"; control = \"ipc://c\"; "
             "events = \"ipc://e\"; };\n", 1, "broker", "needs agents");
    s_error (__LINE__, "broker: { name = \"lab\";\n control = \"http://x\"; "
             "};\n", 2, "broker.control", "expected an endpoint");
    s_error (__LINE__, "broker: { name = \"lab\";\n agents = \"tcp://x\"; "
             "};\n", 2, "broker.agents", "expected \"tcp://HOST:PORT\"");
    s_error (__LINE__, "broker: { name = \"lab\"; control = \"ipc://c\";\n"
             " events = \"tcp://127.0.0.1:1\"; agents = \"ipc://a\"; };\n", 2,
             "events", "needs CURVE keys");
    s_error (__LINE__, "broker: { name = \"lab\"; " ENDPOINTS "\n"
             " curve = { secret_key = \"k\"; clients = \"c\"; }; };\n", 2,
             "broker.curve", "needs secret_key, clients and agents");
    s_error (__LINE__, "broker: { name = \"lab\"; " ENDPOINTS "\n"
             " curve = { public = \"k\"; }; };\n", 2, "broker.curve.public",
             "unknown key 'public'");
    s_error (__LINE__, "broker: { name = \"lab\"; " ENDPOINTS "\n"
             " heartbeat = 0.01; };\n", 2, "broker.heartbeat",
             "expected 0.05 to 600");
    s_error (__LINE__, "broker: { name = \"lab\"; " ENDPOINTS "\n"
             " subscriber_queue = 0; };\n", 2, "broker.subscriber_queue",
             "1 to 1000000");
    s_error (__LINE__, "broker: { name = \"lab\"; " ENDPOINTS "\n"
             " colour = 1; };\n", 2, "broker.colour", "unknown key");
    s_error (__LINE__, "broker: { name = \"lab\"\n", 2, "", "syntax error");
    config = pm_bconfig_load ("/nonexistent/b.cfg", err, sizeof err);
    CHECK (!config && strstr (err, "/nonexistent/b.cfg: cannot read"));

    char path [256];
    snprintf (path, sizeof path, "%s/broker.cfg", s_dir);
    unlink (path);
    rmdir (s_dir);
    return check_report ("test_bconfig");
}
