/*  config_setting.c - the common ground of the config readers (see
    config_int.h)

    Owns: the "FILE:LINE: KEY: what is wrong" error every reader reports,
    memory that aborts when it runs out, the typed reads of one setting
    (string, boolean, integer as text, group), and relative paths joined
    to their base and cleaned lexically.

    Leaves to others: which keys exist and what their values may be
    (config.c for the file and the agent group, config_service.c for a
    service, config_values.c for numbers, names and probes).  Talks to
    libconfig only.

    Path rule (user documentation repeats it): relative paths are joined
    to their base and cleaned lexically ("." and empty parts dropped,
    ".." removes the part before it); nothing is looked up on disk.
*/
#include "config_int.h"
#include "pm_rundir.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The longest dotted key an error names; longer ones are cut.
#define S_KEY_MAX 512

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

int
pm_cfg_string (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
               const char **value)
{
    if (config_setting_type (setting) != CONFIG_TYPE_STRING)
        return pm_cfg_fail (ctx, setting, "expected a string, not %s",
                            pm_cfg_type_name (setting));
    *value = config_setting_get_string (setting);
    return 0;
}

int
pm_cfg_bool (pm_cfg_ctx_t *ctx, const config_setting_t *setting, bool *value)
{
    if (config_setting_type (setting) != CONFIG_TYPE_BOOL)
        return pm_cfg_fail (ctx, setting, "expected true or false, not %s",
                            pm_cfg_type_name (setting));
    *value = config_setting_get_bool (setting);
    return 0;
}

void
pm_cfg_decimal (const config_setting_t *setting, char *text, size_t size)
{
    assert (pm_cfg_is_integer (setting));
    snprintf (text, size, "%lld", config_setting_get_int64 (setting));
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

void
pm_cfg_path_clean (char *path)
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

int
pm_cfg_path (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
             const char *base, const char *value, char **path_p)
{
    if (*value == 0)
        return pm_cfg_fail (ctx, setting, "empty path");
    size_t size = strlen (base) + strlen (value) + 2;
    if (size > PM_PATH_MAX)
        return pm_cfg_fail (ctx, setting, "path longer than %d bytes",
                            PM_PATH_MAX);
    char *path = pm_cfg_alloc (size, 1);
    if (*value == '/')
        strcpy (path, value);
    else
        strcat (strcat (strcpy (path, base), "/"), value);
    pm_cfg_path_clean (path);
    *path_p = path;
    return 0;
}

int
pm_cfg_path_setting (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                     const char *base, char **path_p)
{
    const char *value = NULL;
    if (pm_cfg_string (ctx, setting, &value))
        return -1;
    return pm_cfg_path (ctx, setting, base, value, path_p);
}
