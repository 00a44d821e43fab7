/*  main.c - pmctl: options and dispatch

    Owns: the command line (getopt_long; options may come before or after
    the command word), which command takes which option, the request of
    each single-request command, and the usage text with its exit code
    table.

    Leaves to others: single requests and their output (remote.c,
    render.c), `up`, `down`, `is-running` and `lease` (up.c), `logs`
    (logs.c), `events` (events.c), finding and talking to the agent
    (client.c), config validation (libpmconfig in schema/, for `check`).
*/
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "config.h"
#include "events.h"
#include "keys.h"
#include "logs.h"
#include "pm_proto.h"
#include "pmctl.h"
#include "remote.h"
#include "render.h"
#include "up.h"

#ifndef PM_VERSION
#   define PM_VERSION "0.0.0"
#endif

//  shutdown's and down's default bound on the whole thing.
#define S_SHUTDOWN_TIMEOUT 60.0
//  Largest --timeout: a week, so milliseconds fit an int.
#define S_TIMEOUT_MAX (7 * 86400.0)
//  Largest -n: more than any ring holds (log_ring is at most 10 million).
#define S_LINES_MAX 100000000ULL
//  -n when not given.
#define S_LINES_DEFAULT 10

//  What each command accepts.
#define S_NAMES           0x0001  //  service names
#define S_ALL             0x0002  //  --all, and names or --all required
#define S_WAIT            0x0004  //  --wait
#define S_TIMEOUT         0x0008  //  --timeout
#define S_DEPENDENTS      0x0010  //  --with-dependents
#define S_SIGNAL          0x0020  //  a signal before the names
#define S_FILE            0x0040  //  one optional FILE (check)
#define S_FOLLOW          0x0080  //  -f
#define S_LINES           0x0100  //  -n N
#define S_COLOR           0x0200  //  --no-color
#define S_FOR             0x0400  //  --for STATE
#define S_LEASE           0x0800  //  --lease PID
#define S_QUIET           0x1000  //  -q
#define S_PID             0x2000  //  one PID operand (lease)
#define S_LIVE            0x4000  //  --live (status)
#define S_LOCAL           0x8000  //  on this host's agent only (no --connect)

//  How a command runs.
typedef enum {
    S_RUN_REMOTE = 0,             //  one request (remote.c)
    S_RUN_CHECK,                  //  local config check
    S_RUN_LOGS,
    S_RUN_EVENTS,
    S_RUN_UP,
    S_RUN_DOWN,
    S_RUN_IS_RUNNING,
    S_RUN_LEASE,
    S_RUN_KEYGEN
} s_run_t;

typedef struct {
    const char *word;             //  as typed
    s_run_t run;
    int cmd;                      //  pm_cmd_t for S_RUN_REMOTE, else -1
    unsigned takes;               //  S_ flags
    const char *waits;            //  --wait values accepted, "|"-separated
} s_command_t;

