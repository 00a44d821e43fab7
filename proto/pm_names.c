/*  pm_names.c - wire names of the protocol's enumerations (see pm_proto.h)

    Owns: the tables that map states, commands, waits, dependency
    conditions, error codes and log streams to the words PROTOCOL.md uses,
    and the signal names accepted on the wire and printed by the tools.

    Leaves to others: which value a message may carry where (pm_msg.c).
    No state; every returned name is a static string.
*/
#include "pm_proto.h"

#include <signal.h>
#include <string.h>

//  Looks name up in a table of count words; returns its index or -1.
static int
s_lookup (const char *const *table, size_t count, const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (table [i] && strcmp (table [i], name) == 0)
            return (int) i;
    return -1;
}

#define S_COUNT(table) (sizeof (table) / sizeof ((table) [0]))

/* ------------------------------------------------------------------ */

static const char *const s_states [] = {
    [PM_STATE_INACTIVE]  = "inactive",
    [PM_STATE_WAITING]   = "waiting",
    [PM_STATE_STARTING]  = "starting",
    [PM_STATE_RUNNING]   = "running",
    [PM_STATE_STOPPING]  = "stopping",
    [PM_STATE_STOPPED]   = "stopped",
    [PM_STATE_COMPLETED] = "completed",
    [PM_STATE_FAILED]    = "failed",
    [PM_STATE_BACKOFF]   = "backoff",
};

const char *
pm_state_name (pm_state_t state)
{
    if ((unsigned) state >= S_COUNT (s_states))
        return "?";
    return s_states [state];
}

