/*  config.c - the configuration file, read into validated plain structs
    (see config.h)

    Owns: the file (checked, parsed, its @includes), the top level, the
    agent group (name, log_dir, endpoints, the log defaults), turning
    depends_on into indexes, a cycle check and the start order (through
    graph.c), and the config's lifetime (pm_config_load, _destroy,
    _find).  The first error found is reported as "FILE:LINE: KEY: what
    is wrong" (top-level keys first, then agent, then each service in
    file order, then dependencies); nothing is half-loaded.

    Leaves to others: one service group (config_service.c); the values of
    the keys that take numbers, signal names, log settings and probes
    (config_values.c); errors, typed reads and paths (config_setting.c;
    config_int.h is the common ground of the four).  What the settings
    mean at run time (supervisor, spawn, logcap) and whether the paths
    exist: nothing here creates or requires a directory.  Talks to
    libconfig, graph.c, and libpmproto for the agent name rule.

    Rules this file decides (user documentation should repeat them):
    - Both top-level groups are optional; no `services` means no services.
    - Unknown keys are errors at every level, including keys reserved for
      later (ready, alive, backoff_*, log_max_size...).
    - Relative paths are resolved against the config file's directory
      (log_dir, ipc endpoints, a service's working_dir) or log_dir (a
      service's log_file), lexically (config_setting.c); nothing is
      looked up on disk but the config file itself.
    - agent.control and agent.events: "ipc://PATH" (PATH resolved like
      the other paths, at most 107 bytes), which replaces the socket in
      the runtime directory; or "tcp://HOST:PORT", bound besides it.
      TCP is both or neither, and needs agent.curve (secret_key and
      clients): a TCP endpoint without keys is refused, never served in
      the clear.  The key files themselves are read at start (main.c).
    - @include paths are relative to the config file's directory.
      libconfig 1.5 prefixes every include with the include directory,
      so an absolute @include path does not work; 1.7's include hook
      would fix that.
*/
#include "config_int.h"
#include "graph.h"
#include "pm_rundir.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Bounds the O(n^2) graph work and matches the names a request can carry.
#define S_SERVICES_MAX PM_NAMES_MAX

static const char *s_top_keys [] = { "agent", "services", NULL };

/* ------------------------------------------------------------------ */
/*  The agent group                                                    */
/* ------------------------------------------------------------------ */

//  An endpoint override.  A relative ipc path is resolved against the
//  config's directory like every other path: pmd and pmctl may run from
//  different directories and must still meet at one socket.
static int
s_endpoint (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
            char **endpoint_p, char **tcp_p)
{
    const char *value = NULL;
    if (pm_cfg_string (ctx, setting, &value))
        return -1;
    const char *rest = value + 6;
    if (strncmp (value, "tcp://", 6) == 0) {
        const char *colon = strrchr (rest, ':');
        if (!colon || colon == rest || colon [1] == 0)
            return pm_cfg_fail (ctx, setting, "expected \"tcp://HOST:PORT\"");
        free (*tcp_p);
        *tcp_p = pm_cfg_strdup (value);
        return 0;
    }
    if (strncmp (value, "ipc://", 6) != 0 || *rest == 0)
        return pm_cfg_fail (ctx, setting,
                       "expected an endpoint \"ipc://PATH\" or "
                       "\"tcp://HOST:PORT\"");
    char *path = NULL;
    if (pm_cfg_path (ctx, setting, ctx->config->dir, rest, &path))
        return -1;
    //  Refused here, with a line number, rather than at bind time.
    size_t len = strlen (path);
    if (len > PM_SUN_PATH_MAX) {
        free (path);
        return pm_cfg_fail (ctx, setting, "socket path is %zu bytes, longer than "
                       "the %d a Unix socket allows", len, PM_SUN_PATH_MAX);
    }
    *endpoint_p = pm_cfg_alloc (len + 7, 1);
    strcat (strcpy (*endpoint_p, "ipc://"), path);
    free (path);
    return 0;
}