static const s_command_t s_commands [] = {
    { "status",   S_RUN_REMOTE, PM_CMD_STATUS,   S_NAMES | S_LIVE, NULL },
    { "ps",       S_RUN_REMOTE, PM_CMD_STATUS,   S_NAMES | S_LIVE, NULL },
    { "start",    S_RUN_REMOTE, PM_CMD_START,    S_NAMES | S_ALL | S_WAIT
                                               | S_TIMEOUT,
                  "none|started|running" },
    { "stop",     S_RUN_REMOTE, PM_CMD_STOP,     S_NAMES | S_ALL | S_WAIT
                                               | S_TIMEOUT | S_DEPENDENTS,
                  "none|stopped" },
    { "restart",  S_RUN_REMOTE, PM_CMD_RESTART,  S_NAMES | S_ALL | S_WAIT
                                               | S_TIMEOUT | S_DEPENDENTS,
                  "none|started|running" },
    { "signal",   S_RUN_REMOTE, PM_CMD_SIGNAL,   S_NAMES | S_ALL | S_SIGNAL,
                  NULL },
    { "wait",     S_RUN_REMOTE, PM_CMD_WAIT,     S_NAMES | S_ALL | S_FOR
                                               | S_TIMEOUT, NULL },
    { "check",    S_RUN_CHECK,  -1,              S_FILE, NULL },
    { "keygen",   S_RUN_KEYGEN, -1,              S_FILE, NULL },
    { "ping",     S_RUN_REMOTE, PM_CMD_HELLO,    0, NULL },
    { "agents",   S_RUN_REMOTE, PM_CMD_AGENTS,   0, NULL },
    { "reload",   S_RUN_REMOTE, PM_CMD_RELOAD,   S_TIMEOUT, NULL },
    { "shutdown", S_RUN_REMOTE, PM_CMD_SHUTDOWN, S_TIMEOUT, NULL },
    { "logs",     S_RUN_LOGS,   -1,              S_NAMES | S_FOLLOW | S_LINES
                                               | S_COLOR, NULL },
    { "events",   S_RUN_EVENTS, -1,              S_NAMES | S_FOLLOW, NULL },
    { "up",       S_RUN_UP,     -1,              S_NAMES | S_LEASE | S_LOCAL
                                               | S_TIMEOUT, NULL },
    { "down",     S_RUN_DOWN,   -1,              S_TIMEOUT | S_LOCAL, NULL },
    { "is-running", S_RUN_IS_RUNNING, -1,        S_QUIET | S_LOCAL, NULL },
    { "lease",    S_RUN_LEASE,  -1,              S_PID | S_LOCAL, NULL },
};

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
"  status [--live] [NAME...] a table of services: NAME STATE PID UPTIME\n"
"                            RESTARTS EXIT ERROR (alias: ps); read from\n"
"                            the agent's status snapshot file, or asked\n"
"                            of the agent with --live (same output)\n"
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
"  wait --for STATE [--timeout S] (NAME...|--all)\n"
"                            wait, without changing anything, until every\n"
"                            target is in STATE: running (or ready: the\n"
"                            same), stopped, completed or failed (backoff\n"
"                            counts as failed); exit 1 when a target cannot\n"
"                            get there without a command, 4 on timeout\n"
"  logs [-f] [-n N] [--no-color] [NAME...]\n"
"                            the last N lines (default 10) of the named\n"
"                            services, or of all; with -f, then every new\n"
"                            line until Ctrl-C (see \"logs\" below)\n"
"  events [-f] [NAME...]     each service's state, with the seq of its last\n"
"                            transition; with -f, then every transition\n"
"                            (see \"events\" below)\n"
"  up [--lease PID] [--timeout S] [NAME...]\n"
"                            start the agent in the background if none runs\n"
"                            for the config (pmd --daemon), then start the\n"
"                            named services, or every autostart service,\n"
"                            and wait until they are running (a one-shot:\n"
"                            completed); with an agent already running,\n"
"                            --lease PID adds a lease (see \"up\" below)\n"
"  reload [--timeout S]      re-read the config file and apply the\n"
"                            difference: added services start, removed ones\n"
"                            stop, changed ones (and their dependents)\n"
"                            restart, the rest keep their pid; prints what\n"
"                            happened to each and waits until what it\n"
"                            started runs; an invalid file changes nothing\n"
"                            (exit 2)\n"
"  down [--timeout S]        like shutdown; also succeeds (exit 0, \"no agent\n"
"                            running\") when no agent runs\n"
"  is-running [-q]           exit 0 and \"running (pid N)\" when an agent\n"
"                            holds this config's lock, else exit 1 and \"not\n"
"                            running\"; sends nothing to the agent\n"
"  lease PID                 tie the agent's life to process PID too: when\n"
"                            the last leased process exits, the agent shuts\n"
"                            down cleanly; prints the leases\n"
"  agents                    through a broker: its agents, connected or\n"
"                            unreachable (since when), address, version\n"
"  check [FILE]              validate the config file here, without an agent\n"
"  keygen PATH               write a new CURVE key pair: PATH (public, 0644)\n"
"                            and PATH_secret (0600); never replaces a file;\n"
"                            prints the public key\n"
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
"                            (logs, events: one object per line)\n"
"      --all                 every service (start, stop, restart, signal,\n"
"                            wait)\n"
"      --wait MODE           what to wait for: none, started, running,\n"
"                            stopped (start, stop, restart)\n"
"      --for STATE           the state wait waits for\n"
"      --timeout S           give up after S seconds (0: no limit, the\n"
"                            default; shutdown and down: 60)\n"
"      --with-dependents     also stop or restart what depends on the\n"
"                            named services, in dependency order\n"
"  -f, --follow              logs, events: keep printing until Ctrl-C or\n"
"                            the agent's end\n"
"  -n, --lines N             logs: how many recent lines per service\n"
"      --no-color            logs: no colours even on a terminal (also when\n"
"                            $NO_COLOR is set)\n"
"      --lease PID           up: lease the agent to PID\n"
"      --connect ENDPOINT    the agent's (or broker's) control endpoint,\n"
"                            e.g. tcp://box1:7710, instead of -c (also\n"
"                            $PMBUS_CONNECT); TCP needs the two keys below\n"
"      --server-key FILE     the server's public certificate\n"
"                            ($PMBUS_SERVER_KEY)\n"
"      --key FILE_secret     this client's secret certificate ($PMBUS_KEY)\n"
"      --agent NAME          through a broker: the agent ping, reload,\n"
"                            shutdown and lease are for; for status, logs,\n"
"                            events and --all, only these agents\n"
"                            (repeatable)\n"
"  -q, --quiet               is-running: print nothing\n"
"      --live                status: ask the agent over its socket instead\n"
"                            of reading its status snapshot file\n"
"  -h, --help                this text\n"
"      --version             pmctl's version\n"
"\n"
"logs:\n"
"  Lines are written as the service wrote them (bytes, unchanged).  With\n"
"  several services (none named, or more than one named) each line starts\n"
"  with the service's name padded to the longest, then \" | \" for standard\n"
"  output or \" ! \" for standard error; on a terminal the name has a\n"
"  colour of its own and the \"!\" is red.  With one service, lines are\n"
"  printed bare.  Lines of several services are merged by time, each\n"
"  service's own lines always in order.  A line longer than the agent's\n"
"  log_line_max comes in pieces, printed joined.  Lines the agent no\n"
"  longer holds in memory are reported on stderr, never skipped silently:\n"
"    -- web: 6 lines (5..10) are no longer in memory (see the log file) --\n"
"  -f subscribes first, then fetches the last N lines, then prints each\n"
"  new line exactly once and in order: lines missed on the way (joining\n"
"  late, a slow terminal) are fetched again from the agent.  It ends with\n"
"  exit 0 on Ctrl-C (SIGINT) or SIGTERM, or once the agent has shut down\n"
"  (after its last lines); exit 3 if the agent vanished without shutting\n"
"  down (killed).\n"
"  --json: one object per line: {\"service\", \"seq\", \"ts\", \"stream\",\n"
"  \"line\", \"partial\": true (only for a piece)}.  \"line\" is a JSON\n"
"  string; in a line that is not valid UTF-8 each invalid byte is \\ufffd\n"
"  and \"line_base64\" holds the exact bytes.  Lost lines are an object\n"
"  {\"service\", \"gone\": [first, last]} on stdout instead of the stderr\n"
"  message.\n"
"\n"
"events:\n"
"  Without -f, one line per service from its status:\n"
"    TIME NAME STATE (pid N) [ERROR] seq=S\n"
"  TIME is when it entered STATE; S the seq of that transition.  With -f,\n"
"  the same lines, then one line per transition:\n"
"    TIME NAME OLD -> NEW (pid N) [ERROR] seq=S\n"
"  (pid only while there is a process, ERROR only for failed and\n"
"  backoff).  Transitions cannot be fetched again: a gap in seq is\n"
"  reported on stderr (\"-- web: 2 transitions missed --\") followed by\n"
"  the service's state now.  Ends as logs -f does.  --json: the state\n"
"  event bodies as JSON, after one {\"kind\": \"status\", \"service\",\n"
"  \"seq\", \"ts\", \"state\", \"record\"} per service; a gap is\n"
"  {\"service\", \"missed\": N}.\n"
"\n"
"up:\n"
"  finds pmd next to pmctl (../agent/pmd in a build tree, then ./pmd),\n"
"  else at $PMD, else on $PATH, and runs pmd --daemon, which returns once\n"
"  the agent accepts commands: right after up, every command works.  An\n"
"  invalid config is pmd's own message and exit 2; an agent that was\n"
"  started meanwhile by someone else is used as is.  Services a fresh\n"
"  agent starts by itself (autostart) are only waited for, never started\n"
"  a second time: running, or completed for a one-shot, is success; one\n"
"  that fails, or gives up after its restarts, is exit 1.  With an agent\n"
"  already running, or for services that are not autostart, up sends\n"
"  start (which runs a completed one-shot again).\n"
"\n"
"exit codes:\n"
"  0  success, notes such as already-running included\n"
"  1  a target failed: the agent answered failed or not-running (e.g. a\n"
"     signal to a stopped service), a service exited while starting, a\n"
"     wait cannot be met, a lease was refused, the agent could not be\n"
"     started (up); is-running: no agent running\n"
"  2  usage error, unknown service, invalid config (check, up), request\n"
"     refused (bad-request, bad-signal)\n"
"  3  agent not reachable: none running, not answering, or exited\n"
"     before answering; logs -f and events -f: the agent vanished\n"
"     without shutting down\n"
"  4  timeout: a target did not reach its state in time\n");
}

