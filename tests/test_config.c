/*  test_config.c - unit test of schema/config.c

    Writes config files into a fresh mkdtemp directory under /tmp, loads
    them and checks the structs, or the exact error: file, line, key path
    and reason.  Covers every key with its default, every rejected key,
    type and value, dependency errors and cycles, the start order, path
    resolution, @include, probe hosts resolved at load.  No network but
    the lookup of one .invalid name (which never resolves), no sleeps;
    the directory is removed at the end.
*/
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        exit (1); \
    } \
} while (0)

#define CHECK_STR(got, want) do { \
    const char *g_ = (got), *w_ = (want); \
    if (!g_ || strcmp (g_, w_) != 0) { \
        fprintf (stderr, "%s:%d: CHECK failed: %s is \"%s\", expected \"%s\"\n", \
                 __FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_); \
        exit (1); \
    } \
} while (0)

//  The test directory, as a real path (so it compares with config paths).
static char s_dir [4096];
static int s_files;

//  Writes text to s_dir/name (creating one level of subdirectory if name
//  has a slash) and returns the new path, which the caller frees.
static char *
s_write (const char *name, const char *text)
{
    char *path;
    CHECK (asprintf (&path, "%s/%s", s_dir, name) > 0);
    char *slash = strrchr (path, '/');
    *slash = 0;
    if (mkdir (path, 0755) == -1)
        CHECK (errno == EEXIST);
    *slash = '/';
    FILE *file = fopen (path, "w");
    CHECK (file);
    CHECK (fputs (text, file) >= 0);
    CHECK (fclose (file) == 0);
    return path;
}

//  Loads text as a new file; expects success.
static pm_config_t *
s_load_ok (int line, const char *text)
{
    char name [64];
    snprintf (name, sizeof name, "ok-%d.cfg", ++s_files);
    char *path = s_write (name, text);
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (path, err, sizeof err);
    if (!config) {
        fprintf (stderr, "%s:%d: expected success, got: %s\n", __FILE__, line, err);
        exit (1);
    }
    free (path);
    return config;
}
#define LOAD_OK(text) s_load_ok (__LINE__, text)

//  Loads text as a new file; expects an error that starts exactly with
//  "PATH:LINE: KEY: " and contains reason.
static void
s_load_error (int line, const char *text, int err_line, const char *key,
              const char *reason)
{
    char name [64];
    snprintf (name, sizeof name, "error-%d.cfg", ++s_files);
    char *path = s_write (name, text);
    char err [PM_CONFIG_ERR_MAX];
    memset (err, 'x', sizeof err);
    pm_config_t *config = pm_config_load (path, err, sizeof err);
    char prefix [8192];
    snprintf (prefix, sizeof prefix, "%s:%d: %s: ", path, err_line, key);
    if (config) {
        fprintf (stderr, "%s:%d: expected an error \"%s...%s\", got success\n",
                 __FILE__, line, prefix, reason);
        exit (1);
    }
    if (strncmp (err, prefix, strlen (prefix)) != 0 || !strstr (err, reason)) {
        fprintf (stderr, "%s:%d: expected \"%s...%s\"\n%*sgot      \"%s\"\n",
                 __FILE__, line, prefix, reason, (int) strlen (__FILE__) + 8,
                 "", err);
        exit (1);
    }
    free (path);
}
#define LOAD_ERROR(text, line, key, reason) \
    s_load_error (__LINE__, text, line, key, reason)

//  Loads path (as given); expects an error starting with want.
static void
s_load_error_raw (int line, const char *path, const char *want)
{
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (path, err, sizeof err);
    if (config || strncmp (err, want, strlen (want)) != 0) {
        fprintf (stderr, "%s:%d: expected \"%s...\", got \"%s\"\n", __FILE__,
                 line, want, config ? "success" : err);
        exit (1);
    }
}
#define LOAD_ERROR_RAW(path, want) s_load_error_raw (__LINE__, path, want)

static char *
s_join (const char *a, const char *b)
{
    char *path;
    CHECK (asprintf (&path, "%s/%s", a, b) > 0);
    return path;
}

static void
s_check_path (int line, const char *got, const char *relative)
{
    char *want = relative [0] == '/' ? strdup (relative) : s_join (s_dir, relative);
    if (!got || strcmp (got, want) != 0) {
        fprintf (stderr, "%s:%d: path is \"%s\", expected \"%s\"\n", __FILE__,
                 line, got ? got : "(null)", want);
        exit (1);
    }
    free (want);
}
#define CHECK_PATH(got, relative) s_check_path (__LINE__, got, relative)

//  A service "web" with a command and one more setting, on line 4.
#define WEB(setting) \
    "services: {\n  web: {\n    command = \"x\";\n    " setting "\n  };\n};\n"

/* ------------------------------------------------------------------ */

//  TCP endpoints are kept apart from the ipc ones, with their keys'
//  paths resolved against the config's directory.
static void
test_tcp (void)
{
    pm_config_t *config = LOAD_OK (
        "agent: {\n"
        "  control = \"tcp://0.0.0.0:7710\";\n"
        "  events = \"tcp://127.0.0.1:7711\";\n"
        "  curve = { secret_key = \"keys/box_secret\"; clients = \"keys/clients\"; };\n"
        "};\n");
    CHECK (config->control == NULL && config->events == NULL);
    CHECK_STR (config->tcp_control, "tcp://0.0.0.0:7710");
    CHECK_STR (config->tcp_events, "tcp://127.0.0.1:7711");
    CHECK_PATH (config->curve_secret_key, "keys/box_secret");
    CHECK_PATH (config->curve_clients, "keys/clients");
    CHECK (config->broker == NULL);
    pm_config_destroy (&config);
    config = LOAD_OK (
        "agent: {\n"
        "  broker = { endpoint = \"tcp://lab:7702\"; server_key = \"keys/broker\";"
        " key = \"keys/box_secret\"; };\n"
        "};\n");
    CHECK_STR (config->broker, "tcp://lab:7702");
    CHECK_PATH (config->broker_server_key, "keys/broker");
    CHECK_PATH (config->broker_key, "keys/box_secret");
    pm_config_destroy (&config);
    config = LOAD_OK ("agent: {\n  broker = { endpoint = \"ipc://b.sock\"; };\n};\n");
    CHECK (strncmp (config->broker, "ipc:///", 7) == 0
           && strstr (config->broker, "/b.sock"));
    pm_config_destroy (&config);
}