//  agent.curve = { secret_key = "FILE"; clients = "DIR"; }: both keys,
//  paths resolved against the config's directory.
static int
s_load_curve (pm_cfg_ctx_t *ctx, const config_setting_t *curve)
{
    pm_config_t *config = ctx->config;
    if (pm_cfg_expect_group (ctx, curve))
        return -1;
    int count = config_setting_length (curve);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (curve, i);
        char **target = NULL;
        if (pm_cfg_streq (member->name, "secret_key"))
            target = &config->curve_secret_key;
        else
        if (pm_cfg_streq (member->name, "clients"))
            target = &config->curve_clients;
        else
            return pm_cfg_fail (ctx, member, "unknown key '%s' (agent.curve "
                                "takes secret_key and clients)",
                                member->name);
        char *path = NULL;
        if (pm_cfg_path_setting (ctx, member, config->dir, &path))
            return -1;
        free (*target);
        *target = path;
    }
    if (!config->curve_secret_key || !config->curve_clients)
        return pm_cfg_fail (ctx, curve, "needs %s (agent.curve = { "
                            "secret_key = \"FILE_secret\"; clients = \"DIR\"; })",
                            config->curve_secret_key ? "clients"
                                                     : "secret_key");
    return 0;
}

//  agent.broker = { endpoint = "tcp://HOST:PORT"; server_key = "FILE";
//  key = "FILE_secret"; }: the keys only (and then both) over TCP.
static int
s_load_broker (pm_cfg_ctx_t *ctx, const config_setting_t *broker)
{
    pm_config_t *config = ctx->config;
    if (pm_cfg_expect_group (ctx, broker))
        return -1;
    int count = config_setting_length (broker);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (broker, i);
        if (pm_cfg_streq (member->name, "endpoint")) {
            char *ipc = NULL, *tcp = NULL;
            if (s_endpoint (ctx, member, &ipc, &tcp))
                return -1;
            free (config->broker);
            config->broker = ipc ? ipc : tcp;
            continue;
        }
        char **target = NULL;
        if (pm_cfg_streq (member->name, "server_key"))
            target = &config->broker_server_key;
        else
        if (pm_cfg_streq (member->name, "key"))
            target = &config->broker_key;
        else
            return pm_cfg_fail (ctx, member, "unknown key '%s' (agent.broker "
                                "takes endpoint, server_key and key)",
                                member->name);
        char *path = NULL;
        if (pm_cfg_path_setting (ctx, member, config->dir, &path))
            return -1;
        free (*target);
        *target = path;
    }
    if (!config->broker)
        return pm_cfg_fail (ctx, broker, "needs endpoint (the broker's "
                            "agents endpoint)");
    if (strncmp (config->broker, "tcp://", 6) == 0
    &&  (!config->broker_server_key || !config->broker_key))
        return pm_cfg_fail (ctx, broker, "%s is a TCP endpoint, which needs "
                            "CURVE keys: server_key (the broker's public "
                            "certificate) and key (this agent's secret one)",
                            config->broker);
    return 0;
}

