/*  main.c - pmctl: options and dispatch

    Owns: the command line (getopt_long; options may come before or after
    the command word), its checks, the request each command sends, how
    long pmctl waits for the answer, and the exit code of each outcome.

    Leaves to others: finding and talking to the agent (client.c), all
    output but usage (render.c), the wire format (libpmproto), config
    validation (agent/config.c, for `check`).
*/
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "pm_proto.h"
#include "pmctl.h"
#include "render.h"

#ifndef PM_VERSION
#   define PM_VERSION "0.0.0"
#endif

//  How long a command that does not wait may take to be answered.
#define S_ANSWER_MS 10000
//  pmctl's margin over the timeout it asked the agent to enforce.
#define S_MARGIN_MS 2000
//  shutdown's default bound on the whole thing.
#define S_SHUTDOWN_TIMEOUT 60.0
//  Largest --timeout: a week, so milliseconds fit an int.
#define S_TIMEOUT_MAX (7 * 86400.0)

//  What each command accepts.
#define S_NAMES           0x01    //  service names
#define S_ALL             0x02    //  --all, and names or --all required
#define S_WAIT            0x04    //  --wait
#define S_TIMEOUT         0x08    //  --timeout
#define S_DEPENDENTS      0x10    //  --with-dependents
#define S_SIGNAL          0x20    //  a signal before the names
#define S_FILE            0x40    //  one optional FILE (check)

typedef struct {
    const char *word;             //  as typed
    int cmd;                      //  pm_cmd_t, or -1 when local (check)
    unsigned takes;               //  S_ flags
    const char *waits;            //  --wait values accepted, "|"-separated
} s_command_t;

static const s_command_t s_commands [] = {
    { "status",   PM_CMD_STATUS,   S_NAMES, NULL },
    { "ps",       PM_CMD_STATUS,   S_NAMES, NULL },
    { "start",    PM_CMD_START,    S_NAMES | S_ALL | S_WAIT | S_TIMEOUT,
                  "none|started|running" },
    { "stop",     PM_CMD_STOP,     S_NAMES | S_ALL | S_WAIT | S_TIMEOUT
                                 | S_DEPENDENTS, "none|stopped" },
    { "restart",  PM_CMD_RESTART,  S_NAMES | S_ALL | S_WAIT | S_TIMEOUT
                                 | S_DEPENDENTS, "none|started|running" },
    { "signal",   PM_CMD_SIGNAL,   S_NAMES | S_ALL | S_SIGNAL, NULL },
    { "check",    -1,              S_FILE, NULL },
    { "ping",     PM_CMD_HELLO,    0, NULL },
    { "shutdown", PM_CMD_SHUTDOWN, S_TIMEOUT, NULL },
};

typedef struct {
    const char *config;           //  -c FILE, or NULL
    const char *rundir;           //  -s DIR, or NULL
    bool json;                    //  --json
    bool help;                    //  -h, --help
    bool version;                 //  --version
    bool all;                     //  --all
    bool with_dependents;         //  --with-dependents
    const char *wait;             //  --wait MODE, or NULL
    const char *timeout;          //  --timeout S, or NULL
    char **args;                  //  the command word and its operands
    int args_count;
} s_options_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"usage: pmctl [-c FILE] [-s DIR] [--json] COMMAND [ARGS]\n"
"\n"
"Controls a pmd agent.  The agent is the one of a config file: -c FILE,\n"
"else $PMBUS_CONFIG, else ./pmbus.cfg.  Options may come before or after\n"
"the command.\n"
"\n"
"commands:\n"
"  status [NAME...]          a table of services: NAME STATE PID UPTIME\n"
"                            RESTARTS EXIT ERROR (alias: ps)\n"
"  start [--wait none|started|running] [--timeout S] (NAME...|--all)\n"
"                            start services, dependencies first; waits\n"
"                            until they are running (ready) by default\n"
"  stop [--with-dependents] [--wait none|stopped] [--timeout S]\n"
"       (NAME...|--all)      stop services; waits until they are reaped\n"
"  restart [--with-dependents] [--wait none|started|running] [--timeout S]\n"
"       (NAME...|--all)      stop then start; a service not running is\n"
"                            started; waits until running by default\n"
"  signal SIG (NAME...|--all)\n"
"                            send SIG (TERM, SIGHUP, 9...) to services\n"
"  check [FILE]              validate the config file here, without an agent\n"
"  ping                      the agent's name, version, pid, config,\n"
"                            endpoints, uptime and leases\n"
"  shutdown [--timeout S]    stop every service, then the agent; waits until\n"
"                            the agent has exited (default timeout 60 s)\n"
"\n"
"options:\n"
"  -c, --config FILE         the agent's config file\n"
"  -s, --runtime-dir DIR     the agent's runtime directory (default: derived\n"
"                            from the config; alone, it names the agent)\n"
"      --json                print the agent's reply as one line of JSON\n"
"      --all                 every service (start, stop, restart, signal)\n"
"      --wait MODE           what to wait for: none, started, running,\n"
"                            stopped (start, stop, restart)\n"
"      --timeout S           give up after S seconds (0: no limit, the\n"
"                            default; shutdown: 60)\n"
"      --with-dependents     also stop or restart what depends on the\n"
"                            named services, in dependency order\n"
"  -h, --help                this text\n"
"      --version             pmctl's version\n"
"\n"
"exit codes:\n"
"  0  success, notes such as already-running included\n"
"  1  a target failed: the agent answered failed or not-running (e.g. a\n"
"     signal to a stopped service), or a service exited while starting\n"
"  2  usage error, unknown service, invalid config (check), request\n"
"     refused (bad-request, bad-signal)\n"
"  3  agent not reachable: none running, not answering, or exited\n"
"     before answering\n"
"  4  timeout: a target did not reach its state in time\n");
}