static void
test_full (void)
{
    pm_config_t *config = LOAD_OK (
        "# every key\n"
        "agent: {\n"
        "  name = \"demo\";\n"
        "  log_dir = \"var/log\";\n"
        "  log_format = \"json\";\n"
        "  control = \"ipc:///tmp/x/control.sock\";\n"
        "  events = \"ipc:///tmp/x/events.sock\";\n"
        "};\n"
        "services: {\n"
        "  db: {\n"                                              // 10
        "    argv = [\"postgres\", \"-D\", \"data\", \"\"];\n"
        "    working_dir = \"data\";\n"
        "    environment = { PGPORT = \"5432\"; DEBUG = 1; BIG = 5000000000L; };\n"
        "    stop_signal = \"SIGINT\";\n"
        "    stop_timeout = 2.5;\n"
        "    autostart = false;\n"
        "    restart = \"on-failure\";\n"
        "    log_file = \"db/postgres.log\";\n"
        "  };\n"
        "  web: {\n"                                             // 20
        "    command = \"python3 -m http.server 8080\";\n"
        "    depends_on = { db = \"ready\"; init = \"completed\"; };\n"
        "    stop_signal = 2;\n"
        "    stop_timeout = 7;\n"
        "    restart = \"always\";\n"
        "    autostart = true;\n"
        "  };\n"
        "  init: { command = \"./init.sh\"; restart = \"no\"; stop_signal = \"HUP\"; };\n"
        "};\n");

    char *path = s_join (s_dir, "ok-1.cfg");
    CHECK_STR (config->path, path);
    free (path);
    CHECK_STR (config->dir, s_dir);
    CHECK_STR (config->name, "demo");
    CHECK_PATH (config->log_dir, "var/log");
    CHECK (config->log_format == PM_LOG_JSON);
    CHECK_STR (config->control, "ipc:///tmp/x/control.sock");
    CHECK_STR (config->events, "ipc:///tmp/x/events.sock");
    CHECK (config->tcp_control == NULL && config->tcp_events == NULL);
    CHECK (config->curve_secret_key == NULL && config->curve_clients == NULL);
    CHECK (config->services_count == 3);

    pm_config_service_t *db = &config->services [0];
    CHECK_STR (db->name, "db");
    CHECK (db->line == 10);
    CHECK (db->command == NULL);
    CHECK (db->argc == 4);
    CHECK_STR (db->argv [0], "postgres");
    CHECK_STR (db->argv [1], "-D");
    CHECK_STR (db->argv [2], "data");
    CHECK_STR (db->argv [3], "");
    CHECK (db->argv [4] == NULL);
    CHECK_PATH (db->working_dir, "data");
    CHECK (db->env_count == 3);
    CHECK_STR (db->env [0].key, "PGPORT");
    CHECK_STR (db->env [0].value, "5432");
    CHECK_STR (db->env [1].key, "DEBUG");
    CHECK_STR (db->env [1].value, "1");
    CHECK_STR (db->env [2].key, "BIG");
    CHECK_STR (db->env [2].value, "5000000000");
    CHECK (db->deps_count == 0);
    CHECK (db->stop_signal == SIGINT);
    CHECK (db->stop_timeout == 2.5);
    CHECK (db->autostart == false);
    CHECK (db->restart == PM_RESTART_ON_FAILURE);
    CHECK_PATH (db->log_file, "var/log/db/postgres.log");

    pm_config_service_t *web = &config->services [1];
    CHECK_STR (web->name, "web");
    CHECK (web->line == 20);
    CHECK_STR (web->command, "python3 -m http.server 8080");
    CHECK (web->argv == NULL && web->argc == 0);
    CHECK_STR (web->working_dir, s_dir);
    CHECK (web->env_count == 0);
    CHECK (web->deps_count == 2);
    CHECK_STR (web->deps [0].name, "db");
    CHECK (web->deps [0].cond == PM_COND_READY);
    CHECK (web->deps [0].index == 0);
    CHECK_STR (web->deps [1].name, "init");
    CHECK (web->deps [1].cond == PM_COND_COMPLETED);
    CHECK (web->deps [1].index == 2);
    CHECK (web->stop_signal == SIGINT);
    CHECK (web->stop_timeout == 7.0);
    CHECK (web->autostart == true);
    CHECK (web->restart == PM_RESTART_ALWAYS);
    CHECK_PATH (web->log_file, "var/log/web.log");

    pm_config_service_t *init = &config->services [2];
    CHECK (init->stop_signal == SIGHUP);
    CHECK (init->restart == PM_RESTART_NO);

    CHECK (config->start_order [0] == 0);
    CHECK (config->start_order [1] == 2);
    CHECK (config->start_order [2] == 1);

    CHECK (pm_config_find (config, "db") == 0);
    CHECK (pm_config_find (config, "init") == 2);
    CHECK (pm_config_find (config, "nope") == -1);
    CHECK (pm_config_find (config, "") == -1);

    pm_config_destroy (&config);
    CHECK (config == NULL);
    pm_config_destroy (&config);
}