static int
s_load_agent (pm_cfg_ctx_t *ctx, const config_setting_t *agent)
{
    pm_config_t *config = ctx->config;
    const config_setting_t *control = NULL, *events = NULL;
    if (pm_cfg_expect_group (ctx, agent))
        return -1;
    int count = config_setting_length (agent);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (agent, i);
        const char *key = member->name;
        const char *value = NULL;
        if (pm_cfg_streq (key, "name")) {
            if (pm_cfg_string (ctx, member, &value))
                return -1;
            if (!pm_agent_name_valid (value))
                return pm_cfg_fail (ctx, member, "'%s' is not a valid agent name "
                               "(1 to 64 of A-Z a-z 0-9 . _ -, not starting "
                               "with '.')", value);
            config->name = pm_cfg_strdup (value);
        }
        else
        if (pm_cfg_streq (key, "env_file")) {
            if (pm_cfg_env_files (ctx, member, config->dir, &config->env,
                                  &config->env_count))
                return -1;
        }
        else
        if (pm_cfg_streq (key, "log_dir")) {
            char *log_dir = NULL;
            if (pm_cfg_path_setting (ctx, member, config->dir, &log_dir))
                return -1;
            free (config->log_dir);
            config->log_dir = log_dir;
        }
        else
        if (pm_cfg_streq (key, "control")) {
            if (s_endpoint (ctx, member, &config->control,
                            &config->tcp_control))
                return -1;
            control = member;
        }
        else
        if (pm_cfg_streq (key, "events")) {
            if (s_endpoint (ctx, member, &config->events,
                            &config->tcp_events))
                return -1;
            events = member;
        }
        else
        if (pm_cfg_streq (key, "curve")) {
            if (s_load_curve (ctx, member))
                return -1;
        }
        else
        if (pm_cfg_streq (key, "broker")) {
            if (s_load_broker (ctx, member))
                return -1;
        }
        else
        if (pm_cfg_streq (key, "subscriber_queue")) {
            uint64_t queue;
            if (pm_cfg_count (ctx, member, false, 1, 1000000, &queue))
                return -1;
            config->subscriber_queue = (size_t) queue;
        }
        else
        if (pm_cfg_log_key (ctx, member, &config->log))
            return -1;
    }
    config->log_format = config->log.format;
    //  One of the pair over TCP and the other not would serve half of
    //  what a remote client needs.
    if (!config->tcp_control != !config->tcp_events)
        return pm_cfg_fail (ctx, config->tcp_control ? control : events,
                            "a TCP endpoint for %s needs one for %s too "
                            "(agent.%s = \"tcp://HOST:PORT\")",
                            config->tcp_control ? "control" : "events",
                            config->tcp_control ? "events" : "control",
                            config->tcp_control ? "events" : "control");
    if (config->tcp_control && !config->curve_secret_key)
        return pm_cfg_fail (ctx, control, "%s is a TCP endpoint, which needs "
                            "CURVE keys: agent.curve = { secret_key = "
                            "\"FILE_secret\"; clients = \"DIR\"; } is missing",
                            config->tcp_control);
    return 0;
}

/* ------------------------------------------------------------------ */
/*  The graph                                                          */
/* ------------------------------------------------------------------ */

//  Resolves every dependency name to an index, then orders the services.
static int
s_resolve (pm_cfg_ctx_t *ctx)
{
    pm_config_t *config = ctx->config;
    size_t count = config->services_count;
    for (size_t i = 0; i < count; i++) {
        pm_config_service_t *service = &config->services [i];
        for (size_t d = 0; d < service->deps_count; d++) {
            pm_config_dep_t *dep = &service->deps [d];
            int index = pm_config_find (config, dep->name);
            if (index < 0)
                return pm_cfg_fail (ctx,
                               config_setting_get_elem (ctx->depends_on [i],
                                                        (unsigned) d),
                               "no service called '%s'", dep->name);
            dep->index = (size_t) index;
        }
    }

    pm_graph_t *graph = pm_graph_new (count);
    if (!graph)
        abort ();
    for (size_t i = 0; i < count; i++)
        for (size_t d = 0; d < config->services [i].deps_count; d++)
            pm_graph_add_edge (graph, i, config->services [i].deps [d].index);
    config->start_order = pm_cfg_alloc (count, sizeof (size_t));
    size_t *cycle = pm_cfg_alloc (count + 1, sizeof (size_t));
    size_t cycle_len = 0;
    int rc = 0;
    if (pm_graph_order (graph, config->start_order, cycle, &cycle_len)) {
        //  The graph starts the cycle at its lowest index, the first of
        //  its services in the file: the error points at its depends_on.
        char path [PM_CONFIG_ERR_MAX];
        size_t used = 0;
        path [0] = 0;
        for (size_t k = 0; k < cycle_len && used < sizeof path; k++) {
            int n = snprintf (path + used, sizeof path - used, "%s%s",
                              k ? " -> " : "",
                              config->services [cycle [k]].name);
            if (n < 0)
                break;
            used += (size_t) n;
        }
        assert (cycle_len >= 2 && ctx->depends_on [cycle [0]]);
        rc = pm_cfg_fail (ctx, ctx->depends_on [cycle [0]],
                     "dependency cycle: %s", path);
    }
    free (cycle);
    pm_graph_destroy (&graph);
    return rc;
}