int
pm_cli_usage_error (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "pmctl: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, " (see pmctl --help)\n");
    va_end (args);
    return PM_EXIT_USAGE;
}

int
pm_cli_parse_pid (const char *text, long *pid)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || *end || value < 1 || value > INT_MAX)
        return -1;
    *pid = value;
    return 0;
}

//  Parses argv into options.  Returns 0, or an exit code after a usage
//  error.  Operands are kept in order, whatever the options between
//  them, and whatever POSIXLY_CORRECT says ("-" in optstring).
static int
s_parse (int argc, char **argv, pm_cli_t *options)
{
    enum { O_JSON = 256, O_ALL, O_WAIT, O_TIMEOUT, O_DEPENDENTS, O_VERSION,
           O_NO_COLOR, O_FOR, O_LEASE, O_LIVE, O_CONNECT, O_SERVER_KEY,
           O_KEY, O_AGENT };
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
        { "follow",          no_argument,       NULL, 'f' },
        { "lines",           required_argument, NULL, 'n' },
        { "no-color",        no_argument,       NULL, O_NO_COLOR },
        { "for",             required_argument, NULL, O_FOR },
        { "lease",           required_argument, NULL, O_LEASE },
        { "quiet",           no_argument,       NULL, 'q' },
        { "live",            no_argument,       NULL, O_LIVE },
        { "connect",         required_argument, NULL, O_CONNECT },
        { "server-key",      required_argument, NULL, O_SERVER_KEY },
        { "key",             required_argument, NULL, O_KEY },
        { "agent",           required_argument, NULL, O_AGENT },
        { NULL, 0, NULL, 0 }
    };
    memset (options, 0, sizeof *options);
    options->args = calloc ((size_t) argc + 1, sizeof (char *));
    if (!options->args)
        abort ();
    opterr = 0;
    for (;;) {
        int last = optind;
        int c = getopt_long (argc, argv, "-:c:s:hfn:q", longs, NULL);
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
            case 'f':
                options->follow = true;
                break;
            case 'n':
                options->lines = optarg;
                break;
            case 'q':
                options->quiet = true;
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
            case O_NO_COLOR:
                options->no_color = true;
                break;
            case O_FOR:
                options->wait_for = optarg;
                break;
            case O_LEASE:
                options->lease = optarg;
                break;
            case O_LIVE:
                options->live = true;
                break;
            case O_CONNECT:
                options->connect = optarg;
                break;
            case O_SERVER_KEY:
                options->server_key = optarg;
                break;
            case O_KEY:
                options->key = optarg;
                break;
            case O_AGENT:
                if (!options->agents)
                    options->agents = calloc ((size_t) argc + 1,
                                              sizeof (char *));
                if (!options->agents)
                    abort ();
                options->agents [options->agents_count++] = optarg;
                break;
            case ':':
                return pm_cli_usage_error ("option %s needs a value",
                                           argv [last]);
            default:
                //  getopt sets optopt for a known long option given a
                //  value it does not take ("--json=1").
                if (optopt && strncmp (argv [last], "--", 2) == 0)
                    return pm_cli_usage_error (
                        "option %.*s takes no value",
                        (int) strcspn (argv [last], "="), argv [last]);
                if (optopt >= '0' && optopt <= '9')
                    return pm_cli_usage_error (
                        "unknown option -%c; a signal is written without a "
                        "dash: 'signal 9' or 'signal KILL'", optopt);
                if (optopt)
                    return pm_cli_usage_error ("unknown option -%c", optopt);
                return pm_cli_usage_error ("unknown option %s", argv [last]);
        }
    }
    //  After "--", getopt leaves the rest as operands.
    while (optind < argc)
        options->args [options->args_count++] = argv [optind++];
    //  The environment fills in what the command line did not say.
    struct { const char **option; const char *name; } env [] = {
        { &options->connect, "PMBUS_CONNECT" },
        { &options->server_key, "PMBUS_SERVER_KEY" },
        { &options->key, "PMBUS_KEY" },
    };
    //  A -c or -s on the command line beats $PMBUS_CONNECT.
    bool named = options->config || options->rundir;
    for (size_t i = 0; i < sizeof env / sizeof env [0]; i++)
        if (!*env [i].option && !(i == 0 && named)) {
            const char *value = getenv (env [i].name);
            *env [i].option = value && *value ? value : NULL;
        }
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