//  log_* keys: agent defaults, per-service overrides, sizes and ranges.
static void
test_log_settings (void)
{
    pm_config_t *config = LOAD_OK (
        "services: {\n"
        "  one: { command = \"true\"; };\n"
        "};\n");
    pm_config_log_t *log = &config->services [0].log;
    CHECK (log->format == PM_LOG_TEXT);
    CHECK (!log->timestamps);
    CHECK (log->max_size == PM_LOG_MAX_SIZE_DEFAULT);
    CHECK (log->backups == PM_LOG_BACKUPS_DEFAULT);
    CHECK (log->line_max == PM_LOG_LINE_MAX_DEFAULT);
    CHECK (log->ring == PM_LOG_RING_DEFAULT);
    CHECK (log->ring_bytes == PM_LOG_RING_BYTES_DEFAULT);
    pm_config_destroy (&config);

    config = LOAD_OK (
        "agent: { log_format = \"json\"; log_max_size = \"2M\"; log_backups = 5;\n"
        "         log_ring = 100; log_timestamps = true; };\n"
        "services: {\n"
        "  one: { command = \"true\"; };\n"
        "  two: { command = \"true\"; log_format = \"text\"; log_max_size = 8192;\n"
        "         log_backups = 0; log_line_max = \"1K\"; log_ring = 0;\n"
        "         log_ring_bytes = \"64K\"; log_timestamps = false; };\n"
        "};\n");
    CHECK (config->log_format == PM_LOG_JSON);
    log = &config->services [0].log;
    CHECK (log->format == PM_LOG_JSON);
    CHECK (log->timestamps);
    CHECK (log->max_size == 2 * 1024 * 1024);
    CHECK (log->backups == 5);
    CHECK (log->ring == 100);
    log = &config->services [1].log;
    CHECK (log->format == PM_LOG_TEXT);
    CHECK (!log->timestamps);
    CHECK (log->max_size == 8192);
    CHECK (log->backups == 0);
    CHECK (log->line_max == 1024);
    CHECK (log->ring == 0);
    CHECK (log->ring_bytes == 64 * 1024);
    pm_config_destroy (&config);

    LOAD_ERROR ("agent: {\n  log_max_size = \"10X\";\n};\n", 2,
                "agent.log_max_size", "expected a size like");
    config = LOAD_OK ("agent: { subscriber_queue = 8; };\n");
    CHECK (config->subscriber_queue == 8);
    pm_config_destroy (&config);
    LOAD_ERROR ("agent: {\n  subscriber_queue = 0;\n};\n", 2,
                "agent.subscriber_queue", "");
    LOAD_ERROR ("agent: {\n  subscriber_queue = 1000001;\n};\n", 2,
                "agent.subscriber_queue", "");
    LOAD_ERROR ("agent: {\n  subscriber_queue = \"8K\";\n};\n", 2,
                "agent.subscriber_queue", "");
    LOAD_ERROR ("agent: {\n  log_max_size = 100;\n};\n", 2,
                "agent.log_max_size", "at least 4096");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_backups = 101;\n  };\n};\n", 4,
                "services.a.log_backups", "expected 0 to 100");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_ring = \"many\";\n  };\n};\n", 4,
                "services.a.log_ring", "expected a whole number, not a string");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_line_max = 10;\n  };\n};\n", 4,
                "services.a.log_line_max", "expected a size from 80");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_line_max = \"1M\";\n  };\n};\n", 4,
                "services.a.log_line_max", "from 80 to 262144");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_timestamps = 1;\n  };\n};\n", 4,
                "services.a.log_timestamps", "expected true or false");
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n"
                "    log_format = \"xml\";\n  };\n};\n", 4,
                "services.a.log_format", "expected \"text\" or \"json\"");
}

//  The probe's address was resolved to a loopback one of family (either,
//  for AF_UNSPEC: localhost may be 127.0.0.1 or ::1) and port.
static void
s_check_loopback (const pm_config_probe_t *probe, int family, int port)
{
    const struct sockaddr *addr = (const struct sockaddr *) &probe->addr;
    if (family != AF_UNSPEC)
        CHECK (addr->sa_family == family);
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        CHECK (probe->addrlen == sizeof *in);
        CHECK (ntohl (in->sin_addr.s_addr) == INADDR_LOOPBACK);
        CHECK (ntohs (in->sin_port) == port);
    }
    else {
        CHECK (addr->sa_family == AF_INET6);
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
        CHECK (probe->addrlen == sizeof *in6);
        CHECK (IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr));
        CHECK (ntohs (in6->sin6_port) == port);
    }
}

//  ready / alive probes and restart tuning.
static void
test_probes_and_restart (void)
{
    pm_config_t *config = LOAD_OK (
        "services: {\n"
        "  plain: { command = \"true\"; };\n"
        "  db: { command = \"x\"; restart = \"on-failure\";\n"
        "        ready = { tcp = \"127.0.0.1:5432\"; interval = 0.5; deadline = 20; };\n"
        "        alive = { exec = \"pg_isready\"; failures = 2; timeout = 1.5;\n"
        "                  initial_delay = 3; };\n"
        "        backoff_initial = 0.5; backoff_max = 8; max_restarts = 4;\n"
        "        restart_window = 30; min_uptime = 2; };\n"
        "  web: { command = \"x\"; ready = { http = \"http://[::1]:8080/health?x=1\"; }; };\n"
        "  root: { command = \"x\"; ready = { http = \"http://localhost:80\"; }; };\n"
        "  logr: { command = \"x\"; ready = { log = \"listening on [0-9]+\"; }; };\n"
        "  note: { command = \"x\"; ready = { notify_fd = 3; }; };\n"
        "};\n");
    pm_config_service_t *plain = &config->services [0];
    CHECK (plain->ready.kind == PM_PROBE_NONE);
    CHECK (plain->alive.kind == PM_PROBE_NONE);
    CHECK (plain->backoff_initial == 1.0 && plain->backoff_max == 30.0);
    CHECK (plain->max_restarts == 5 && plain->restart_window == 60.0);
    CHECK (plain->min_uptime == 1.0);
    pm_config_service_t *db = &config->services [1];
    CHECK (db->ready.kind == PM_PROBE_TCP);
    CHECK_STR (db->ready.host, "127.0.0.1");
    CHECK (db->ready.port == 5432);
    CHECK (db->ready.interval == 0.5 && db->ready.deadline == 20);
    CHECK (db->ready.timeout == 5.0 && db->ready.initial_delay == 0);
    CHECK (db->ready.line == 4);
    CHECK (db->alive.kind == PM_PROBE_EXEC);
    CHECK_STR (db->alive.command, "pg_isready");
    CHECK (db->alive.failures == 2 && db->alive.timeout == 1.5);
    CHECK (db->alive.interval == 10.0 && db->alive.initial_delay == 3);
    CHECK (db->backoff_initial == 0.5 && db->backoff_max == 8);
    CHECK (db->max_restarts == 4 && db->restart_window == 30);
    CHECK (db->min_uptime == 2);
    pm_config_service_t *web = &config->services [2];
    CHECK (web->ready.kind == PM_PROBE_HTTP);
    CHECK_STR (web->ready.host, "::1");
    CHECK (web->ready.port == 8080);
    CHECK_STR (web->ready.path, "/health?x=1");
    CHECK (web->ready.deadline == 60.0 && web->ready.interval == 1.0);
    CHECK_STR (config->services [3].ready.path, "/");
    //  Resolved at load: numeric v4 and v6, and localhost from /etc/hosts.
    s_check_loopback (&db->ready, AF_INET, 5432);
    s_check_loopback (&web->ready, AF_INET6, 8080);
    s_check_loopback (&config->services [3].ready, AF_UNSPEC, 80);
    CHECK (config->services [4].ready.kind == PM_PROBE_LOG);
    CHECK_STR (config->services [4].ready.regex, "listening on [0-9]+");
    CHECK (config->services [5].ready.kind == PM_PROBE_NOTIFY_FD);
    CHECK (config->services [5].ready.notify_fd == 3);
    pm_config_destroy (&config);

#define PROBE_ERROR(body, key, reason) \
    LOAD_ERROR ("services: {\n  web: {\n    command = \"x\";\n    " body "\n  };\n};\n", \
                4, key, reason)
    PROBE_ERROR ("ready = 1;", "services.web.ready", "expected a group");
    PROBE_ERROR ("ready = { interval = 1; };", "services.web.ready",
                 "no probe given");
    PROBE_ERROR ("ready = { tcp = \"a:1\"; exec = \"x\"; };",
                 "services.web.ready.exec", "one kind of probe per group");
    PROBE_ERROR ("ready = { tcp = \"nohost\"; };", "services.web.ready.tcp",
                 "expected \"host:port\"");
    PROBE_ERROR ("ready = { tcp = \"h:70000\"; };", "services.web.ready.tcp",
                 "port from 1 to 65535");
    PROBE_ERROR ("ready = { http = \"https://h:1/\"; };",
                 "services.web.ready.http", "https is not supported");
    PROBE_ERROR ("ready = { log = \"(\"; };", "services.web.ready.log",
                 "bad regular expression");
    //  Hosts are resolved at load; a name nobody can resolve is an error
    //  there, not a probe failing at every attempt (.invalid never
    //  resolves, RFC 6761).
    PROBE_ERROR ("ready = { tcp = \"nosuch.invalid:80\"; };",
                 "services.web.ready.tcp",
                 "cannot resolve host 'nosuch.invalid': ");
    PROBE_ERROR ("alive = { http = \"http://nosuch.invalid:8080/up\"; };",
                 "services.web.alive.http",
                 "cannot resolve host 'nosuch.invalid': ");
    PROBE_ERROR ("ready = { notify_fd = 1; };", "services.web.ready.notify_fd",
                 "from 3 to 255");
    PROBE_ERROR ("ready = { exec = \"x\"; failures = 2; };",
                 "services.web.ready.failures", "unknown key 'failures'");
    PROBE_ERROR ("alive = { log = \"x\"; };", "services.web.alive.log",
                 "can only tell readiness");
    PROBE_ERROR ("alive = { exec = \"x\"; deadline = 2; };",
                 "services.web.alive.deadline", "unknown key 'deadline'");
    PROBE_ERROR ("ready = { exec = \"x\"; timeout = 0; };",
                 "services.web.ready.timeout", "expected 0.01 to 3600 seconds");
    PROBE_ERROR ("max_restarts = -1;", "services.web.max_restarts",
                 "expected 0 to 1000");
    PROBE_ERROR ("min_uptime = \"long\";", "services.web.min_uptime",
                 "expected a number of seconds");
    LOAD_ERROR ("services: {\n  web: {\n    command = \"x\";\n"
                "    backoff_initial = 5; backoff_max = 1;\n  };\n};\n",
                2, "services.web", "backoff_max (1 s) is less than");
#undef PROBE_ERROR
}