/* ------------------------------------------------------------------ */
/*  The file                                                           */
/* ------------------------------------------------------------------ */

//  Fails on the first member of group whose name is not in keys.
static int
s_check_keys (pm_cfg_ctx_t *ctx, const config_setting_t *group,
              const char **keys)
{
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (group, i);
        bool known = false;
        for (const char **key = keys; *key && !known; key++)
            known = pm_cfg_streq (member->name, *key);
        if (!known)
            return pm_cfg_fail (ctx, member, "unknown key '%s'", member->name);
    }
    return 0;
}

static int
s_load_root (pm_cfg_ctx_t *ctx, config_t *file)
{
    pm_config_t *config = ctx->config;
    config_setting_t *root = config_root_setting (file);
    if (s_check_keys (ctx, root, s_top_keys))
        return -1;

    //  agent first: log_dir is the base of every service's log_file,
    //  wherever the two groups sit in the file.
    config->log.format = PM_LOG_TEXT;
    config->log.max_size = PM_LOG_MAX_SIZE_DEFAULT;
    config->log.backups = PM_LOG_BACKUPS_DEFAULT;
    config->log.line_max = PM_LOG_LINE_MAX_DEFAULT;
    config->log.ring = PM_LOG_RING_DEFAULT;
    config->log.ring_bytes = PM_LOG_RING_BYTES_DEFAULT;
    config->subscriber_queue = PM_SUBSCRIBER_QUEUE_DEFAULT;
    config->log_dir = pm_cfg_alloc (strlen (config->dir) + 6, 1);
    sprintf (config->log_dir, "%s/logs", config->dir);
    pm_cfg_path_clean (config->log_dir);
    config_setting_t *agent = config_setting_get_member (root, "agent");
    if (agent && s_load_agent (ctx, agent))
        return -1;

    config_setting_t *services = config_setting_get_member (root, "services");
    if (!services) {
        config->start_order = pm_cfg_alloc (0, sizeof (size_t));
        return 0;
    }
    if (pm_cfg_expect_group (ctx, services))
        return -1;
    int count = config_setting_length (services);
    if (count > S_SERVICES_MAX)
        return pm_cfg_fail (ctx, services, "%d services, more than the %d allowed",
                       count, S_SERVICES_MAX);
    config->services = pm_cfg_alloc ((size_t) count, sizeof (pm_config_service_t));
    config->services_count = (size_t) count;
    ctx->depends_on = pm_cfg_alloc ((size_t) count, sizeof (config_setting_t *));
    for (int i = 0; i < count; i++)
        if (pm_cfg_service_load (ctx, (size_t) i,
                                 config_setting_get_elem (services, (unsigned) i)))
            return -1;
    return s_resolve (ctx);
}

//  Writes a message about the file as a whole (no line to point at) into
//  the context's error buffer, if any; returns -1.
static int
s_fail_file (pm_cfg_ctx_t *ctx, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_fail_file (pm_cfg_ctx_t *ctx, const char *format, ...)
{
    if (!ctx->err || ctx->errlen == 0)
        return -1;
    va_list args;
    va_start (args, format);
    vsnprintf (ctx->err, ctx->errlen, format, args);
    va_end (args);
    return -1;
}

//  Checks that path can be opened and is a regular file, so the error
//  carries errno's text (libconfig only says "file I/O error"), and
//  notes its identity in id.
static int
s_check_file (pm_cfg_ctx_t *ctx, const char *path, pm_file_id_t *id)
{
    //  Non-blocking: opening a FIFO for reading would wait for a writer.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    int error = 0;
    if (fd == -1)
        error = errno;
    else
    if (fstat (fd, &st) == -1)
        error = errno;
    else
    if (S_ISDIR (st.st_mode))
        error = EISDIR;
    else
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        return s_fail_file (ctx, "%s: not a regular file", path);
    }
    else
        pm_file_id_of (&st, id);
    if (fd != -1)
        close (fd);
    if (error)
        return s_fail_file (ctx, "%s: cannot read: %s", path,
                            strerror (error));
    return 0;
}