//  A usage error: one line, a pointer to --help, exit code 2.
static int
s_usage_error (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "pmctl: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, " (see pmctl --help)\n");
    va_end (args);
    return PM_EXIT_USAGE;
}

//  Parses argv into options.  Returns 0, or an exit code after a usage
//  error.  Operands are kept in order, whatever the options between
//  them, and whatever POSIXLY_CORRECT says ("-" in optstring).
static int
s_parse (int argc, char **argv, s_options_t *options)
{
    enum { O_JSON = 256, O_ALL, O_WAIT, O_TIMEOUT, O_DEPENDENTS, O_VERSION };
    static const struct option longs [] = {
        { "config",          required_argument, NULL, 'c' },
        { "runtime-dir",     required_argument, NULL, 's' },
        { "json",            no_argument,       NULL, O_JSON },
        { "help",            no_argument,       NULL, 'h' },
        { "version",         no_argument,       NULL, O_VERSION },
        { "all",             no_argument,       NULL, O_ALL },
        { "wait",            required_argument, NULL, O_WAIT },
        { "timeout",         required_argument, NULL, O_TIMEOUT },
        { "with-dependents", no_argument,       NULL, O_DEPENDENTS },
        { NULL, 0, NULL, 0 }
    };
    memset (options, 0, sizeof *options);
    options->args = calloc ((size_t) argc + 1, sizeof (char *));
    if (!options->args)
        abort ();
    opterr = 0;
    for (;;) {
        int last = optind;
        int c = getopt_long (argc, argv, "-:c:s:h", longs, NULL);
        if (c == -1)
            break;
        switch (c) {
            case 1:
                options->args [options->args_count++] = optarg;
                break;
            case 'c':
                options->config = optarg;
                break;
            case 's':
                options->rundir = optarg;
                break;
            case 'h':
                options->help = true;
                break;
            case O_JSON:
                options->json = true;
                break;
            case O_VERSION:
                options->version = true;
                break;
            case O_ALL:
                options->all = true;
                break;
            case O_WAIT:
                options->wait = optarg;
                break;
            case O_TIMEOUT:
                options->timeout = optarg;
                break;
            case O_DEPENDENTS:
                options->with_dependents = true;
                break;
            case ':':
                return s_usage_error ("option %s needs a value",
                                      argv [last]);
            default:
                //  getopt sets optopt for a known long option given a
                //  value it does not take ("--json=1").
                if (optopt && strncmp (argv [last], "--", 2) == 0)
                    return s_usage_error ("option %.*s takes no value",
                                          (int) strcspn (argv [last], "="),
                                          argv [last]);
                if (optopt >= '0' && optopt <= '9')
                    return s_usage_error ("unknown option -%c; a signal "
                                          "is written without a dash: "
                                          "'signal 9' or 'signal KILL'",
                                          optopt);
                if (optopt)
                    return s_usage_error ("unknown option -%c", optopt);
                return s_usage_error ("unknown option %s", argv [last]);
        }
    }
    //  After "--", getopt leaves the rest as operands.
    while (optind < argc)
        options->args [options->args_count++] = argv [optind++];
    return 0;
}

static const s_command_t *
s_command_find (const char *word)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
        if (strcmp (s_commands [i].word, word) == 0)
            return &s_commands [i];
    return NULL;
}