//  Checks that command takes every option given, and parses --timeout.
//  Returns 0, or an exit code after a usage error.
static int
s_check_options (pm_cli_t *options, const s_command_t *command)
{
    const char *word = command->word;
    struct { bool given; unsigned flag; const char *name; } checks [] = {
        { options->all,             S_ALL,        "--all" },
        { options->wait != NULL,    S_WAIT,       "--wait" },
        { options->timeout != NULL, S_TIMEOUT,    "--timeout" },
        { options->with_dependents, S_DEPENDENTS, "--with-dependents" },
        { options->follow,          S_FOLLOW,     "-f (--follow)" },
        { options->lines != NULL,   S_LINES,      "-n (--lines)" },
        { options->no_color,        S_COLOR,      "--no-color" },
        { options->wait_for != NULL, S_FOR,       "--for" },
        { options->lease != NULL,   S_LEASE,      "--lease" },
        { options->quiet,           S_QUIET,      "-q (--quiet)" },
        { options->live,            S_LIVE,       "--live" },
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks [0]; i++)
        if (checks [i].given && !(command->takes & checks [i].flag))
            return pm_cli_usage_error ("%s does not take %s", word,
                                       checks [i].name);
    if (options->connect && (command->takes & S_LOCAL))
        return pm_cli_usage_error ("%s works on an agent of this host (-c "
                                   "FILE), not through --connect", word);
    if (options->connect && (options->config || options->rundir))
        return pm_cli_usage_error ("--connect names the agent: give it "
                                   "without -c or -s");
    options->timeout_s = 0;
    if (options->timeout) {
        char *end;
        errno = 0;
        double value = strtod (options->timeout, &end);
        if (errno || end == options->timeout || *end || !isfinite (value)
        ||  value < 0 || value > S_TIMEOUT_MAX)
            return pm_cli_usage_error ("bad --timeout '%s': expected "
                                       "seconds, e.g. 30 or 1.5",
                                       options->timeout);
        options->timeout_s = value;
    }
    int count = options->args_count - 1;
    if (command->takes & S_FILE) {
        if (count > 1)
            return pm_cli_usage_error ("%s takes one FILE at most", word);
    }
    else
    if (command->takes & S_PID) {
        long pid;
        if (count != 1)
            return pm_cli_usage_error ("%s needs one process id", word);
        if (pm_cli_parse_pid (options->args [1], &pid) == -1)
            return pm_cli_usage_error ("bad process id '%s'",
                                       options->args [1]);
    }
    else
    if (!(command->takes & (S_NAMES | S_SIGNAL)) && count > 0)
        return pm_cli_usage_error ("%s takes no arguments, got '%s'", word,
                                   options->args [1]);
    if (options->lease) {
        long pid;
        if (pm_cli_parse_pid (options->lease, &pid) == -1)
            return pm_cli_usage_error ("bad --lease '%s': expected a "
                                       "process id", options->lease);
    }
    return 0;
}

