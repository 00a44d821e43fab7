/*  config.c - the configuration file, read into validated plain structs
    (see config.h)

    Owns: reading the libconfig file, checking every key, type and value
    against the rules below, resolving relative paths, and turning
    depends_on into indexes, a cycle check and the start order (through
    graph.c).  The first error found is reported as "FILE:LINE: KEY: what
    is wrong" (top-level keys first, then agent, then each service in
    file order, then dependencies); nothing is half-loaded.

    The values of the keys that take numbers, signal names, log settings
    and probes are checked in config_values.c (config_int.h is the common
    ground).

    Leaves to others: what the settings mean at run time (supervisor,
    spawn, logcap) and whether the paths exist: nothing here creates or
    requires a directory.  Talks to libconfig, graph.c, and libpmproto
    for signal and condition names and the agent name rule.

    Rules this file decides (user documentation should repeat them):
    - Both top-level groups are optional; no `services` means no services.
    - Unknown keys are errors at every level, including keys reserved for
      later (ready, alive, backoff_*, log_max_size...).
    - environment values are strings or integers (integers become their
      decimal text); names are [A-Za-z_][A-Za-z0-9_]*, as a shell needs.
    - depends_on is a group (name = "started" | "ready" | "completed") or
      a list/array of names, each meaning "started".
    - Relative paths are joined to their base and cleaned lexically ("."
      and empty parts dropped, ".." removes the part before it); nothing
      is looked up on disk but the config file itself.
    - agent.control and agent.events: "tcp://HOST:PORT", or "ipc://PATH"
      with PATH resolved like the other paths and at most 107 bytes.
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
#include <libconfig.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Service names are topic parts and command targets: keep them short.
#define S_SERVICE_NAME_MAX 64
//  Bounds the O(n^2) graph work and matches the names a request can carry.
#define S_SERVICES_MAX PM_NAMES_MAX
#define S_KEY_MAX 512

static const char *s_top_keys [] = { "agent", "services", NULL };

/* ------------------------------------------------------------------ */
/*  Memory: running out of it aborts (STYLE.md, Errors).               */
/* ------------------------------------------------------------------ */

void *
pm_cfg_alloc (size_t count, size_t size)
{
    void *memory = calloc (count ? count : 1, size ? size : 1);
    if (!memory)
        abort ();
    return memory;
}

char *
pm_cfg_strdup (const char *text)
{
    char *copy = strdup (text);
    if (!copy)
        abort ();
    return copy;
}

/* ------------------------------------------------------------------ */
/*  Errors                                                             */
/* ------------------------------------------------------------------ */

//  Writes the dotted path of setting from the root: services.web.argv[1].
static void
s_key (const config_setting_t *setting, char *buf, size_t size)
{
    const config_setting_t *parent = config_setting_parent (setting);
    if (!parent || config_setting_is_root (parent)) {
        snprintf (buf, size, "%s", setting->name ? setting->name : "");
        return;
    }
    s_key (parent, buf, size);
    size_t used = strlen (buf);
    if (used >= size - 1)
        return;
    if (setting->name)
        snprintf (buf + used, size - used, ".%s", setting->name);
    else
        snprintf (buf + used, size - used, "[%d]",
                  config_setting_index (setting));
}

//  Reports "FILE:LINE: KEY: message" for setting; returns -1.
int
pm_cfg_fail (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
             const char *format, ...)
{
    if (!ctx->err || ctx->errlen == 0)
        return -1;
    //  Elements and groups always carry a line in libconfig 1.5; walk up
    //  anyway, so a setting without one still points somewhere near.
    const config_setting_t *at = setting;
    while (config_setting_source_line (at) == 0 && config_setting_parent (at))
        at = config_setting_parent (at);
    //  Settings from an @include name their own file.
    const char *file = config_setting_source_file (at);
    if (!file)
        file = ctx->file;
    char key [S_KEY_MAX];
    s_key (setting, key, sizeof key);
    char message [PM_CONFIG_ERR_MAX];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    snprintf (ctx->err, ctx->errlen, "%s:%u: %s: %s", file,
              config_setting_source_line (at), key, message);
    return -1;
}

const char *
pm_cfg_type_name (const config_setting_t *setting)
{
    switch (config_setting_type (setting)) {
        case CONFIG_TYPE_GROUP:  return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:  return "an integer";
        case CONFIG_TYPE_FLOAT:  return "a number";
        case CONFIG_TYPE_STRING: return "a string";
        case CONFIG_TYPE_BOOL:   return "a boolean";
        case CONFIG_TYPE_ARRAY:  return "an array";
        case CONFIG_TYPE_LIST:   return "a list";
        default:                 return "nothing";
    }
}

/* ------------------------------------------------------------------ */
/*  Typed values                                                       */
/* ------------------------------------------------------------------ */

bool
pm_cfg_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

