/*  envfile.c - .env files (envfile.h) */
#include "envfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pm_env_set (pm_config_env_t **env, size_t *count, const char *key,
            const char *value)
{
    for (size_t i = 0; i < *count; i++)
        if (strcmp ((*env) [i].key, key) == 0) {
            char *copy = strdup (value);
            if (!copy)
                abort ();
            free ((*env) [i].value);
            (*env) [i].value = copy;
            return;
        }
    pm_config_env_t *grown = realloc (*env, (*count + 1) * sizeof **env);
    if (!grown)
        abort ();
    *env = grown;
    grown [*count].key = strdup (key);
    grown [*count].value = strdup (value);
    if (!grown [*count].key || !grown [*count].value)
        abort ();
    (*count)++;
}

//  A growing string.
typedef struct {
    char *data;
    size_t len, cap;
} s_text_t;

static void
s_put (s_text_t *text, const char *bytes, size_t len)
{
    if (text->len + len + 1 > text->cap) {
        text->cap = (text->len + len + 1) * 2;
        text->data = realloc (text->data, text->cap);
        if (!text->data)
            abort ();
    }
    memcpy (text->data + text->len, bytes, len);
    text->len += len;
    text->data [text->len] = 0;
}

typedef struct {
    const char *path;
    int line;
    char *err;
    size_t errlen;
    pm_config_env_t *env;
    size_t count;
} s_reader_t;

static int
s_fail (s_reader_t *self, const char *fmt, ...)
{
    char message [256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    snprintf (self->err, self->errlen, "%s:%d: %s", self->path, self->line,
              message);
    return -1;
}

static bool
s_name_char (int c, bool first)
{
    return c == '_' || isalpha (c) || (!first && isdigit (c));
}

static const char *
s_lookup (s_reader_t *self, const char *name)
{
    for (size_t i = self->count; i-- > 0;)
        if (strcmp (self->env [i].key, name) == 0)
            return self->env [i].value;
    return getenv (name);
}

//  At *at, just past "${": expands up to the closing brace into text.
static int
s_expand (s_reader_t *self, const char **at, s_text_t *text)
{
    const char *p = *at;
    const char *start = p;
    while (s_name_char ((unsigned char) *p, p == start))
        p++;
    size_t len = (size_t) (p - start);
    if (len == 0 || len > 255)
        return s_fail (self, "expected a variable name after ${");
    char name [256];
    memcpy (name, start, len);
    name [len] = 0;
    const char *value = s_lookup (self, name);
    if (p [0] == ':' && p [1] == '-') {
        const char *deflt = p + 2;
        const char *close = strchr (deflt, '}');
        if (!close)
            return s_fail (self, "${%s:-... is not closed by }", name);
        if (value && *value)
            s_put (text, value, strlen (value));
        else
            s_put (text, deflt, (size_t) (close - deflt));
        *at = close + 1;
        return 0;
    }
    if (*p != '}')
        return s_fail (self, "${%s is not closed by }", name);
    if (!value)
        return s_fail (self, "${%s} is not defined (no line above, no "
                       "earlier file and no environment variable sets it; "
                       "${%s:-} gives an empty default)", name, name);
    s_put (text, value, strlen (value));
    *at = p + 1;
    return 0;
}

//  One plain byte at *p, or a ${...} there expanded, into text.
static int
s_take (s_reader_t *self, const char **p, s_text_t *text)
{
    if ((*p) [0] == '$' && (*p) [1] == '{') {
        *p += 2;
        return s_expand (self, p, text);
    }
    s_put (text, (*p)++, 1);
    return 0;
}

//  The value at p (after "=" and spaces) into text.
static int
s_value (s_reader_t *self, const char *p, s_text_t *text)
{
    s_put (text, "", 0);
    if (*p == '\'') {
        const char *close = strchr (p + 1, '\'');
        if (!close)
            return s_fail (self, "a single quote is not closed");
        s_put (text, p + 1, (size_t) (close - p - 1));
        p = close + 1;
    }
    else
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p [1]) {
                char c = p [1];
                char out = c == 'n' ? '\n' : c == 't' ? '\t' : c;
                if (c != 'n' && c != 't' && c != '"' && c != '\\' && c != '$')
                    s_put (text, "\\", 1);
                s_put (text, &out, 1);
                p += 2;
            }
            else
            if (s_take (self, &p, text) == -1)
                return -1;
        }
        if (*p != '"')
            return s_fail (self, "a double quote is not closed");
        p++;
    }
    else {
        while (*p && !(*p == '#' && (text->len == 0
                                     || isspace ((unsigned char) p [-1]))))
            if (s_take (self, &p, text) == -1)
                return -1;
        while (text->len && isspace ((unsigned char) text->data [text->len - 1]))
            text->data [--text->len] = 0;
        return 0;
    }
    while (isspace ((unsigned char) *p))
        p++;
    if (*p && *p != '#')
        return s_fail (self, "unexpected text after the closing quote");
    return 0;
}

int
pm_envfile_read (const char *path, pm_config_env_t **env, size_t *count,
                 char *err, size_t errlen)
{
    FILE *file = fopen (path, "re");
    if (!file) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        return -1;
    }
    s_reader_t self = { path, 0, err, errlen, *env, *count };
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    s_text_t text = { NULL, 0, 0 };
    int rc = 0;
    while (rc == 0 && (got = getline (&line, &cap, file)) != -1) {
        self.line++;
        while (got > 0 && (line [got - 1] == '\n' || line [got - 1] == '\r'))
            line [--got] = 0;
        if (memchr (line, 0, (size_t) got)) {
            rc = s_fail (&self, "a NUL byte");
            break;
        }
        const char *p = line;
        while (isspace ((unsigned char) *p))
            p++;
        if (!*p || *p == '#')
            continue;
        if (strncmp (p, "export", 6) == 0 && (p [6] == ' ' || p [6] == '\t')) {
            p += 6;
            while (isspace ((unsigned char) *p))
                p++;
        }
        const char *key = p;
        while (s_name_char ((unsigned char) *p, p == key))
            p++;
        size_t key_len = (size_t) (p - key);
        while (*p == ' ' || *p == '\t')
            p++;
        if (key_len == 0 || key_len > 255 || *p != '=') {
            rc = s_fail (&self, "expected KEY=value (KEY: letters, digits "
                         "and '_', not starting with a digit)");
            break;
        }
        char name [256];
        memcpy (name, key, key_len);
        name [key_len] = 0;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        text.len = 0;
        rc = s_value (&self, p, &text);
        if (rc == 0)
            pm_env_set (&self.env, &self.count, name, text.data);
    }
    free (text.data);
    free (line);
    fclose (file);
    *env = self.env;
    *count = self.count;
    return rc;
}