//  Fills request from the options of a single-request command (names,
//  all, wait, timeout, with_dependents, signal, for).  Returns 0, or an
//  exit code after a usage error.
static int
s_build (const pm_cli_t *options, const s_command_t *command,
         pm_request_t *request)
{
    const char *word = command->word;
    if (command->cmd == PM_CMD_START || command->cmd == PM_CMD_STOP
    ||  command->cmd == PM_CMD_RESTART) {
        //  Blocking is the default, and pmctl says so in the request.
        const char *wait = options->wait ? options->wait
                         : command->cmd == PM_CMD_STOP ? "stopped"
                                                       : "running";
        if (!s_one_of (wait, command->waits)
        ||  pm_wait_parse (wait, &request->wait) == -1)
            return pm_cli_usage_error ("bad --wait '%s' for %s: expected %s",
                                       wait, word, command->waits);
        request->timeout = options->timeout_s;
        request->with_dependents = options->with_dependents;
    }
    if (command->cmd == PM_CMD_WAIT) {
        const char *states = "running|ready|stopped|completed|failed";
        if (!options->wait_for)
            return pm_cli_usage_error ("wait needs --for %s", states);
        if (!s_one_of (options->wait_for, states))
            return pm_cli_usage_error ("bad --for '%s': expected %s",
                                       options->wait_for, states);
        if (strcmp (options->wait_for, "ready") == 0)
            request->wait_for = PM_STATE_RUNNING;
        else
            pm_state_parse (options->wait_for, &request->wait_for);
        request->timeout = options->timeout_s;
    }

    char **operands = options->args + 1;
    int count = options->args_count - 1;
    if (command->takes & S_SIGNAL) {
        if (count == 0)
            return pm_cli_usage_error ("%s needs a signal, then service "
                                       "names or --all", word);
        if (pm_signal_parse (operands [0], &request->signum) == -1)
            return pm_cli_usage_error ("unknown signal '%s'", operands [0]);
        operands++;
        count--;
    }
    if (!(command->takes & S_NAMES))
        return 0;
    if (command->takes & S_ALL) {
        if (count > 0 && options->all)
            return pm_cli_usage_error ("%s: give service names or --all, "
                                       "not both", word);
        if (count == 0 && !options->all)
            return pm_cli_usage_error ("%s needs service names or --all",
                                       word);
        request->all = options->all;
    }
    for (int i = 0; i < count; i++)
        if (pm_request_add_name (request, operands [i]) == -1)
            return pm_cli_usage_error ("bad service name '%s'", operands [i]);
    return 0;
}

