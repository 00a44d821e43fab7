/*  config_int.h - what config.c and config_values.c share (private)

    config.c reads the file and its structure (groups, services, paths,
    the graph); config_values.c checks the values of the keys that take
    numbers, names and probes.  The error helpers and the read context
    are here; none of this is the config's interface (config.h).
*/
#ifndef PM_CONFIG_INT_H
#define PM_CONFIG_INT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define PM_CFG_STOP_TIMEOUT_MAX 3600.0

typedef struct {
    const char *file;             //  the path as the caller gave it
    char *err;                    //  the caller's buffer, or NULL
    size_t errlen;
    pm_config_t *config;          //  being filled
    //  Per service: its depends_on setting, or NULL, kept to name the
    //  line and key of a dependency error after every name is known.
    config_setting_t **depends_on;
} pm_cfg_ctx_t;

/*  Writes "FILE:LINE: KEY: <message>" into the context's error buffer
    and returns -1. */
int pm_cfg_fail (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                 const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Memory (running out aborts) and typed reads of settings. */
void *pm_cfg_alloc (size_t count, size_t size);
char *pm_cfg_strdup (const char *text);
const char *pm_cfg_type_name (const config_setting_t *setting);
bool pm_cfg_streq (const char *a, const char *b);
bool pm_cfg_is_integer (const config_setting_t *setting);
int pm_cfg_string (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                   const char **value);
int pm_cfg_expect_group (pm_cfg_ctx_t *ctx, const config_setting_t *setting);

/*  In config_values.c.  Each returns 0, or -1 after pm_cfg_fail. */
int pm_cfg_count (pm_cfg_ctx_t *ctx, const config_setting_t *member,
                  bool size, uint64_t min, uint64_t max, uint64_t *value);
int pm_cfg_seconds (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                    double min, double max, double *value);
/*  The log_* keys: 1 if member is not one of them. */
int pm_cfg_log_key (pm_cfg_ctx_t *ctx, const config_setting_t *member,
                    pm_config_log_t *log);
int pm_cfg_stop_signal (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                        pm_config_service_t *service);
int pm_cfg_stop_timeout (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                         pm_config_service_t *service);
int pm_cfg_restart (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                    pm_config_service_t *service);
int pm_cfg_probe (pm_cfg_ctx_t *ctx, const config_setting_t *group, bool alive,
                  pm_config_probe_t *probe);

#endif