bool
pm_cfg_is_integer (const config_setting_t *setting)
{
    int type = config_setting_type (setting);
    return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

//  Borrows the string value of setting, or fails naming what it is.
int
pm_cfg_string (pm_cfg_ctx_t *ctx, const config_setting_t *setting, const char **value)
{
    if (config_setting_type (setting) != CONFIG_TYPE_STRING)
        return pm_cfg_fail (ctx, setting, "expected a string, not %s",
                       pm_cfg_type_name (setting));
    *value = config_setting_get_string (setting);
    return 0;
}

//  Fails on the first member of group whose name is not in keys.
static int
s_check_keys (pm_cfg_ctx_t *ctx, const config_setting_t *group, const char **keys)
{
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (group, i);
        bool known = false;
        for (const char **key = keys; *key && !known; key++)
            known = strcmp (member->name, *key) == 0;
        if (!known)
            return pm_cfg_fail (ctx, member, "unknown key '%s'", member->name);
    }
    return 0;
}

int
pm_cfg_expect_group (pm_cfg_ctx_t *ctx, const config_setting_t *setting)
{
    if (config_setting_is_group (setting))
        return 0;
    return pm_cfg_fail (ctx, setting, "expected a group { ... }, not %s",
                   pm_cfg_type_name (setting));
}

/* ------------------------------------------------------------------ */
/*  Paths                                                              */
/* ------------------------------------------------------------------ */

//  Cleans an absolute path in place: drops empty and "." parts, and
//  removes the part before each "..".  Lexical, like the rest of the
//  file's path handling: nothing needs to exist yet.
static void
s_path_clean (char *path)
{
    assert (path [0] == '/');
    char *read = path;
    char *write = path;         //  path[0 .. write) is the clean prefix
    while (*read) {
        while (*read == '/')
            read++;
        if (!*read)
            break;
        char *end = strchr (read, '/');
        size_t len = end ? (size_t) (end - read) : strlen (read);
        bool dot = len == 1 && read [0] == '.';
        bool dot_dot = len == 2 && read [0] == '.' && read [1] == '.';
        if (dot_dot) {
            while (write > path && write [-1] != '/')
                write--;
            if (write > path)
                write--;        //  the slash before the removed part
        }
        else
        if (!dot) {
            *write++ = '/';
            memmove (write, read, len);
            write += len;
        }
        read += len;
    }
    if (write == path)
        *write++ = '/';
    *write = 0;
}

//  Resolves value against base (absolute) into a new clean absolute path,
//  or fails on setting.
static int
s_path (pm_cfg_ctx_t *ctx, const config_setting_t *setting, const char *base,
        const char *value, char **path_p)
{
    if (*value == 0)
        return pm_cfg_fail (ctx, setting, "empty path");
    size_t size = strlen (base) + strlen (value) + 2;
    if (size > PM_PATH_MAX)
        return pm_cfg_fail (ctx, setting, "path longer than %d bytes", PM_PATH_MAX);
    char *path = pm_cfg_alloc (size, 1);
    if (*value == '/')
        strcpy (path, value);
    else
        strcat (strcat (strcpy (path, base), "/"), value);
    s_path_clean (path);
    *path_p = path;
    return 0;
}

/* ------------------------------------------------------------------ */
/*  The agent group                                                    */
/* ------------------------------------------------------------------ */

//  An endpoint override.  A relative ipc path is resolved against the
//  config's directory like every other path: pmd and pmctl may run from
//  different directories and must still meet at one socket.
static int
s_endpoint (pm_cfg_ctx_t *ctx, const config_setting_t *setting, char **endpoint_p)
{
    const char *value = NULL;
    if (pm_cfg_string (ctx, setting, &value))
        return -1;
    const char *rest = value + 6;
    if (strncmp (value, "tcp://", 6) == 0) {
        const char *colon = strrchr (rest, ':');
        if (!colon || colon == rest || colon [1] == 0)
            return pm_cfg_fail (ctx, setting, "expected \"tcp://HOST:PORT\"");
        *endpoint_p = pm_cfg_strdup (value);
        return 0;
    }
    if (strncmp (value, "ipc://", 6) != 0 || *rest == 0)
        return pm_cfg_fail (ctx, setting,
                       "expected an endpoint \"ipc://PATH\" or "
                       "\"tcp://HOST:PORT\"");
    char *path = NULL;
    if (s_path (ctx, setting, ctx->config->dir, rest, &path))
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




static int
s_load_agent (pm_cfg_ctx_t *ctx, const config_setting_t *agent)
{
    pm_config_t *config = ctx->config;
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
        if (pm_cfg_streq (key, "log_dir")) {
            if (pm_cfg_string (ctx, member, &value))
                return -1;
            free (config->log_dir);
            config->log_dir = NULL;
            if (s_path (ctx, member, config->dir, value, &config->log_dir))
                return -1;
        }
        else
        if (pm_cfg_streq (key, "control")) {
            if (s_endpoint (ctx, member, &config->control))
                return -1;
        }
        else
        if (pm_cfg_streq (key, "events")) {
            if (s_endpoint (ctx, member, &config->events))
                return -1;
        }
        else {
            int rc = pm_cfg_log_key (ctx, member, &config->log);
            if (rc < 0)
                return -1;
            if (rc > 0)
                return pm_cfg_fail (ctx, member, "unknown key '%s'", key);
        }
    }
    config->log_format = config->log.format;
    return 0;
}