//  check: validates the config file here; no agent involved.
static int
s_check (const pm_cli_t *options)
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

//  A single-request command: build, send, render.
static int
s_remote (const pm_cli_t *options, const s_command_t *command)
{
    pm_request_t *request = pm_request_new ((pm_cmd_t) command->cmd, 0);
    int code = s_build (options, command, request);
    if (code == 0)
        code = pm_remote_add_agents (options, request);
    if (code == 0) {
        double timeout = options->timeout_s;
        if (request->cmd == PM_CMD_SHUTDOWN && !options->timeout)
            timeout = S_SHUTDOWN_TIMEOUT;
        pm_client_t *client = pm_remote_client (options, true);
        if (client)
            code = pm_remote_run (options, client, request, timeout, 0);
        else
            code = PM_EXIT_USAGE;
        pm_client_destroy (&client);
    }
    pm_request_destroy (&request);
    return code;
}

//  Checks the operands of logs and events: service names.
static int
s_check_names (const pm_cli_t *options)
{
    for (int i = 1; i < options->args_count; i++) {
        size_t len = strlen (options->args [i]);
        if (len == 0 || len > PM_TARGET_MAX
        ||  strchr (options->args [i], '/'))
            return pm_cli_usage_error ("bad service name '%s'",
                                       options->args [i]);
    }
    return 0;
}

