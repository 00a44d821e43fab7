/*  bconfig.c - the broker's configuration file (bconfig.h) */
#include "bconfig.h"
#include "pm_proto.h"
#include "pm_rundir.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *file;
    char *err;
    size_t errlen;
    char dir [PATH_MAX];
} s_ctx_t;

static int
s_fail (s_ctx_t *ctx, const config_setting_t *setting, const char *key,
        const char *fmt, ...)
{
    char message [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    snprintf (ctx->err, ctx->errlen, "%s:%u: %s: %s", ctx->file,
              setting ? config_setting_source_line (setting) : 0, key,
              message);
    return -1;
}

//  A string setting, as an absolute path when relative.
static char *
s_path (s_ctx_t *ctx, const char *value)
{
    char *path = NULL;
    if (value [0] == '/')
        path = strdup (value);
    else
    if (asprintf (&path, "%s/%s", ctx->dir, value) < 0)
        path = NULL;
    if (!path)
        abort ();
    return path;
}

static int
s_string (s_ctx_t *ctx, const config_setting_t *setting, const char *key,
          const char **value)
{
    if (config_setting_type (setting) != CONFIG_TYPE_STRING
    ||  !(*value = config_setting_get_string (setting)) || !**value)
        return s_fail (ctx, setting, key, "expected a non-empty string");
    return 0;
}

//  An endpoint: ipc://PATH (made absolute) or tcp://HOST:PORT.
static int
s_endpoint (s_ctx_t *ctx, const config_setting_t *setting, const char *key,
            char **endpoint, bool *tcp)
{
    const char *value = NULL;
    if (s_string (ctx, setting, key, &value))
        return -1;
    if (strncmp (value, "tcp://", 6) == 0) {
        const char *colon = strrchr (value + 6, ':');
        if (!colon || colon == value + 6 || !colon [1])
            return s_fail (ctx, setting, key, "expected \"tcp://HOST:PORT\"");
        *endpoint = strdup (value);
        *tcp = true;
        return 0;
    }
    if (strncmp (value, "ipc://", 6) != 0 || !value [6])
        return s_fail (ctx, setting, key, "expected an endpoint "
                       "\"ipc://PATH\" or \"tcp://HOST:PORT\"");
    char *path = s_path (ctx, value + 6);
    if (strlen (path) > PM_SUN_PATH_MAX) {
        free (path);
        return s_fail (ctx, setting, key, "socket path longer than the %d "
                       "bytes a Unix socket allows", PM_SUN_PATH_MAX);
    }
    if (asprintf (endpoint, "ipc://%s", path) < 0)
        abort ();
    free (path);
    return 0;
}

static int
s_curve (s_ctx_t *ctx, const config_setting_t *curve, pm_bconfig_t *config)
{
    if (!config_setting_is_group (curve))
        return s_fail (ctx, curve, "broker.curve", "expected a group");
    for (int i = 0; i < config_setting_length (curve); i++) {
        const config_setting_t *member = config_setting_get_elem (curve,
                                                                  (unsigned) i);
        char key [64];
        snprintf (key, sizeof key, "broker.curve.%s", member->name);
        char **target = strcmp (member->name, "secret_key") == 0
                        ? &config->secret_key
                      : strcmp (member->name, "clients") == 0
                        ? &config->clients
                      : strcmp (member->name, "agents") == 0
                        ? &config->agent_keys : NULL;
        if (!target)
            return s_fail (ctx, member, key, "unknown key '%s' (curve takes "
                           "secret_key, clients and agents)", member->name);
        const char *value = NULL;
        if (s_string (ctx, member, key, &value))
            return -1;
        free (*target);
        *target = s_path (ctx, value);
    }
    if (!config->secret_key || !config->clients || !config->agent_keys)
        return s_fail (ctx, curve, "broker.curve", "needs secret_key, clients "
                       "and agents");
    return 0;
}

static int
s_load (s_ctx_t *ctx, config_t *file, pm_bconfig_t *config)
{
    const config_setting_t *root = config_root_setting (file);
    for (int i = 0; i < config_setting_length (root); i++) {
        const config_setting_t *top = config_setting_get_elem (root,
                                                               (unsigned) i);
        if (strcmp (top->name, "broker") != 0)
            return s_fail (ctx, top, top->name, "unknown key (a broker's "
                           "file holds one group, broker)");
    }
    const config_setting_t *broker = config_lookup (file, "broker");
    if (!broker || !config_setting_is_group (broker))
        return s_fail (ctx, broker, "broker", broker ? "expected a group"
                       : "missing: the file needs broker = { ... }");
    const config_setting_t *tcp_at = NULL;
    char *tcp_name = NULL;
    const config_setting_t *curve = NULL;
    for (int i = 0; i < config_setting_length (broker); i++) {
        const config_setting_t *member = config_setting_get_elem (broker,
                                                                  (unsigned) i);
        char key [64];
        snprintf (key, sizeof key, "broker.%s", member->name);
        char **endpoint = strcmp (member->name, "control") == 0
                          ? &config->control
                        : strcmp (member->name, "events") == 0
                          ? &config->events
                        : strcmp (member->name, "agents") == 0
                          ? &config->agents : NULL;
        if (endpoint) {
            bool tcp = false;
            free (*endpoint);
            *endpoint = NULL;
            if (s_endpoint (ctx, member, key, endpoint, &tcp))
                return -1;
            if (tcp && !tcp_at) {
                tcp_at = member;
                tcp_name = *endpoint;
            }
        }
        else
        if (strcmp (member->name, "name") == 0) {
            const char *value = NULL;
            if (s_string (ctx, member, key, &value))
                return -1;
            if (!pm_agent_name_valid (value))
                return s_fail (ctx, member, key, "'%s' is not a valid name "
                               "(1 to 64 of A-Z a-z 0-9 . _ -, not starting "
                               "with '.')", value);
            free (config->name);
            config->name = strdup (value);
        }
        else
        if (strcmp (member->name, "log_file") == 0) {
            const char *value = NULL;
            if (s_string (ctx, member, key, &value))
                return -1;
            free (config->log_file);
            config->log_file = s_path (ctx, value);
        }
        else
        if (strcmp (member->name, "heartbeat") == 0) {
            double value = 0;
            int type = config_setting_type (member);
            if (type == CONFIG_TYPE_FLOAT)
                value = config_setting_get_float (member);
            else
            if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
                value = (double) config_setting_get_int64 (member);
            else
                return s_fail (ctx, member, key, "expected seconds");
            if (value < 0.05 || value > 600)
                return s_fail (ctx, member, key, "expected 0.05 to 600 "
                               "seconds");
            config->heartbeat = value;
        }
        else
        if (strcmp (member->name, "subscriber_queue") == 0) {
            int type = config_setting_type (member);
            long long value = type == CONFIG_TYPE_INT
                           || type == CONFIG_TYPE_INT64
                            ? config_setting_get_int64 (member) : 0;
            if (value < 1 || value > 1000000)
                return s_fail (ctx, member, key, "expected a number of "
                               "messages, 1 to 1000000");
            config->subscriber_queue = (size_t) value;
        }
        else
        if (strcmp (member->name, "curve") == 0) {
            if (s_curve (ctx, member, config))
                return -1;
            curve = member;
        }
        else
            return s_fail (ctx, member, key, "unknown key '%s'",
                           member->name);
    }
    if (!config->name)
        return s_fail (ctx, broker, "broker.name", "missing");
    const char *missing = !config->control ? "control"
                        : !config->events ? "events"
                        : !config->agents ? "agents" : NULL;
    if (missing)
        return s_fail (ctx, broker, "broker", "needs %s (an endpoint)",
                       missing);
    if (tcp_at && !curve)
        return s_fail (ctx, tcp_at, tcp_at->name, "%s is a TCP endpoint, "
                       "which needs CURVE keys: broker.curve = { secret_key "
                       "= \"FILE_secret\"; clients = \"DIR\"; agents = "
                       "\"DIR\"; } is missing", tcp_name);
    return 0;
}

pm_bconfig_t *
pm_bconfig_load (const char *path, char *err, size_t errlen)
{
    s_ctx_t ctx = { path, err, errlen, "" };
    char *real = realpath (path, NULL);
    if (!real) {
        snprintf (err, errlen, "%s: cannot read: %s", path, strerror (errno));
        return NULL;
    }
    snprintf (ctx.dir, sizeof ctx.dir, "%s", real);
    char *slash = strrchr (ctx.dir, '/');
    if (slash)
        slash [slash == ctx.dir ? 1 : 0] = 0;
    config_t file;
    config_init (&file);
    pm_bconfig_t *config = calloc (1, sizeof *config);
    if (!config)
        abort ();
    config->path = real;
    config->heartbeat = 1.0;
    config->subscriber_queue = PM_BROKER_QUEUE;
    int rc = 0;
    if (config_read_file (&file, real) != CONFIG_TRUE) {
        snprintf (err, errlen, "%s:%d: %s", path, config_error_line (&file),
                  config_error_text (&file));
        rc = -1;
    }
    else
        rc = s_load (&ctx, &file, config);
    config_destroy (&file);
    if (rc)
        pm_bconfig_destroy (&config);
    return config;
}

void
pm_bconfig_destroy (pm_bconfig_t **self_p)
{
    pm_bconfig_t *self = *self_p;
    if (!self)
        return;
    free (self->path);
    free (self->name);
    free (self->control);
    free (self->events);
    free (self->agents);
    free (self->secret_key);
    free (self->clients);
    free (self->agent_keys);
    free (self->log_file);
    free (self);
    *self_p = NULL;
}