/* ------------------------------------------------------------------ */
/*  One service                                                        */
/* ------------------------------------------------------------------ */

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
            snprintf (number, sizeof number, "%lld",
                      config_setting_get_int64 (member));
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







static int
s_load_service (pm_cfg_ctx_t *ctx, size_t index, config_setting_t *group)
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
    service->min_uptime = 10.0;

    const config_setting_t *command = NULL;
    const config_setting_t *argv = NULL;
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        config_setting_t *member = config_setting_get_elem (group, i);
        const char *key = member->name;
        const char *value = NULL;
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
            rc = pm_cfg_string (ctx, member, &value)
              || s_path (ctx, member, config->dir, value, &service->working_dir);
        else
        if (pm_cfg_streq (key, "environment"))
            rc = s_environment (ctx, member, service);
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
        if (pm_cfg_streq (key, "autostart")) {
            if (config_setting_type (member) != CONFIG_TYPE_BOOL)
                return pm_cfg_fail (ctx, member, "expected true or false, not %s",
                               pm_cfg_type_name (member));
            service->autostart = config_setting_get_bool (member);
        }
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
            rc = pm_cfg_string (ctx, member, &value)
              || s_path (ctx, member, config->log_dir, value, &service->log_file);
        else {
            rc = pm_cfg_log_key (ctx, member, &service->log);
            if (rc > 0)
                return pm_cfg_fail (ctx, member, "unknown key '%s'", key);
        }
        if (rc)
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
        s_path_clean (service->log_file);
    }
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
    config->log_dir = pm_cfg_alloc (strlen (config->dir) + 6, 1);
    sprintf (config->log_dir, "%s/logs", config->dir);
    s_path_clean (config->log_dir);
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
        if (s_load_service (ctx, (size_t) i,
                            config_setting_get_elem (services, (unsigned) i)))
            return -1;
    return s_resolve (ctx);
}

//  Checks that path can be opened and is a regular file, so the error
//  carries errno's text (libconfig only says "file I/O error").
static int
s_check_file (pm_cfg_ctx_t *ctx, const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
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
        if (ctx->err && ctx->errlen)
            snprintf (ctx->err, ctx->errlen, "%s: not a regular file", path);
        return -1;
    }
    if (fd != -1)
        close (fd);
    if (error) {
        if (ctx->err && ctx->errlen)
            snprintf (ctx->err, ctx->errlen, "%s: cannot read: %s", path,
                      strerror (error));
        return -1;
    }
    return 0;
}

pm_config_t *
pm_config_load (const char *path, char *err, size_t errlen)
{
    assert (path);
    pm_cfg_ctx_t ctx = { .file = path, .err = err, .errlen = errlen };
    if (err && errlen)
        err [0] = 0;
    if (s_check_file (&ctx, path))
        return NULL;

    char *real = realpath (path, NULL);
    if (!real) {
        if (err && errlen)
            snprintf (err, errlen, "%s: cannot read: %s", path,
                      strerror (errno));
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
        if (err && errlen) {
            const char *text = config_error_text (&file);
            if (!text)
                text = "unknown error";
            const char *where = config_error_file (&file);
            if (config_error_type (&file) == CONFIG_ERR_FILE_IO)
                snprintf (err, errlen, "%s: cannot read: %s", path, text);
            else
                snprintf (err, errlen, "%s:%d: syntax error%s%s",
                          where ? where : path, config_error_line (&file),
                          pm_cfg_streq (text, "syntax error") ? "" : ": ",
                          pm_cfg_streq (text, "syntax error") ? "" : text);
        }
        rc = -1;
    }
    else
        rc = s_load_root (&ctx, &file);
    config_destroy (&file);
    free (ctx.depends_on);
    if (rc)
        pm_config_destroy (&config);
    return config;
}

static void
s_service_clear (pm_config_service_t *service)
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

void
pm_config_destroy (pm_config_t **self_p)
{
    assert (self_p);
    pm_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->services_count; i++)
        s_service_clear (&self->services [i]);
    free (self->services);
    free (self->start_order);
    free (self->path);
    free (self->dir);
    free (self->name);
    free (self->log_dir);
    free (self->control);
    free (self->events);
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