//  True when value is one of the "|"-separated words in list.
static bool
s_one_of (const char *value, const char *list)
{
    size_t len = strlen (value);
    for (const char *p = list; p && *p; ) {
        size_t word = strcspn (p, "|");
        if (word == len && strncmp (p, value, len) == 0)
            return true;
        p += word + (p [word] == '|');
    }
    return false;
}

//  Checks options against what command takes and fills request (names,
//  all, wait, timeout, with_dependents, signal).  Returns 0, or an exit
//  code after a usage error.
static int
s_build (const s_options_t *options, const s_command_t *command,
         pm_request_t *request, double *timeout)
{
    const char *word = command->word;
    if (options->all && !(command->takes & S_ALL))
        return s_usage_error ("%s does not take --all", word);
    if (options->wait && !(command->takes & S_WAIT))
        return s_usage_error ("%s does not take --wait", word);
    if (options->timeout && !(command->takes & S_TIMEOUT))
        return s_usage_error ("%s does not take --timeout", word);
    if (options->with_dependents && !(command->takes & S_DEPENDENTS))
        return s_usage_error ("%s does not take --with-dependents", word);

    *timeout = 0;
    if (options->timeout) {
        char *end;
        errno = 0;
        double value = strtod (options->timeout, &end);
        if (errno || end == options->timeout || *end || !isfinite (value)
        ||  value < 0 || value > S_TIMEOUT_MAX)
            return s_usage_error ("bad --timeout '%s': expected seconds, "
                                  "e.g. 30 or 1.5", options->timeout);
        *timeout = value;
    }
    if (command->cmd == PM_CMD_START || command->cmd == PM_CMD_STOP
    ||  command->cmd == PM_CMD_RESTART) {
        //  Blocking is the default, and pmctl says so in the request.
        const char *wait = options->wait ? options->wait
                         : command->cmd == PM_CMD_STOP ? "stopped"
                                                       : "running";
        if (!s_one_of (wait, command->waits)
        ||  pm_wait_parse (wait, &request->wait) == -1)
            return s_usage_error ("bad --wait '%s' for %s: expected %s",
                                  wait, word, command->waits);
        request->timeout = *timeout;
        request->with_dependents = options->with_dependents;
    }

    char **operands = options->args + 1;
    int count = options->args_count - 1;
    if (command->takes & S_SIGNAL) {
        if (count == 0)
            return s_usage_error ("%s needs a signal, then service names "
                                  "or --all", word);
        if (pm_signal_parse (operands [0], &request->signum) == -1)
            return s_usage_error ("unknown signal '%s'", operands [0]);
        operands++;
        count--;
    }
    if (!(command->takes & S_NAMES)) {
        if (count > 0)
            return s_usage_error ("%s takes no arguments, got '%s'", word,
                                  operands [0]);
        return 0;
    }
    if (command->takes & S_ALL) {
        if (count > 0 && options->all)
            return s_usage_error ("%s: give service names or --all, not "
                                  "both", word);
        if (count == 0 && !options->all)
            return s_usage_error ("%s needs service names or --all", word);
        request->all = options->all;
    }
    for (int i = 0; i < count; i++)
        if (pm_request_add_name (request, operands [i]) == -1)
            return s_usage_error ("bad service name '%s'", operands [i]);
    return 0;
}

//  How long pmctl waits for the reply, in ms (-1: no limit), and whether
//  the command waits for a state (*waits).  The agent enforces a waiting
//  command's timeout; pmctl only adds a margin.
static int
s_answer_ms (const pm_request_t *request, double timeout, bool *waits)
{
    *waits = request->cmd == PM_CMD_SHUTDOWN
          || ((request->cmd == PM_CMD_START || request->cmd == PM_CMD_STOP
            || request->cmd == PM_CMD_RESTART)
           && request->wait != PM_WAIT_NONE);
    if (!*waits)
        return S_ANSWER_MS;
    if (request->cmd == PM_CMD_SHUTDOWN)
        return timeout > 0 ? (int) ceil (timeout * 1000) : -1;
    return timeout > 0 ? (int) ceil (timeout * 1000) + S_MARGIN_MS : -1;
}

