/*  config_service.c - one group under services, read into a
    pm_config_service_t (see config.h, config_int.h)

    Owns: a service's name rules and defaults, command or argv,
    working_dir, environment, the depends_on setting read into names and
    conditions, log_file and its default, and which keys a service takes;
    and freeing what it read.  Errors are "FILE:LINE: KEY: what is wrong"
    through pm_cfg_fail, in the order of the group's keys.

    Leaves to others: whether a dependency names a service and the cycle
    check (config.c, once all are read); the values of numbers, signals,
    restart, log_* and probes (config_values.c); what the settings mean
    at run time (supervisor, spawn, logcap).  Talks to libconfig and
    libpmproto (condition names).

    Rules this file decides (user documentation should repeat them):
    - Service names have no '*' (pmctl reads it as a pattern) and at most
      64 bytes.
    - One of "command" (a shell line) or "argv" (a list of strings).
    - environment values are strings or integers (integers become their
      decimal text); names are [A-Za-z_][A-Za-z0-9_]*, as a shell needs.
    - depends_on is a group (name = "started" | "ready" | "completed") or
      a list/array of names, each meaning "started".
*/
#include "config_int.h"
#include "envfile.h"
#include "pm_rundir.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Service names are topic parts and command targets: keep them short.
#define S_SERVICE_NAME_MAX 64

static int
s_command (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
           pm_config_service_t *service)
{
    const char *value = NULL;
    if (pm_cfg_string (ctx, setting, &value))
        return -1;
    if (value [strspn (value, " \t\r\n")] == 0)
        return pm_cfg_fail (ctx, setting, "empty command");
    service->command = pm_cfg_strdup (value);
    return 0;
}

static int
s_argv (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
        pm_config_service_t *service)
{
    if (!config_setting_is_array (setting) && !config_setting_is_list (setting))
        return pm_cfg_fail (ctx, setting, "expected a list of strings "
                       "[\"program\", \"arg\", ...], not %s",
                       pm_cfg_type_name (setting));
    int count = config_setting_length (setting);
    if (count == 0)
        return pm_cfg_fail (ctx, setting, "empty argv: expected the program "
                       "and its arguments");
    service->argv = pm_cfg_alloc ((size_t) count + 1, sizeof (char *));
    for (int i = 0; i < count; i++) {
        const config_setting_t *element = config_setting_get_elem (setting, i);
        const char *value = NULL;
        if (pm_cfg_string (ctx, element, &value))
            return -1;
        if (i == 0 && *value == 0)
            return pm_cfg_fail (ctx, element, "empty program name");
        service->argv [i] = pm_cfg_strdup (value);
        service->argc++;
    }
    return 0;
}