//  logs: parses -n.
static int
s_logs (const pm_cli_t *options)
{
    uint64_t lines = S_LINES_DEFAULT;
    if (options->lines) {
        const char *text = options->lines;
        char *end;
        errno = 0;
        unsigned long long value = strtoull (text, &end, 10);
        if (*text < '0' || *text > '9' || errno || *end
        ||  value > S_LINES_MAX)
            return pm_cli_usage_error ("bad -n '%s': expected a number of "
                                       "lines, 0 or more", text);
        lines = value;
    }
    int code = s_check_names (options);
    if (code)
        return code;
    return pm_logs_run (options, options->args + 1, options->args_count - 1,
                        lines);
}

static int
s_dispatch (pm_cli_t *options)
{
    const s_command_t *command = s_command_find (options->args [0]);
    if (!command)
        return pm_cli_usage_error ("unknown command '%s'", options->args [0]);
    int code = s_check_options (options, command);
    if (code)
        return code;
    double down_timeout = options->timeout ? options->timeout_s
                                           : S_SHUTDOWN_TIMEOUT;
    switch (command->run) {
        case S_RUN_REMOTE:
            return s_remote (options, command);
        case S_RUN_CHECK:
            return s_check (options);
        case S_RUN_KEYGEN:
            if (options->args_count != 2)
                return pm_cli_usage_error ("keygen needs one PATH: it writes "
                                           "PATH and PATH_secret");
            return pm_keys_generate (options->args [1]);
        case S_RUN_LOGS:
            return s_logs (options);
        case S_RUN_EVENTS:
            code = s_check_names (options);
            return code ? code
                 : pm_events_run (options, options->args + 1,
                                  options->args_count - 1);
        case S_RUN_UP:
            code = s_check_names (options);
            return code ? code
                 : pm_up_run (options, options->args + 1,
                              options->args_count - 1);
        case S_RUN_DOWN:
            return pm_up_down (options, down_timeout);
        case S_RUN_IS_RUNNING:
            return pm_up_is_running (options);
        case S_RUN_LEASE:
            return pm_up_lease (options, options->args [1]);
    }
    return PM_EXIT_USAGE;
}

int
main (int argc, char **argv)
{
    pm_cli_t options;
    int code = s_parse (argc, argv, &options);
    if (code == 0) {
        if (options.help)
            s_usage (stdout);
        else
        if (options.version)
            printf ("pmctl %s\n", PM_VERSION);
        else
        if (options.args_count == 0)
            code = pm_cli_usage_error ("no command given");
        else
            code = s_dispatch (&options);
    }
    free (options.args);
    free (options.agents);
    return code;
}