static void
test_defaults (void)
{
    pm_config_t *config = LOAD_OK (
        "services: {\n"
        "  one: { command = \"true\"; };\n"
        "};\n");
    CHECK (config->name == NULL);
    CHECK_PATH (config->log_dir, "logs");
    CHECK (config->log_format == PM_LOG_TEXT);
    CHECK (config->control == NULL);
    CHECK (config->events == NULL);
    CHECK (config->subscriber_queue == 4096);
    CHECK (config->services_count == 1);
    pm_config_service_t *one = &config->services [0];
    CHECK (one->line == 2);
    CHECK_STR (one->working_dir, s_dir);
    CHECK (one->env == NULL || one->env_count == 0);
    CHECK (one->env_count == 0);
    CHECK (one->deps_count == 0);
    CHECK (one->stop_signal == SIGTERM);
    CHECK (one->stop_timeout == 10.0);
    CHECK (one->autostart == true);
    CHECK (one->restart == PM_RESTART_NO);
    CHECK_PATH (one->log_file, "logs/one.log");
    CHECK (config->start_order [0] == 0);
    pm_config_destroy (&config);

    //  No services at all: valid, with zero services.
    config = LOAD_OK ("");
    CHECK (config->services_count == 0);
    CHECK (config->start_order);
    CHECK_PATH (config->log_dir, "logs");
    pm_config_destroy (&config);

    config = LOAD_OK ("agent: { name = \"solo\"; };\n");
    CHECK (config->services_count == 0);
    CHECK_STR (config->name, "solo");
    pm_config_destroy (&config);

    config = LOAD_OK ("services: {};\nagent: {};\n");
    CHECK (config->services_count == 0);
    CHECK (config->name == NULL);
    pm_config_destroy (&config);

    //  Empty environment and depends_on are fine; log_dir given after
    //  services still applies to them.
    config = LOAD_OK (
        "services: { a: { command = \"x\"; environment = {}; depends_on = (); }; };\n"
        "agent: { log_dir = \"/var/tmp/pm\"; };\n");
    CHECK (config->services [0].env_count == 0);
    CHECK (config->services [0].deps_count == 0);
    CHECK_STR (config->services [0].log_file, "/var/tmp/pm/a.log");
    pm_config_destroy (&config);
}

