/*  cli.h - pmctl's parsed command line, shared by its command modules

    Owns: the options struct main.c fills from argv and hands to the
    module that runs the command (remote.c, up.c, logs.c, events.c).  The
    values are as typed (strings point into argv); main.c has already
    checked that the command takes each option given and parsed the
    --timeout seconds.
*/
#ifndef PM_CLI_H
#define PM_CLI_H

#include <stdbool.h>

typedef struct {
    const char *config;           //  -c FILE, or NULL
    const char *rundir;           //  -s DIR, or NULL
    const char *connect;          //  --connect ENDPOINT, else $PMBUS_CONNECT
    const char *server_key;       //  --server-key FILE, else $PMBUS_SERVER_KEY
    const char *key;              //  --key FILE, else $PMBUS_KEY
    const char **agents;          //  --agent NAME..., or NULL
    int agents_count;
    bool json;                    //  --json
    bool help;                    //  -h, --help
    bool version;                 //  --version
    bool all;                     //  --all
    bool with_dependents;         //  --with-dependents
    bool follow;                  //  -f, --follow (logs, events)
    bool no_color;                //  --no-color (logs)
    bool quiet;                   //  -q, --quiet (is-running)
    bool live;                    //  --live (status: ask the agent)
    const char *wait;             //  --wait MODE, or NULL
    const char *timeout;          //  --timeout S, or NULL
    const char *lines;            //  -n, --lines N (logs), or NULL
    const char *wait_for;         //  --for STATE (wait), or NULL
    const char *lease;            //  --lease PID (up), or NULL
    char **args;                  //  the command word and its operands
    int args_count;
    double timeout_s;             //  --timeout in seconds, 0 when absent
} pm_cli_t;

/*  Prints "pmctl: <message> (see pmctl --help)" on stderr and returns
    the usage exit code (2). */
int pm_cli_usage_error (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2)));

/*  Parses a decimal process id, 1..INT_MAX.  Returns 0, or -1. */
int pm_cli_parse_pid (const char *text, long *pid);

#endif
