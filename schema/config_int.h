/*  config_int.h - what the config readers share (private to schema/)

    The configuration is read by four files, one responsibility each:
    - config.c: the file (open, parse, @include), the top level, the
      agent group, the dependency graph, and the config's lifetime;
    - config_service.c: one group under services;
    - config_values.c: the values of the keys that take numbers, names,
      log settings and probes;
    - config_setting.c: errors, memory, typed reads and paths, which all
      of them use.
    The read context and the functions between these files are here;
    none of this is the config's interface (config.h).

    Every int-returning reader below returns 0, or -1 after pm_cfg_fail
    has written the error; what it allocates is stored in the config, so
    pm_config_destroy frees it even when reading stops half-way.
*/
#ifndef PM_CONFIG_INT_H
#define PM_CONFIG_INT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

//  The longest stop_timeout, in seconds.
#define PM_CFG_STOP_TIMEOUT_MAX 3600.0

//  One load in progress: where errors go and what is being filled.
typedef struct {
    const char *file;             //  the path as the caller gave it
    char *err;                    //  the caller's buffer, or NULL
    size_t errlen;                //  its size in bytes, or 0
    pm_config_t *config;          //  being filled
    //  Per service: its depends_on setting, or NULL, kept to name the
    //  line and key of a dependency error after every name is known.
    config_setting_t **depends_on;
} pm_cfg_ctx_t;

/* ------------------------------------------------------------------ */
/*  config_setting.c                                                   */
/* ------------------------------------------------------------------ */

/*  Writes "FILE:LINE: KEY: <message>" for setting into the context's
    error buffer (if any) and returns -1.  FILE is the setting's own file
    (an @include's), KEY its dotted path from the root. */
int pm_cfg_fail (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                 const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  calloc of count * size (at least one byte); running out aborts.  The
    memory is the caller's to free. */
void *pm_cfg_alloc (size_t count, size_t size);
/*  A copy of text, the caller's to free; running out aborts. */
char *pm_cfg_strdup (const char *text);

/*  What setting is, for messages: "a string", "an integer"... */
const char *pm_cfg_type_name (const config_setting_t *setting);
/*  True if the strings are equal. */
bool pm_cfg_streq (const char *a, const char *b);
/*  True if setting holds an integer (32 or 64 bits). */
bool pm_cfg_is_integer (const config_setting_t *setting);

/*  Borrows setting's string into *value (valid while the libconfig file
    is), or fails naming what it is instead. */
int pm_cfg_string (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                   const char **value);
/*  setting's boolean into *value, or fails: "expected true or false". */
int pm_cfg_bool (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                 bool *value);
/*  Writes the integer setting (pm_cfg_is_integer) as decimal text into
    text, of size bytes (32 are enough). */
void pm_cfg_decimal (const config_setting_t *setting, char *text,
                     size_t size);
/*  0 if setting is a group, or fails: "expected a group { ... }". */
int pm_cfg_expect_group (pm_cfg_ctx_t *ctx, const config_setting_t *setting);

/*  Cleans an absolute path in place: drops empty and "." parts, and
    removes the part before each "..".  Lexical: nothing needs to exist. */
void pm_cfg_path_clean (char *path);
/*  Resolves value against base (absolute) into *path_p, a new clean
    absolute path the caller owns; fails on setting if value is empty or
    the result would pass PM_PATH_MAX. */
int pm_cfg_path (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                 const char *base, const char *value, char **path_p);
/*  pm_cfg_path on setting's own string value. */
int pm_cfg_path_setting (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                         const char *base, char **path_p);

/* ------------------------------------------------------------------ */
/*  config_service.c                                                   */
/* ------------------------------------------------------------------ */

/*  Reads group, the service at index under services, into
    ctx->config->services [index], with the agent's log settings and
    log_dir (already read) as its defaults; records its depends_on
    setting in ctx->depends_on [index].  Dependency names are checked
    later, once every service is known (config.c). */
int pm_cfg_service_load (pm_cfg_ctx_t *ctx, size_t index,
                         config_setting_t *group);
/*  Frees what pm_cfg_service_load stored in service and zeroes it. */
void pm_cfg_service_clear (pm_config_service_t *service);

/*  Reads the env file, or list of them, that setting names (relative to
    dir; a name starting with '-' may be missing) into the list, in order.
    Returns 0, or -1 with the error set at setting. */
int pm_cfg_env_files (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                      const char *dir, pm_config_env_t **env, size_t *count);

/* ------------------------------------------------------------------ */
/*  config_values.c                                                    */
/* ------------------------------------------------------------------ */

/*  A whole number in [min, max] into *value: an integer, or when size is
    true also a string with a K, M or G suffix (powers of 1024). */
int pm_cfg_count (pm_cfg_ctx_t *ctx, const config_setting_t *member,
                  bool size, uint64_t min, uint64_t max, uint64_t *value);
/*  A number of seconds (integer or float) in [min, max] into *value. */
int pm_cfg_seconds (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                    double min, double max, double *value);
/*  The last branch of the agent's and a service's key readers: member,
    if it is one of the log_* keys, into log; any other key is unknown
    and fails. */
int pm_cfg_log_key (pm_cfg_ctx_t *ctx, const config_setting_t *member,
                    pm_config_log_t *log);
/*  stop_signal (a name or a number) into service->stop_signal. */
int pm_cfg_stop_signal (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                        pm_config_service_t *service);
/*  stop_timeout (more than 0, at most PM_CFG_STOP_TIMEOUT_MAX seconds)
    into service->stop_timeout. */
int pm_cfg_stop_timeout (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                         pm_config_service_t *service);
/*  restart ("no", "on-failure", "always") into service->restart. */
int pm_cfg_restart (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                    pm_config_service_t *service);
/*  A ready (alive false) or alive probe group into probe, with that
    kind's defaults; a tcp or http host is resolved to probe->addr here,
    once (getaddrinfo may block: at load only). */
int pm_cfg_probe (pm_cfg_ctx_t *ctx, const config_setting_t *group, bool alive,
                  pm_config_probe_t *probe);

#endif