static void
test_paths (void)
{
    //  A config in a subdirectory, loaded through a symlink: paths are
    //  relative to the real file's directory.
    free (s_write ("proj/x", "placeholder\n"));
    char *path = s_write ("proj/pm.cfg",
        "agent: { log_dir = \"../shared//logs/./\"; control = \"ipc://run/../ctl.sock\";\n"
        "         events = \"ipc:///tmp//ev.sock\"; };\n"
        "services: {\n"
        "  a: { command = \"x\"; working_dir = \"./src/../build/\"; log_file = \"sub/a.txt\"; };\n"
        "  b: { command = \"x\"; working_dir = \"/opt/b/../c/\"; log_file = \"/abs/b.log\"; };\n"
        "  c: { command = \"x\"; working_dir = \"..\";\n"
        "       log_file = \"../../../../../../../../c.log\"; };\n"
        "  d: { command = \"x\"; working_dir = \".\"; };\n"
        "};\n");
    char *link = s_join (s_dir, "link.cfg");
    CHECK (symlink (path, link) == 0);
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (link, err, sizeof err);
    if (!config)
        fprintf (stderr, "%s\n", err);
    CHECK (config);
    CHECK_STR (config->path, path);
    CHECK_PATH (config->dir, "proj");
    CHECK_PATH (config->log_dir, "shared/logs");
    //  A relative ipc endpoint is relative to the config, like the rest.
    char *ctl = s_join (s_dir, "proj/ctl.sock");
    char want [8192];
    snprintf (want, sizeof want, "ipc://%s", ctl);
    CHECK_STR (config->control, want);
    CHECK_STR (config->events, "ipc:///tmp/ev.sock");
    free (ctl);
    CHECK_PATH (config->services [0].working_dir, "proj/build");
    CHECK_PATH (config->services [0].log_file, "shared/logs/sub/a.txt");
    CHECK_STR (config->services [1].working_dir, "/opt/c");
    CHECK_STR (config->services [1].log_file, "/abs/b.log");
    CHECK_STR (config->services [2].working_dir, s_dir);
    CHECK_STR (config->services [2].log_file, "/c.log");
    CHECK_PATH (config->services [3].working_dir, "proj");
    CHECK_PATH (config->services [3].log_file, "shared/logs/d.log");
    pm_config_destroy (&config);

    //  A relative path as given: errors name it as given, config->path is
    //  absolute.
    char cwd [4096];
    CHECK (getcwd (cwd, sizeof cwd));
    CHECK (chdir (s_dir) == 0);
    config = pm_config_load ("proj/pm.cfg", err, sizeof err);
    CHECK (config);
    CHECK_STR (config->path, path);
    pm_config_destroy (&config);
    free (s_write ("proj/bad.cfg", "services: {\n  a: { command = 3; };\n};\n"));
    LOAD_ERROR_RAW ("proj/bad.cfg",
                    "proj/bad.cfg:2: services.a.command: expected a string");
    LOAD_ERROR_RAW ("./proj/../proj/bad.cfg",
                    "./proj/../proj/bad.cfg:2: services.a.command:");
    CHECK (chdir (cwd) == 0);
    free (link);
    free (path);
}

//  Loads path with its mtime set to now + offset seconds.
static pm_config_t *
s_load_touched (const char *path, int offset)
{
    struct timespec times [2];
    clock_gettime (CLOCK_REALTIME, &times [0]);
    times [0].tv_sec += offset;
    times [1] = times [0];
    CHECK (utimensat (AT_FDCWD, path, times, 0) == 0);
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (path, err, sizeof err);
    CHECK (config);
    return config;
}

//  The identity of the file as read (for the agent's record): known for
//  a single file last changed before the read began; unknown when the
//  file changed in the clock tick the read began in (or later), and with
//  @include (a change there would not show in the main file).
static void
test_file_identity (void)
{
    char *path = s_write ("id/one.cfg", "services: { a: { command = \"x\"; }; };\n");
    pm_config_t *config = s_load_touched (path, -10);
    struct stat st;
    CHECK (stat (path, &st) == 0);
    pm_file_id_t id;
    pm_file_id_of (&st, &id);
    CHECK (config->has_file_id);
    CHECK (pm_file_id_equal (&config->file_id, &id));
    pm_config_destroy (&config);
    config = s_load_touched (path, 10);
    CHECK (!config->has_file_id);
    pm_config_destroy (&config);
    free (s_write ("id/part.inc", "services: { a: { command = \"x\"; }; };\n"));
    char *with = s_write ("id/with.cfg", "@include \"part.inc\"\n");
    config = s_load_touched (with, -10);
    CHECK (config->services_count == 1 && !config->has_file_id);
    pm_config_destroy (&config);
    free (with);
    free (path);
}

static void
test_include (void)
{
    //  @include is relative to the config's directory, not the cwd; a
    //  setting from the included file is reported in that file.
    free (s_write ("inc/services.inc",
        "services: {\n"
        "  a: { command = \"x\"; };\n"
        "  b: { command = \"x\"; autostart = 1; };\n"
        "};\n"));
    free (s_write ("inc/good.inc", "services: { a: { command = \"x\"; }; };\n"));
    char *good = s_write ("inc/good.cfg", "agent: { name = \"inc\"; };\n@include \"good.inc\"\n");
    char *bad = s_write ("inc/bad.cfg", "agent: { name = \"inc\"; };\n@include \"services.inc\"\n");
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (good, err, sizeof err);
    if (!config)
        fprintf (stderr, "%s\n", err);
    CHECK (config);
    CHECK (config->services_count == 1);
    pm_config_destroy (&config);
    LOAD_ERROR_RAW (bad, "services.inc:3: services.b.autostart: expected true or false");
    free (good);
    free (bad);

    char *missing = s_write ("inc/missing.cfg", "\n@include \"missing.inc\"\n");
    char want [8192];
    snprintf (want, sizeof want, "%s:2: syntax error: cannot open include file",
              missing);
    LOAD_ERROR_RAW (missing, want);
    free (missing);
}

static void
test_file_errors (void)
{
    char *missing = s_join (s_dir, "missing.cfg");
    char want [8192];
    snprintf (want, sizeof want, "%s: cannot read: No such file or directory",
              missing);
    LOAD_ERROR_RAW (missing, want);
    free (missing);

    snprintf (want, sizeof want, "%s: cannot read: Is a directory", s_dir);
    LOAD_ERROR_RAW (s_dir, want);

    LOAD_ERROR_RAW ("/dev/null", "/dev/null: not a regular file");
    //  A FIFO is refused at once, not waited on for a writer (the alarm
    //  in main fails a hang).
    char *fifo;
    CHECK (asprintf (&fifo, "%s/pipe.cfg", s_dir) > 0);
    CHECK (mkfifo (fifo, 0600) == 0);
    snprintf (want, sizeof want, "%s: not a regular file", fifo);
    LOAD_ERROR_RAW (fifo, want);
    unlink (fifo);
    free (fifo);

    if (geteuid () != 0) {
        char *locked = s_write ("locked.cfg", "services: {};\n");
        CHECK (chmod (locked, 0) == 0);
        snprintf (want, sizeof want, "%s: cannot read: Permission denied", locked);
        LOAD_ERROR_RAW (locked, want);
        free (locked);
    }

    //  No error buffer: still NULL, no crash.  A tiny buffer truncates.
    char *bad = s_write ("bad.cfg", "services = 1;\n");
    CHECK (pm_config_load (bad, NULL, 0) == NULL);
    char tiny [8];
    CHECK (pm_config_load (bad, tiny, sizeof tiny) == NULL);
    CHECK (strlen (tiny) == 7);
    free (bad);
}