int
pm_state_parse (const char *name, pm_state_t *state)
{
    int index = s_lookup (s_states, S_COUNT (s_states), name);
    if (index < 0)
        return -1;
    *state = (pm_state_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */

static const char *const s_cmds [] = {
    [PM_CMD_HELLO]    = "hello",
    [PM_CMD_STATUS]   = "status",
    [PM_CMD_START]    = "start",
    [PM_CMD_STOP]     = "stop",
    [PM_CMD_RESTART]  = "restart",
    [PM_CMD_SIGNAL]   = "signal",
    [PM_CMD_SHUTDOWN] = "shutdown",
    [PM_CMD_LOGS]     = "logs",
    [PM_CMD_RELOAD]   = "reload",
    [PM_CMD_LEASE]    = "lease",
    [PM_CMD_WAIT]     = "wait",
    [PM_CMD_AGENTS]   = "agents",
};

const char *
pm_cmd_name (pm_cmd_t cmd)
{
    if ((unsigned) cmd >= S_COUNT (s_cmds))
        return "?";
    return s_cmds [cmd];
}

int
pm_cmd_parse (const char *name, pm_cmd_t *cmd)
{
    int index = s_lookup (s_cmds, S_COUNT (s_cmds), name);
    if (index < 0)
        return -1;
    *cmd = (pm_cmd_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */

//  PM_WAIT_DEFAULT has a name for logs and messages but is never on the
//  wire, so the parser skips it.
static const char *const s_waits [] = {
    [PM_WAIT_DEFAULT] = "default",
    [PM_WAIT_NONE]    = "none",
    [PM_WAIT_STARTED] = "started",
    [PM_WAIT_RUNNING] = "running",
    [PM_WAIT_STOPPED] = "stopped",
};

const char *
pm_wait_name (pm_wait_t wait)
{
    if ((unsigned) wait >= S_COUNT (s_waits))
        return "?";
    return s_waits [wait];
}

int
pm_wait_parse (const char *name, pm_wait_t *wait)
{
    int index = s_lookup (s_waits, S_COUNT (s_waits), name);
    if (index <= (int) PM_WAIT_DEFAULT)
        return -1;
    *wait = (pm_wait_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */

static const char *const s_conds [] = {
    [PM_COND_STARTED]   = "started",
    [PM_COND_READY]     = "ready",
    [PM_COND_COMPLETED] = "completed",
};

const char *
pm_cond_name (pm_cond_t cond)
{
    if ((unsigned) cond >= S_COUNT (s_conds))
        return "?";
    return s_conds [cond];
}

int
pm_cond_parse (const char *name, pm_cond_t *cond)
{
    int index = s_lookup (s_conds, S_COUNT (s_conds), name);
    if (index < 0)
        return -1;
    *cond = (pm_cond_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */

//  PM_OK is named "ok" for logs; it is never an error code on the wire,
//  so the parser refuses it.
static const char *const s_errs [] = {
    [PM_OK]                  = "ok",
    [PM_ERR_BAD_REQUEST]     = "bad-request",
    [PM_ERR_TOO_LARGE]       = "too-large",
    [PM_ERR_BAD_VERSION]     = "bad-version",
    [PM_ERR_UNKNOWN_COMMAND] = "unknown-command",
    [PM_ERR_UNKNOWN_SERVICE] = "unknown-service",
    [PM_ERR_NOT_RUNNING]     = "not-running",
    [PM_ERR_FAILED]          = "failed",
    [PM_ERR_TIMEOUT]         = "timeout",
    [PM_ERR_SHUTTING_DOWN]   = "shutting-down",
    [PM_ERR_BAD_SIGNAL]      = "bad-signal",
    [PM_ERR_BAD_CONFIG]      = "bad-config",
    [PM_ERR_BUSY]            = "busy",
    [PM_ERR_INTERNAL]        = "internal",
    [PM_ERR_UNAUTHORISED]    = "unauthorised",
    [PM_ERR_UNKNOWN_AGENT]   = "unknown-agent",
    [PM_ERR_AGENT_UNREACHABLE] = "agent-unreachable",
    [PM_ERR_AMBIGUOUS]       = "ambiguous",
};

const char *
pm_err_name (pm_err_t err)
{
    if ((unsigned) err >= S_COUNT (s_errs))
        return "?";
    return s_errs [err];
}

int
pm_err_parse (const char *name, pm_err_t *err)
{
    int index = s_lookup (s_errs, S_COUNT (s_errs), name);
    if (index <= (int) PM_OK)
        return -1;
    *err = (pm_err_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */

static const char *const s_streams [] = {
    [PM_STREAM_OUT] = "out",
    [PM_STREAM_ERR] = "err",
};

const char *
pm_stream_name (pm_stream_t stream)
{
    if ((unsigned) stream >= S_COUNT (s_streams))
        return "?";
    return s_streams [stream];
}

int
pm_stream_parse (const char *name, pm_stream_t *stream)
{
    int index = s_lookup (s_streams, S_COUNT (s_streams), name);
    if (index < 0)
        return -1;
    *stream = (pm_stream_t) index;
    return 0;
}

/* ------------------------------------------------------------------ */
/*  Signals                                                            */
/* ------------------------------------------------------------------ */

//  The highest signal number accepted in decimal form: SIGRTMAX on Linux.
//  Real-time signals have no names here; they travel as numbers.
#define S_SIGNAL_MAX 64

typedef struct {
    const char *name;         //  without the "SIG" prefix
    int signum;
} s_signal_t;

//  Canonical names first: pm_signal_name returns the first match, so the
//  aliases (IOT, POLL, CLD) only parse.
static const s_signal_t s_signals [] = {
    { "HUP",    SIGHUP },
    { "INT",    SIGINT },
    { "QUIT",   SIGQUIT },
    { "ILL",    SIGILL },
    { "TRAP",   SIGTRAP },
    { "ABRT",   SIGABRT },
    { "BUS",    SIGBUS },
    { "FPE",    SIGFPE },
    { "KILL",   SIGKILL },
    { "USR1",   SIGUSR1 },
    { "SEGV",   SIGSEGV },
    { "USR2",   SIGUSR2 },
    { "PIPE",   SIGPIPE },
    { "ALRM",   SIGALRM },
    { "TERM",   SIGTERM },
#ifdef SIGSTKFLT
    { "STKFLT", SIGSTKFLT },
#endif
    { "CHLD",   SIGCHLD },
    { "CONT",   SIGCONT },
    { "STOP",   SIGSTOP },
    { "TSTP",   SIGTSTP },
    { "TTIN",   SIGTTIN },
    { "TTOU",   SIGTTOU },
    { "URG",    SIGURG },
    { "XCPU",   SIGXCPU },
    { "XFSZ",   SIGXFSZ },
    { "VTALRM", SIGVTALRM },
    { "PROF",   SIGPROF },
    { "WINCH",  SIGWINCH },
    { "IO",     SIGIO },
#ifdef SIGPWR
    { "PWR",    SIGPWR },
#endif
    { "SYS",    SIGSYS },
    //  Aliases
    { "IOT",    SIGABRT },
#ifdef SIGPOLL
    { "POLL",   SIGPOLL },
#endif
#ifdef SIGCLD
    { "CLD",    SIGCHLD },
#endif
};

int
pm_signal_parse (const char *text, int *signum)
{
    if (!text || !*text)
        return -1;
    //  A decimal number: digits only, no sign, no leading zero.
    if (text [0] >= '0' && text [0] <= '9') {
        if (text [0] == '0')
            return -1;
        int value = 0;
        for (const char *p = text; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            value = value * 10 + (*p - '0');
            if (value > S_SIGNAL_MAX)
                return -1;
        }
        *signum = value;
        return 0;
    }
    //  A name, upper case, with or without the SIG prefix.
    const char *bare = strncmp (text, "SIG", 3) == 0 ? text + 3 : text;
    for (size_t i = 0; i < S_COUNT (s_signals); i++)
        if (strcmp (s_signals [i].name, bare) == 0) {
            *signum = s_signals [i].signum;
            return 0;
        }
    return -1;
}

const char *
pm_signal_name (int signum)
{
    //  One static string per table entry, with the prefix, built once at
    //  compile time rather than into a shared buffer.
    static const char *const full [] = {
        [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT",
        [SIGILL] = "SIGILL",   [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",   [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
#ifdef SIGSTKFLT
        [SIGSTKFLT] = "SIGSTKFLT",
#endif
        [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",
        [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",
        [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
        [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",
#ifdef SIGPWR
        [SIGPWR] = "SIGPWR",
#endif
        [SIGSYS] = "SIGSYS",
    };
    if (signum <= 0 || (size_t) signum >= S_COUNT (full))
        return NULL;
    return full [signum];
}
