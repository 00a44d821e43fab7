/*  test_envfile.c - .env files (schema/envfile.c)

    Every form of the syntax gives the value it documents; ${VAR} sees
    the lines above, earlier files and the environment, in that order; a
    later setting replaces an earlier one in place; each malformed line is
    an error naming the file and line, keeping what came before.
*/
#include "check.h"
#include "envfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_dir [] = "/tmp/test_envfile.XXXXXX";

static const char *
s_file (const char *name, const char *text)
{
    static char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    CHECK (file != NULL);
    fputs (text, file);
    fclose (file);
    return path;
}

static const char *
s_get (pm_config_env_t *env, size_t count, const char *key)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (env [i].key, key) == 0)
            return env [i].value;
    return NULL;
}

static void
s_free (pm_config_env_t **env, size_t *count)
{
    for (size_t i = 0; i < *count; i++) {
        free ((*env) [i].key);
        free ((*env) [i].value);
    }
    free (*env);
    *env = NULL;
    *count = 0;
}

static void
test_syntax (void)
{
    setenv ("TEST_ENVFILE_OUTER", "outer", 1);
    pm_config_env_t *env = NULL;
    size_t count = 0;
    char err [512] = "";
    const char *path = s_file ("a.env",
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "  SPACED = two words   \n"
        "export EXPORTED=yes\n"
        "COMMENTED=abc # not this\n"
        "HASH=a#b\n"
        "SINGLE='lit ${PLAIN} \\n # kept'\n"
        "DOUBLE=\"x\\ty\\n\\\"q\\\" \\$ ${PLAIN}\" # after\n"
        "REF=${PLAIN}-${TEST_ENVFILE_OUTER}\n"
        "DEFAULT=${TEST_ENVFILE_UNSET:-fallback}\n"
        "EMPTY_DEFAULT=${TEST_ENVFILE_UNSET:-}\n"
        "EMPTY=\n"
        "CRLF=dos\r\n"
        "PLAIN=replaced\n");
    CHECK (pm_envfile_read (path, &env, &count, err, sizeof err) == 0);
    if (*err)
        fprintf (stderr, "%s\n", err);
    CHECK (strcmp (s_get (env, count, "PLAIN"), "replaced") == 0);
    CHECK (strcmp (env [0].key, "PLAIN") == 0);     //  replaced in place
    CHECK (strcmp (s_get (env, count, "SPACED"), "two words") == 0);
    CHECK (strcmp (s_get (env, count, "EXPORTED"), "yes") == 0);
    CHECK (strcmp (s_get (env, count, "COMMENTED"), "abc") == 0);
    CHECK (strcmp (s_get (env, count, "HASH"), "a#b") == 0);
    CHECK (strcmp (s_get (env, count, "SINGLE"), "lit ${PLAIN} \\n # kept")
           == 0);
    CHECK (strcmp (s_get (env, count, "DOUBLE"), "x\ty\n\"q\" $ value") == 0);
    CHECK (strcmp (s_get (env, count, "REF"), "value-outer") == 0);
    CHECK (strcmp (s_get (env, count, "DEFAULT"), "fallback") == 0);
    CHECK (strcmp (s_get (env, count, "EMPTY_DEFAULT"), "") == 0);
    CHECK (strcmp (s_get (env, count, "EMPTY"), "") == 0);
    CHECK (strcmp (s_get (env, count, "CRLF"), "dos") == 0);
    CHECK (count == 12);

    //  A second file sees the first, and overrides it.
    path = s_file ("b.env", "PLAIN=${PLAIN}+b\nNEW=${REF}\n");
    CHECK (pm_envfile_read (path, &env, &count, err, sizeof err) == 0);
    CHECK (strcmp (s_get (env, count, "PLAIN"), "replaced+b") == 0);
    CHECK (strcmp (s_get (env, count, "NEW"), "value-outer") == 0);
    //  The list wins over the environment.
    setenv ("PLAIN", "from-environment", 1);
    path = s_file ("c.env", "SEEN=${PLAIN}\n");
    CHECK (pm_envfile_read (path, &env, &count, err, sizeof err) == 0);
    CHECK (strcmp (s_get (env, count, "SEEN"), "replaced+b") == 0);
    unsetenv ("PLAIN");
    s_free (&env, &count);
}

static void
s_refused (const char *text, int line, const char *what)
{
    pm_config_env_t *env = NULL;
    size_t count = 0;
    char err [512] = "";
    const char *path = s_file ("bad.env", text);
    CHECK (pm_envfile_read (path, &env, &count, err, sizeof err) == -1);
    char where [300];
    snprintf (where, sizeof where, "%s:%d: ", path, line);
    if (!strstr (err, where) || !strstr (err, what))
        fprintf (stderr, "err '%s', expected '%s' and '%s'\n", err, where,
                 what);
    CHECK (strstr (err, where) == err);
    CHECK (strstr (err, what) != NULL);
    //  What came before the error is kept.
    if (line > 1)
        CHECK (count >= 1 && strcmp (env [0].key, "OK") == 0);
    s_free (&env, &count);
}

static void
test_errors (void)
{
    s_refused ("OK=1\nno equals sign\n", 2, "expected KEY=value");
    s_refused ("OK=1\n1ABC=x\n", 2, "expected KEY=value");
    s_refused ("OK=1\nA='open\n", 2, "single quote is not closed");
    s_refused ("OK=1\nA=\"open\n", 2, "double quote is not closed");
    s_refused ("OK=1\nA=\"x\" junk\n", 2, "after the closing quote");
    s_refused ("OK=1\nA=${TEST_ENVFILE_UNSET}\n", 2,
               "${TEST_ENVFILE_UNSET} is not defined");
    s_refused ("OK=1\nA=${\n", 2, "expected a variable name");
    s_refused ("OK=1\nA=${OK\n", 2, "is not closed");
    pm_config_env_t *env = NULL;
    size_t count = 0;
    char err [512];
    char missing [300];
    snprintf (missing, sizeof missing, "%s/none.env", s_dir);
    CHECK (pm_envfile_read (missing, &env, &count, err, sizeof err) == -1);
    CHECK (strstr (err, "cannot read") && strstr (err, missing));
    CHECK (env == NULL && count == 0);
}

int
main (void)
{
    CHECK (mkdtemp (s_dir) != NULL);
    test_syntax ();
    test_errors ();
    char command [300];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    CHECK (system (command) == 0);
    return check_report ("test_envfile");
}