static void
test_syntax_errors (void)
{
    //  The message carries libconfig's line and text.
    char *path = s_write ("syntax.cfg",
        "services: {\n"
        "  a: { command = \"x\"; };\n"
        "  b: { command = ; };\n"
        "};\n");
    char want [8192];
    snprintf (want, sizeof want, "%s:3: syntax error", path);
    LOAD_ERROR_RAW (path, want);
    free (path);

    path = s_write ("dup.cfg",
        "services: {\n"
        "  a: { command = \"x\"; };\n"
        "  a: { command = \"y\"; };\n"
        "};\n");
    snprintf (want, sizeof want, "%s:3: syntax error: duplicate setting name",
              path);
    LOAD_ERROR_RAW (path, want);
    free (path);

    path = s_write ("unterminated.cfg",
        "services: {\n"
        "  a: { command = \"x\"; };\n");
    snprintf (want, sizeof want, "%s:3: syntax error", path);
    LOAD_ERROR_RAW (path, want);
    free (path);
}

static void
test_key_errors (void)
{
    LOAD_ERROR ("agent: {};\nservices: {};\nservice: {};\n",
                3, "service", "unknown key 'service'");
    LOAD_ERROR ("agent: {\n  name = \"x\";\n  logdir = \"x\";\n};\n",
                3, "agent.logdir", "unknown key 'logdir'");

    //  An unknown key is reported where it is, after earlier good keys.
    LOAD_ERROR ("services: {\n  web: {\n    comand = \"x\";\n  };\n};\n",
                3, "services.web.comand", "unknown key 'comand'");
}

static void
test_type_errors (void)
{
    LOAD_ERROR ("agent = 1;\n", 1, "agent", "expected a group");
    LOAD_ERROR ("agent: {};\nservices = [\"a\"];\n", 2, "services",
                "expected a group");
    LOAD_ERROR ("services: {\n  web = \"x\";\n};\n", 2, "services.web",
                "expected a group");
    LOAD_ERROR ("services: {\n  web: {\n    command = 3;\n  };\n};\n",
                3, "services.web.command", "expected a string, not an integer");
    LOAD_ERROR (WEB ("autostart = \"yes\";"),
                4, "services.web.autostart", "expected true or false, not a string");
    LOAD_ERROR (WEB ("autostart = 1;"),
                4, "services.web.autostart", "expected true or false");
    LOAD_ERROR (WEB ("working_dir = 5;"),
                4, "services.web.working_dir", "expected a string");
    LOAD_ERROR (WEB ("log_file = true;"),
                4, "services.web.log_file", "expected a string, not a boolean");
    LOAD_ERROR (WEB ("log_file = \"\";"),
                4, "services.web.log_file", "empty path");
    LOAD_ERROR (WEB ("environment = [\"A=1\"];"),
                4, "services.web.environment", "expected a group");
    LOAD_ERROR ("services: {\n  web: {\n    command = \"x\";\n    environment = {\n"
                "      A = \"1\";\n      B = true;\n    };\n  };\n};\n",
                6, "services.web.environment.B", "expected a string or an integer, not a boolean");
    LOAD_ERROR ("services: {\n  web: {\n    command = \"x\";\n    environment = {\n"
                "      A = 1.5;\n    };\n  };\n};\n",
                5, "services.web.environment.A", "expected a string or an integer, not a number");
    LOAD_ERROR ("services: {\n  web: {\n    command = \"x\";\n    environment = {\n"
                "      MY-VAR = \"1\";\n    };\n  };\n};\n",
                5, "services.web.environment.MY-VAR", "not a valid variable name");
    LOAD_ERROR (WEB ("stop_timeout = \"10\";"),
                4, "services.web.stop_timeout", "expected a number of seconds");
    LOAD_ERROR (WEB ("stop_signal = 1.0;"),
                4, "services.web.stop_signal", "expected a signal name");
}

