/*  envfile.h - .env files, and the variables a service gets from them

    Owns: reading the usual .env syntax into a list of variables, and
    setting a variable in such a list (a later setting replaces an earlier
    one in place).  The syntax, one variable per line:

      KEY=value            # a comment after a space
      export KEY=value     # the word export is ignored
      KEY='literal'        # nothing inside single quotes is special
      KEY="a\n${OTHER}"    # escapes \n \t \" \\ \$, and ${VAR}
      KEY=${VAR:-default}  # unquoted values expand ${VAR} too

    Blank lines and lines starting with # are skipped; spaces around the
    "=" are allowed.  ${VAR} is what the list holds so far (the files
    before, the lines above), else the environment of the process reading
    the file (the agent's); ${VAR:-default} gives default when VAR is
    unset or empty.  An undefined ${VAR} without a default is an error,
    as it is in the config file.
*/
#ifndef PM_ENVFILE_H
#define PM_ENVFILE_H

#include "config.h"

#include <stddef.h>

/*  Sets key to value in the list (*env, *count), replacing its value if
    the key is there, else adding it at the end. */
void pm_env_set (pm_config_env_t **env, size_t *count, const char *key,
                 const char *value);

/*  Reads the .env file at path into the list.  Returns 0, or -1 with
    "PATH:LINE: what is wrong" (or "cannot read PATH: why") in err; the
    list then holds what came before the error. */
int pm_envfile_read (const char *path, pm_config_env_t **env, size_t *count,
                     char *err, size_t errlen);

#endif
