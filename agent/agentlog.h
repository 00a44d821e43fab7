/*  agentlog.h - the agent's own log

    Owns: the agent's record of its decisions, errors and the commands it
    receives, kept apart from the services' output.  Lines go to stderr
    and, once a file is opened, to that file too, as text
    ("2026-11-26T10:00:00.123Z pmd[42] info: started web (pid 43)") or as
    JSON objects ({"ts", "level", "agent", "message"}).

    Process-wide (one agent per process), so every module can log without
    passing a handle around.
*/
#ifndef PM_AGENTLOG_H
#define PM_AGENTLOG_H

#include <stdbool.h>

typedef enum {
    PM_LOG_DEBUG = 0,
    PM_LOG_INFO,
    PM_LOG_WARN,
    PM_LOG_ERROR
} pm_log_level_t;

/*  Sets the agent name shown in lines, the format (json or text), and the
    lowest level written. */
void pm_log_setup (const char *agent, bool json, pm_log_level_t level);
/*  The program named in text lines: "pmd" unless set (a static string). */
void pm_log_set_program (const char *program);

/*  Also append to path (created 0600).  Returns 0 or -1 (errno set). */
int pm_log_open_file (const char *path);

/*  Stop writing to stderr (a daemon has none). */
void pm_log_quiet_stderr (bool quiet);

void pm_log_close (void);

void pm_log (pm_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#define pm_log_debug(...) pm_log (PM_LOG_DEBUG, __VA_ARGS__)
#define pm_log_info(...)  pm_log (PM_LOG_INFO, __VA_ARGS__)
#define pm_log_warn(...)  pm_log (PM_LOG_WARN, __VA_ARGS__)
#define pm_log_error(...) pm_log (PM_LOG_ERROR, __VA_ARGS__)

#endif