//  A name a shell can expand, so "$NAME" works under /bin/sh -c.
static bool
s_env_name_valid (const char *name)
{
    if (!(*name == '_' || (*name >= 'A' && *name <= 'Z')
    ||    (*name >= 'a' && *name <= 'z')))
        return false;
    for (const char *c = name; *c; c++)
        if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z')
        ||    (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

static int
s_environment (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
               pm_config_service_t *service)
{
    if (pm_cfg_expect_group (ctx, setting))
        return -1;
    int count = config_setting_length (setting);
    service->env = pm_cfg_alloc ((size_t) count, sizeof (pm_config_env_t));
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (setting, i);
        if (!s_env_name_valid (member->name))
            return pm_cfg_fail (ctx, member, "'%s' is not a valid variable name "
                           "(letters, digits and '_')", member->name);
        char number [32];
        const char *value = NULL;
        if (config_setting_type (member) == CONFIG_TYPE_STRING)
            value = config_setting_get_string (member);
        else
        if (pm_cfg_is_integer (member)) {
            pm_cfg_decimal (member, number, sizeof number);
            value = number;
        }
        else
            return pm_cfg_fail (ctx, member, "expected a string or an integer, "
                           "not %s", pm_cfg_type_name (member));
        pm_config_env_t *env = &service->env [service->env_count++];
        env->key = pm_cfg_strdup (member->name);
        env->value = pm_cfg_strdup (value);
    }
    return 0;
}

int
pm_cfg_env_files (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                  const char *dir, pm_config_env_t **env, size_t *count)
{
    bool one = config_setting_type (setting) == CONFIG_TYPE_STRING;
    if (!one && !config_setting_is_array (setting)
    &&  !config_setting_is_list (setting))
        return pm_cfg_fail (ctx, setting, "expected a file name or a list of "
                            "them, not %s", pm_cfg_type_name (setting));
    int files = one ? 1 : config_setting_length (setting);
    for (int i = 0; i < files; i++) {
        const config_setting_t *item = one ? setting
                                     : config_setting_get_elem (setting,
                                                                (unsigned) i);
        const char *name = config_setting_type (item) == CONFIG_TYPE_STRING
                         ? config_setting_get_string (item) : NULL;
        //  "-.env": a file that may be missing (as in systemd).
        bool optional = name && name [0] == '-';
        if (optional)
            name++;
        if (!name || !*name)
            return pm_cfg_fail (ctx, setting, "expected a file name");
        char path [PM_PATH_MAX];
        if (snprintf (path, sizeof path, "%s%s%s", name [0] == '/' ? "" : dir,
                      name [0] == '/' ? "" : "/", name) >= (int) sizeof path)
            return pm_cfg_fail (ctx, setting, "path too long");
        pm_cfg_path_clean (path);
        if (optional && access (path, F_OK) == -1 && errno == ENOENT)
            continue;
        char why [PM_PATH_MAX + 300];
        if (pm_envfile_read (path, env, count, why, sizeof why) == -1)
            return pm_cfg_fail (ctx, setting, "%s", why);
    }
    return 0;
}

static int
s_depends_on (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
              pm_config_service_t *service)
{
    bool group = config_setting_is_group (setting);
    if (!group && !config_setting_is_array (setting)
    &&  !config_setting_is_list (setting))
        return pm_cfg_fail (ctx, setting, "expected a group { name = \"condition\"; "
                       "... } or a list of names [\"name\", ...], not %s",
                       pm_cfg_type_name (setting));
    int count = config_setting_length (setting);
    service->deps = pm_cfg_alloc ((size_t) count, sizeof (pm_config_dep_t));
    for (int i = 0; i < count; i++) {
        const config_setting_t *element = config_setting_get_elem (setting, i);
        const char *name = NULL;
        pm_cond_t cond = PM_COND_STARTED;
        if (group) {
            name = element->name;
            const char *text = config_setting_type (element) == CONFIG_TYPE_STRING
                             ? config_setting_get_string (element) : "";
            if (pm_cond_parse (text, &cond))
                return pm_cfg_fail (ctx, element, "expected \"started\", \"ready\" "
                               "or \"completed\"");
        }
        else {
            if (pm_cfg_string (ctx, element, &name))
                return -1;
            if (*name == 0)
                return pm_cfg_fail (ctx, element, "expected a service name");
            //  A group cannot repeat a name (libconfig refuses it); a list
            //  can, and the second one would mean nothing.
            for (size_t d = 0; d < service->deps_count; d++)
                if (pm_cfg_streq (service->deps [d].name, name))
                    return pm_cfg_fail (ctx, element, "'%s' is listed twice", name);
        }
        pm_config_dep_t *dep = &service->deps [service->deps_count++];
        dep->name = pm_cfg_strdup (name);
        dep->cond = cond;
    }
    return 0;
}







int
pm_cfg_service_load (pm_cfg_ctx_t *ctx, size_t index, config_setting_t *group)
{
    pm_config_t *config = ctx->config;
    pm_config_service_t *service = &config->services [index];
    const char *name = group->name;

    //  libconfig already limits names to [A-Za-z*][-A-Za-z0-9_*]*; a '*'
    //  would read as a pattern to pmctl, and a name is a topic part.
    if (strchr (name, '*'))
        return pm_cfg_fail (ctx, group, "'*' is not allowed in a service name");
    if (strlen (name) > S_SERVICE_NAME_MAX)
        return pm_cfg_fail (ctx, group, "service name longer than %d bytes",
                       S_SERVICE_NAME_MAX);
    if (pm_cfg_expect_group (ctx, group))
        return -1;

    service->name = pm_cfg_strdup (name);
    service->line = (int) config_setting_source_line (group);
    service->stop_signal = SIGTERM;
    service->stop_timeout = 10.0;
    service->autostart = true;
    service->restart = PM_RESTART_NO;
    service->log = config->log;
    service->backoff_initial = 1.0;
    service->backoff_max = 30.0;
    service->max_restarts = 5;
    service->restart_window = 60.0;
    service->min_uptime = 1.0;

    const config_setting_t *command = NULL;
    const config_setting_t *argv = NULL;
    const config_setting_t *env_files = NULL;
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        config_setting_t *member = config_setting_get_elem (group, i);
        const char *key = member->name;
        int rc = 0;
        if (pm_cfg_streq (key, "command") || pm_cfg_streq (key, "argv")) {
            bool is_command = pm_cfg_streq (key, "command");
            if (command || argv)
                return pm_cfg_fail (ctx, member, "set \"command\" or \"argv\", "
                               "not both");
            if (is_command) {
                command = member;
                rc = s_command (ctx, member, service);
            }
            else {
                argv = member;
                rc = s_argv (ctx, member, service);
            }
        }
        else
        if (pm_cfg_streq (key, "working_dir"))
            rc = pm_cfg_path_setting (ctx, member, config->dir,
                                      &service->working_dir);
        else
        if (pm_cfg_streq (key, "environment"))
            rc = s_environment (ctx, member, service);
        else
        if (pm_cfg_streq (key, "env_file"))
            env_files = member;         //  read once the group is known
        else
        if (pm_cfg_streq (key, "depends_on")) {
            ctx->depends_on [index] = member;
            rc = s_depends_on (ctx, member, service);
        }
        else
        if (pm_cfg_streq (key, "stop_signal"))
            rc = pm_cfg_stop_signal (ctx, member, service);
        else
        if (pm_cfg_streq (key, "stop_timeout"))
            rc = pm_cfg_stop_timeout (ctx, member, service);
        else
        if (pm_cfg_streq (key, "autostart"))
            rc = pm_cfg_bool (ctx, member, &service->autostart);
        else
        if (pm_cfg_streq (key, "restart"))
            rc = pm_cfg_restart (ctx, member, service);
        else
        if (pm_cfg_streq (key, "ready"))
            rc = pm_cfg_probe (ctx, member, false, &service->ready);
        else
        if (pm_cfg_streq (key, "alive"))
            rc = pm_cfg_probe (ctx, member, true, &service->alive);
        else
        if (pm_cfg_streq (key, "backoff_initial"))
            rc = pm_cfg_seconds (ctx, member, 0, 3600, &service->backoff_initial);
        else
        if (pm_cfg_streq (key, "backoff_max"))
            rc = pm_cfg_seconds (ctx, member, 0, 86400, &service->backoff_max);
        else
        if (pm_cfg_streq (key, "restart_window"))
            rc = pm_cfg_seconds (ctx, member, 0, 86400 * 7, &service->restart_window);
        else
        if (pm_cfg_streq (key, "min_uptime"))
            rc = pm_cfg_seconds (ctx, member, 0, 86400, &service->min_uptime);
        else
        if (pm_cfg_streq (key, "max_restarts")) {
            uint64_t number;
            rc = pm_cfg_count (ctx, member, false, 0, 1000, &number);
            service->max_restarts = (unsigned) number;
        }
        else
        if (pm_cfg_streq (key, "log_file"))
            rc = pm_cfg_path_setting (ctx, member, config->log_dir,
                                      &service->log_file);
        else
            rc = pm_cfg_log_key (ctx, member, &service->log);
        if (rc)
            return -1;
    }
    //  Precedence: the agent's env files, the service's, then
    //  "environment"; the agent's own environment is below them all.
    if (config->env_count || env_files) {
        pm_config_env_t *env = NULL;
        size_t env_count = 0;
        for (size_t i = 0; i < config->env_count; i++)
            pm_env_set (&env, &env_count, config->env [i].key,
                        config->env [i].value);
        int failed = env_files ? pm_cfg_env_files (ctx, env_files,
                                                   config->dir, &env,
                                                   &env_count) : 0;
        for (size_t i = 0; i < service->env_count; i++) {
            pm_env_set (&env, &env_count, service->env [i].key,
                        service->env [i].value);
            free (service->env [i].key);
            free (service->env [i].value);
        }
        free (service->env);
        service->env = env;
        service->env_count = env_count;
        if (failed)
            return -1;
    }
    if (!command && !argv)
        return pm_cfg_fail (ctx, group, "needs \"command\" (a shell line) or "
                       "\"argv\" (a list of strings)");
    if (service->backoff_max < service->backoff_initial)
        return pm_cfg_fail (ctx, group, "backoff_max (%g s) is less than "
                       "backoff_initial (%g s)", service->backoff_max,
                       service->backoff_initial);
    if (!service->working_dir)
        service->working_dir = pm_cfg_strdup (config->dir);
    if (!service->log_file) {
        size_t size = strlen (config->log_dir) + strlen (name) + 6;
        if (size > PM_PATH_MAX)
            return pm_cfg_fail (ctx, group, "log file path longer than %d bytes",
                           PM_PATH_MAX);
        service->log_file = pm_cfg_alloc (size, 1);
        snprintf (service->log_file, size, "%s/%s.log", config->log_dir, name);
        pm_cfg_path_clean (service->log_file);
    }
    return 0;
}

void
pm_cfg_service_clear (pm_config_service_t *service)
{
    free (service->name);
    free (service->command);
    if (service->argv)
        for (size_t i = 0; i < service->argc; i++)
            free (service->argv [i]);
    free (service->argv);
    free (service->working_dir);
    for (size_t i = 0; i < service->env_count; i++) {
        free (service->env [i].key);
        free (service->env [i].value);
    }
    free (service->env);
    for (size_t i = 0; i < service->deps_count; i++)
        free (service->deps [i].name);
    free (service->deps);
    free (service->log_file);
    pm_config_probe_t *probes [2] = { &service->ready, &service->alive };
    for (int i = 0; i < 2; i++) {
        free (probes [i]->command);
        free (probes [i]->host);
        free (probes [i]->path);
        free (probes [i]->regex);
    }
    memset (service, 0, sizeof *service);
}