static double
s_wall_clock (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

//  check: validates the config file here; no agent involved.
static int
s_check (const s_options_t *options)
{
    bool implicit;
    const char *file = options->args_count > 1 ? options->args [1]
                     : pm_client_config_file (options->config, &implicit);
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (file, err, sizeof err);
    pm_render_check (stdout, stderr, file, config, err, options->json);
    int code = config ? PM_EXIT_OK : PM_EXIT_USAGE;
    pm_config_destroy (&config);
    return code;
}

//  Every other command: one request, one reply, and for shutdown the
//  agent's exit.
static int
s_remote (const s_options_t *options, const s_command_t *command)
{
    pm_request_t *request = pm_request_new ((pm_cmd_t) command->cmd,
                                            (uint64_t) getpid ());
    double timeout = 0;
    int code = s_build (options, command, request, &timeout);
    if (code != 0) {
        pm_request_destroy (&request);
        return code;
    }
    if (request->cmd == PM_CMD_SHUTDOWN && !options->timeout)
        timeout = S_SHUTDOWN_TIMEOUT;

    char err [PM_PATH_MAX + 256];
    pm_client_t *client = pm_client_new (options->config, options->rundir,
                                         err, sizeof err);
    if (!client) {
        fprintf (stderr, "pmctl: %s\n", err);
        pm_request_destroy (&request);
        return PM_EXIT_USAGE;
    }
    if (pm_client_warning (client))
        fprintf (stderr, "pmctl: warning: %s (the agent is located anyway)\n",
                 pm_client_warning (client));

    long long started = pm_client_now_ms ();
    bool waits;
    int answer_ms = s_answer_ms (request, timeout, &waits);
    pm_reply_t *reply = NULL;
    char *frame = NULL;
    size_t size = 0;
    pm_call_t call = pm_client_call (client, request, answer_ms, &reply,
                                     &frame, &size, err, sizeof err);
    switch (call) {
        case PM_CALL_REPLY:
            break;
        case PM_CALL_NO_ANSWER:
            //  Past the agent's own timeout plus a margin it is a timeout;
            //  a command that should be answered at once is unreachable.
            if (waits) {
                fprintf (stderr, "pmctl: timed out: no answer from the "
                         "agent after %g s\n", answer_ms / 1000.0);
                code = PM_EXIT_TIMEOUT;
            }
            else {
                fprintf (stderr, "pmctl: %s\n", err);
                code = PM_EXIT_UNREACHABLE;
            }
            break;
        default:
            fprintf (stderr, "pmctl: %s\n", err);
            code = PM_EXIT_UNREACHABLE;
            break;
    }
    if (reply) {
        if (options->json) {
            char *json = pm_json_from_msgpack (frame, size);
            printf ("%s\n", json ? json : "null");
            free (json);
        }
        //  Someone else's shutdown is already under way: ours waits for
        //  the same end.
        if (request->cmd == PM_CMD_SHUTDOWN && !reply->ok
        &&  reply->err == PM_ERR_SHUTTING_DOWN)
            code = PM_EXIT_OK;
        else
            code = pm_render_reply (stdout, stderr, request, reply,
                                    s_wall_clock (), options->json);
    }
    if (request->cmd == PM_CMD_SHUTDOWN && reply && code == PM_EXIT_OK) {
        int left = -1;
        if (timeout > 0) {
            long long spent = pm_client_now_ms () - started;
            left = (int) ceil (timeout * 1000) - (int) spent;
            if (left < 0)
                left = 0;
        }
        fflush (stdout);
        if (pm_client_wait_exit (client, left) == 0) {
            if (!options->json)
                printf ("agent %s stopped\n", pm_client_name (client));
        }
        else {
            fprintf (stderr, "pmctl: timed out: agent %s still running "
                     "after %g s\n", pm_client_name (client), timeout);
            code = PM_EXIT_TIMEOUT;
        }
    }
    pm_reply_destroy (&reply);
    free (frame);
    pm_client_destroy (&client);
    pm_request_destroy (&request);
    return code;
}

int
main (int argc, char **argv)
{
    s_options_t options;
    int code = s_parse (argc, argv, &options);
    if (code == 0) {
        if (options.help) {
            s_usage (stdout);
        }
        else
        if (options.version)
            printf ("pmctl %s\n", PM_VERSION);
        else
        if (options.args_count == 0)
            code = s_usage_error ("no command given");
        else {
            const s_command_t *command = s_command_find (options.args [0]);
            if (!command)
                code = s_usage_error ("unknown command '%s'",
                                      options.args [0]);
            else
            if (command->cmd == -1) {
                if (options.args_count > 2)
                    code = s_usage_error ("check takes one FILE at most");
                else
                if (options.all || options.wait || options.timeout
                ||  options.with_dependents)
                    code = s_usage_error ("check takes no command options");
                else
                    code = s_check (&options);
            }
            else
                code = s_remote (&options, command);
        }
    }
    free (options.args);
    return code;
}