static void
test_value_errors (void)
{
    //  agent
    LOAD_ERROR ("agent: {\n  name = \".hidden\";\n};\n", 2, "agent.name",
                "'.hidden' is not a valid agent name");
    LOAD_ERROR ("agent: {\n  name = \"a/b\";\n};\n", 2, "agent.name",
                "not a valid agent name");
    LOAD_ERROR ("agent: {\n  name = \"\";\n};\n", 2, "agent.name",
                "not a valid agent name");
    char text [1024];
    snprintf (text, sizeof text, "agent: {\n  name = \"%065d\";\n};\n", 7);
    LOAD_ERROR (text, 2, "agent.name", "not a valid agent name");
    snprintf (text, sizeof text, "agent: {\n  name = \"%064d\";\n};\n", 7);
    pm_config_t *config = LOAD_OK (text);
    CHECK (strlen (config->name) == 64);
    pm_config_destroy (&config);
    LOAD_ERROR ("agent: {\n  name = 7;\n};\n", 2, "agent.name", "expected a string");
    LOAD_ERROR ("agent: {\n\n  log_format = \"yaml\";\n};\n", 3, "agent.log_format",
                "expected \"text\" or \"json\"");
    LOAD_ERROR ("agent: {\n  log_dir = \"\";\n};\n", 2, "agent.log_dir", "empty path");
    LOAD_ERROR ("agent: {\n  log_dir = [\"x\"];\n};\n", 2, "agent.log_dir",
                "expected a string, not an array");
    LOAD_ERROR ("agent: {\n  control = \"http://x\";\n};\n", 2, "agent.control",
                "expected an endpoint");
    LOAD_ERROR ("agent: {\n  events = \"ipc://\";\n};\n", 2, "agent.events",
                "expected an endpoint");
    LOAD_ERROR ("agent: {\n  events = \"tcp://127.0.0.1\";\n};\n", 2, "agent.events",
                "expected \"tcp://HOST:PORT\"");
    LOAD_ERROR ("agent: {\n  events = \"tcp://:5555\";\n};\n", 2, "agent.events",
                "expected \"tcp://HOST:PORT\"");
    LOAD_ERROR ("agent: {\n  events = 5556;\n};\n", 2, "agent.events",
                "expected a string");
    //  TCP: both sockets, and only with keys.
    LOAD_ERROR ("agent: {\n  curve = { secret_key = \"k\"; clients = \"c\"; };\n"
                "  events = \"tcp://127.0.0.1:7711\";\n};\n", 3, "agent.events",
                "a TCP endpoint for events needs one for control too");
    LOAD_ERROR ("agent: {\n  control = \"tcp://127.0.0.1:7710\";\n"
                "  events = \"ipc://e.sock\";\n"
                "  curve = { secret_key = \"k\"; clients = \"c\"; };\n};\n", 2,
                "agent.control", "a TCP endpoint for control needs one for events");
    LOAD_ERROR ("agent: {\n  control = \"tcp://127.0.0.1:7710\";\n"
                "  events = \"tcp://127.0.0.1:7711\";\n};\n", 2, "agent.control",
                "tcp://127.0.0.1:7710 is a TCP endpoint, which needs CURVE keys: "
                "agent.curve = { secret_key");
    LOAD_ERROR ("agent: {\n  curve = { secret_key = \"k\"; };\n};\n", 2,
                "agent.curve", "needs clients");
    LOAD_ERROR ("agent: {\n  curve = { clients = \"c\"; };\n};\n", 2,
                "agent.curve", "needs secret_key");
    LOAD_ERROR ("agent: {\n  curve = { secret_key = \"k\"; clients = \"c\";\n"
                "    public_key = \"p\"; };\n};\n", 3, "agent.curve.public_key",
                "unknown key 'public_key'");
    LOAD_ERROR ("agent: {\n  curve = \"k\";\n};\n", 2, "agent.curve",
                "expected a group");
    //  agent.broker: an endpoint, and over TCP both keys.
    LOAD_ERROR ("agent: {\n  broker = { server_key = \"k\"; };\n};\n", 2,
                "agent.broker", "needs endpoint");
    LOAD_ERROR ("agent: {\n  broker = { endpoint = \"tcp://h:1\"; key = \"k\"; };"
                "\n};\n", 2, "agent.broker", "needs CURVE keys");
    LOAD_ERROR ("agent: {\n  broker = { endpoint = \"ipc://b\"; port = 1; };"
                "\n};\n", 2, "agent.broker.port", "unknown key 'port'");
    //  A Unix socket path holds 107 bytes.
    snprintf (text, sizeof text, "agent: {\n  control = \"ipc:///%0107d\";\n};\n", 7);
    LOAD_ERROR (text, 2, "agent.control",
                "socket path is 108 bytes, longer than the 107");
    snprintf (text, sizeof text, "agent: {\n  control = \"ipc:///%0106d\";\n};\n", 7);
    config = LOAD_OK (text);
    CHECK (strlen (config->control) == 6 + 107);
    pm_config_destroy (&config);

    //  command and argv
    LOAD_ERROR ("services: {\n  web: {\n    command = \"\";\n  };\n};\n",
                3, "services.web.command", "empty command");
    LOAD_ERROR ("services: {\n  web: {\n    command = \"  \\t \";\n  };\n};\n",
                3, "services.web.command", "empty command");
    LOAD_ERROR (WEB ("argv = [\"x\"];"),
                4, "services.web.argv", "set \"command\" or \"argv\", not both");
    LOAD_ERROR ("services: {\n  web: {\n    argv = [\"x\"];\n"
                "    autostart = true;\n    command = \"x\";\n  };\n};\n",
                5, "services.web.command", "not both");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  web: {\n"
                "    autostart = true;\n  };\n};\n",
                3, "services.web", "needs \"command\"");
    LOAD_ERROR ("services: {\n  web: {\n    argv = [];\n  };\n};\n",
                3, "services.web.argv", "empty argv");
    LOAD_ERROR ("services: {\n  web: {\n    argv = \"ls -l\";\n  };\n};\n",
                3, "services.web.argv", "expected a list of strings");
    LOAD_ERROR ("services: {\n  web: {\n    argv = (\"ls\",\n      1);\n  };\n};\n",
                4, "services.web.argv[1]", "expected a string, not an integer");
    LOAD_ERROR ("services: {\n  web: {\n    argv = [\"\", \"x\"];\n  };\n};\n",
                3, "services.web.argv[0]", "empty program name");
    LOAD_ERROR ("services: {\n  web: {\n    argv = [1, 2];\n  };\n};\n",
                3, "services.web.argv[0]", "expected a string");

    //  the other service keys
    LOAD_ERROR (WEB ("restart = \"sometimes\";"),
                4, "services.web.restart", "expected \"no\", \"on-failure\" or \"always\"");
    LOAD_ERROR (WEB ("restart = true;"),
                4, "services.web.restart", "expected \"no\", \"on-failure\" or \"always\"");
    LOAD_ERROR (WEB ("stop_signal = \"SIGFOO\";"),
                4, "services.web.stop_signal", "unknown signal 'SIGFOO'");
    LOAD_ERROR (WEB ("stop_signal = 0;"),
                4, "services.web.stop_signal", "unknown signal 0");
    LOAD_ERROR (WEB ("stop_signal = 99999;"),
                4, "services.web.stop_signal", "unknown signal 99999");
    LOAD_ERROR (WEB ("stop_signal = -15;"),
                4, "services.web.stop_signal", "unknown signal -15");
    LOAD_ERROR (WEB ("stop_timeout = 0;"),
                4, "services.web.stop_timeout", "expected more than 0 and at most 3600 seconds");
    LOAD_ERROR (WEB ("stop_timeout = -1.5;"),
                4, "services.web.stop_timeout", "at most 3600");
    LOAD_ERROR (WEB ("stop_timeout = 3600.5;"),
                4, "services.web.stop_timeout", "at most 3600");
    config = LOAD_OK ("services: { a: { command = \"x\"; stop_timeout = 3600; "
                                   "stop_signal = \"KILL\"; }; };\n");
    CHECK (config->services [0].stop_timeout == 3600.0);
    CHECK (config->services [0].stop_signal == SIGKILL);
    pm_config_destroy (&config);

    //  service names
    LOAD_ERROR ("services: {\n  we*b: {\n    command = \"x\";\n  };\n};\n",
                2, "services.we*b", "'*' is not allowed in a service name");
    char key [128];
    snprintf (key, sizeof key, "services.s%064d", 7);
    snprintf (text, sizeof text, "services: {\n  s%064d: {\n    command = \"x\";\n  };\n};\n", 7);
    LOAD_ERROR (text, 2, key, "service name longer than 64 bytes");
    snprintf (text, sizeof text, "services: {\n  s%063d: {\n    command = \"x\";\n  };\n};\n", 7);
    config = LOAD_OK (text);
    CHECK (strlen (config->services [0].name) == 64);
    pm_config_destroy (&config);
}