pm_config_t *
pm_config_load (const char *path, char *err, size_t errlen)
{
    assert (path);
    pm_cfg_ctx_t ctx = { .file = path, .err = err, .errlen = errlen };
    if (err && errlen)
        err [0] = 0;
    //  The file system stamps a change with this same coarse clock: a file
    //  whose mtime is older than the read's start cannot change without
    //  its identity changing too.
    struct timespec began;
    clock_gettime (CLOCK_REALTIME_COARSE, &began);
    pm_file_id_t id;
    if (s_check_file (&ctx, path, &id))
        return NULL;

    char *real = realpath (path, NULL);
    if (!real) {
        s_fail_file (&ctx, "%s: cannot read: %s", path, strerror (errno));
        return NULL;
    }
    pm_config_t *config = pm_cfg_alloc (1, sizeof (pm_config_t));
    ctx.config = config;
    config->path = real;
    config->dir = pm_cfg_strdup (real);
    char *slash = strrchr (config->dir, '/');
    assert (slash);
    slash [slash == config->dir ? 1 : 0] = 0;

    config_t file;
    config_init (&file);
    //  Types are checked here, by hand: nothing converts behind our back.
    config_set_auto_convert (&file, CONFIG_FALSE);
    config_set_include_dir (&file, config->dir);
    int rc = 0;
    //  Read by the name the caller gave, so libconfig's own messages
    //  (and each setting's file) use it too.
    if (config_read_file (&file, path) != CONFIG_TRUE) {
        const char *text = config_error_text (&file);
        if (!text)
            text = "unknown error";
        const char *where = config_error_file (&file);
        bool bare = pm_cfg_streq (text, "syntax error");
        if (config_error_type (&file) == CONFIG_ERR_FILE_IO)
            rc = s_fail_file (&ctx, "%s: cannot read: %s", path, text);
        else
            rc = s_fail_file (&ctx, "%s:%d: syntax error%s%s",
                              where ? where : path, config_error_line (&file),
                              bare ? "" : ": ", bare ? "" : text);
    }
    else
        rc = s_load_root (&ctx, &file);
    config->file_id = id;
    config->has_file_id = file.num_filenames == 1
        && id.mtime_ns < (int64_t) began.tv_sec * 1000000000 + began.tv_nsec;
    config_destroy (&file);
    free (ctx.depends_on);
    if (rc)
        pm_config_destroy (&config);
    return config;
}

void
pm_config_destroy (pm_config_t **self_p)
{
    assert (self_p);
    pm_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->services_count; i++)
        pm_cfg_service_clear (&self->services [i]);
    free (self->services);
    free (self->start_order);
    free (self->path);
    free (self->dir);
    free (self->name);
    free (self->log_dir);
    for (size_t i = 0; i < self->env_count; i++) {
        free (self->env [i].key);
        free (self->env [i].value);
    }
    free (self->env);
    free (self->control);
    free (self->events);
    free (self->tcp_control);
    free (self->tcp_events);
    free (self->curve_secret_key);
    free (self->curve_clients);
    free (self->broker);
    free (self->broker_server_key);
    free (self->broker_key);
    free (self);
    *self_p = NULL;
}

int
pm_config_find (const pm_config_t *self, const char *name)
{
    assert (self);
    if (!name)
        return -1;
    for (size_t i = 0; i < self->services_count; i++)
        if (self->services [i].name && pm_cfg_streq (self->services [i].name, name))
            return (int) i;
    return -1;
}