static void
test_dependency_errors (void)
{
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = {\n      db = \"ready\";\n"
                "      dbx = \"started\";\n    };\n  };\n};\n",
                7, "services.api.depends_on.dbx", "no service called 'dbx'");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = [\"db\",\n      \"dbx\"];\n  };\n};\n",
                6, "services.api.depends_on[1]", "no service called 'dbx'");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = {\n      db = \"healthy\";\n    };\n  };\n};\n",
                6, "services.api.depends_on.db",
                "expected \"started\", \"ready\" or \"completed\"");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = {\n      db = 1;\n    };\n  };\n};\n",
                6, "services.api.depends_on.db", "expected \"started\"");
    LOAD_ERROR ("services: {\n  api: {\n    command = \"x\";\n    depends_on = \"db\";\n  };\n};\n",
                4, "services.api.depends_on", "expected a group");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = (\"db\", 3);\n  };\n};\n",
                5, "services.api.depends_on[1]", "expected a string");
    LOAD_ERROR ("services: {\n  db: { command = \"x\"; };\n  api: {\n    command = \"x\";\n"
                "    depends_on = [\"db\", \"db\"];\n  };\n};\n",
                5, "services.api.depends_on[1]", "'db' is listed twice");
    LOAD_ERROR ("services: {\n  api: {\n    command = \"x\";\n    depends_on = [\"\"];\n  };\n};\n",
                4, "services.api.depends_on[0]", "expected a service name");
}

static void
test_cycles (void)
{
    //  Length 1: a service depending on itself.
    LOAD_ERROR ("services: {\n  a: {\n    command = \"x\";\n    depends_on = [\"a\"];\n  };\n};\n",
                4, "services.a.depends_on", "dependency cycle: a -> a");
    //  Length 2.
    LOAD_ERROR ("services: {\n"
                "  a: {\n    command = \"x\";\n    depends_on = { b = \"ready\"; };\n  };\n"
                "  b: {\n    command = \"x\";\n    depends_on = { a = \"started\"; };\n  };\n"
                "};\n",
                4, "services.a.depends_on", "dependency cycle: a -> b -> a");
    //  Length 3, behind a service that is not in it, and with the first
    //  of the cycle's services in the file declared after the others'
    //  depends_on lines.
    const char *text =
        "services: {\n"
        "  front: { command = \"x\"; depends_on = [\"c\"]; };\n"   // 2
        "  z: { command = \"x\"; };\n"
        "  a: {\n"                                                // 4
        "    command = \"x\";\n"
        "    depends_on = [\"z\", \"b\"];\n"                      // 6
        "  };\n"
        "  b: { command = \"x\"; depends_on = [\"c\"]; };\n"       // 8
        "  c: { command = \"x\"; depends_on = [\"a\"]; };\n"       // 9
        "};\n";
    LOAD_ERROR (text, 6, "services.a.depends_on", "dependency cycle: a -> b -> c -> a");
    //  The whole message, once, exactly.
    char *path = s_write ("cycle3.cfg", text);
    char err [PM_CONFIG_ERR_MAX];
    CHECK (pm_config_load (path, err, sizeof err) == NULL);
    char want [8192];
    snprintf (want, sizeof want, "%s:6: services.a.depends_on: dependency cycle: "
              "a -> b -> c -> a", path);
    CHECK_STR (err, want);
    free (path);

    //  A missing name is reported before a cycle elsewhere.
    LOAD_ERROR ("services: {\n  a: { command = \"x\"; depends_on = [\"a\"]; };\n"
                "  b: { command = \"x\"; depends_on = [\"nope\"]; };\n};\n",
                3, "services.b.depends_on[0]", "no service called 'nope'");
}

static void
test_start_order (void)
{
    //  Diamond: api needs cache and db, both need net; ties in file order.
    pm_config_t *config = LOAD_OK (
        "services: {\n"
        "  api:   { command = \"x\"; depends_on = { db = \"ready\"; cache = \"started\"; }; };\n"
        "  db:    { command = \"x\"; depends_on = [\"net\"]; };\n"
        "  cache: { command = \"x\"; depends_on = (\"net\"); };\n"
        "  net:   { command = \"x\"; };\n"
        "};\n");
    size_t expect [] = { 3, 1, 2, 0 };      //  net db cache api
    CHECK (memcmp (config->start_order, expect, sizeof expect) == 0);
    //  List form means "started" for each, in list order.
    CHECK (config->services [2].deps_count == 1);
    CHECK_STR (config->services [2].deps [0].name, "net");
    CHECK (config->services [2].deps [0].cond == PM_COND_STARTED);
    CHECK (config->services [2].deps [0].index == 3);
    CHECK (config->services [0].deps [0].index == 1);
    CHECK (config->services [0].deps [1].index == 2);
    pm_config_destroy (&config);

    //  No dependencies: file order, not name order.
    config = LOAD_OK (
        "services: {\n"
        "  zeta:  { command = \"x\"; };\n"
        "  alpha: { command = \"x\"; };\n"
        "  mid:   { command = \"x\"; depends_on = [\"gamma\", \"zeta\"]; };\n"
        "  gamma: { command = \"x\"; };\n"
        "  beta:  { command = \"x\"; };\n"
        "};\n");
    size_t expect_ties [] = { 0, 1, 3, 2, 4 };  //  zeta alpha gamma mid beta
    CHECK (memcmp (config->start_order, expect_ties, sizeof expect_ties) == 0);
    CHECK (config->services [2].deps [0].index == 3);
    CHECK (config->services [2].deps [1].index == 0);
    pm_config_destroy (&config);
}

/* ------------------------------------------------------------------ */

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

//  Runs at exit, failed CHECKs included, so no run leaves files behind.
static void
s_cleanup (void)
{
    if (s_dir [0])
        nftw (s_dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

int
main (void)
{
    alarm (60);                 //  a check that hangs fails, never blocks CI
    char template [] = "/tmp/pmbus-test-config-XXXXXX";
    CHECK (mkdtemp (template));
    CHECK (realpath (template, s_dir));
    atexit (s_cleanup);

    test_full ();
    test_tcp ();
    test_defaults ();
    test_log_settings ();
    test_probes_and_restart ();
    test_paths ();
    test_include ();
    test_file_identity ();
    test_file_errors ();
    test_syntax_errors ();
    test_key_errors ();
    test_type_errors ();
    test_value_errors ();
    test_dependency_errors ();
    test_cycles ();
    test_start_order ();

    CHECK (nftw (s_dir, s_remove, 16, FTW_DEPTH | FTW_PHYS) == 0);
    s_dir [0] = 0;
    printf ("test_config: OK\n");
    return 0;
}
