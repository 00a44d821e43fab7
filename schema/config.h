/*  config.h - the configuration file, read into validated plain structs

    Owns: reading a libconfig file, checking every key, type and value,
    resolving relative paths against the config file's directory,
    resolving the hosts of tcp and http probes to addresses (once, here,
    so the agent's loop never waits on a name lookup; a reload loads
    again and so resolves again), and the dependency graph checks
    (unknown dependency, cycle) with the start order.  Every error names
    the file, the line and the key.

    Leaves to others: what the settings mean at run time (supervisor,
    spawn, logcap).  Part of libpmconfig (schema/), which pmd, `pmctl
    check` and later pmbroker link; it includes nothing of the agent.
*/
#ifndef PM_CONFIG_H
#define PM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "pm_proto.h"
#include "pm_rundir.h"

#define PM_CONFIG_ERR_MAX 1024

typedef enum {
    PM_LOG_TEXT = 0,
    PM_LOG_JSON
} pm_log_format_t;

typedef enum {
    PM_RESTART_NO = 0,
    PM_RESTART_ON_FAILURE,
    PM_RESTART_ALWAYS
} pm_restart_t;

/*  How a service's output is kept.  The agent group's values are the
    defaults; a service may set any of them for itself. */
typedef struct {
    pm_log_format_t format;   /* "log_format": text (default) or json */
    bool timestamps;          /* "log_timestamps": prefix text lines with the time */
    uint64_t max_size;        /* "log_max_size" bytes before rotation, 0 = never
                                 (default 10 MiB; "512K", "10M", "1G" accepted) */
    unsigned backups;         /* "log_backups": rotated files kept (default 3) */
    size_t line_max;          /* "log_line_max": longer lines are cut (default 64 KiB, at most 256 KiB) */
    size_t ring;              /* "log_ring": lines kept in memory for replay (default 10000) */
    size_t ring_bytes;        /* "log_ring_bytes": and at most this many bytes (default 16 MiB) */
} pm_config_log_t;

#define PM_LOG_MAX_SIZE_DEFAULT  (10u * 1024 * 1024)
#define PM_LOG_BACKUPS_DEFAULT   3
#define PM_LOG_LINE_MAX_DEFAULT  (64u * 1024)
#define PM_LOG_RING_DEFAULT      10000
#define PM_LOG_RING_BYTES_DEFAULT (16u * 1024 * 1024)

/*  A readiness ("ready") or liveness ("alive") probe. */
typedef enum {
    PM_PROBE_NONE = 0,
    PM_PROBE_EXEC,            /* exec = "command": exit 0 passes */
    PM_PROBE_TCP,             /* tcp = "host:port": a connection is accepted */
    PM_PROBE_HTTP,            /* http = "http://host:port/path": a 2xx answer */
    PM_PROBE_LOG,             /* log = "regex": a line of output matches (ready only) */
    PM_PROBE_NOTIFY_FD        /* notify_fd = N: the service writes a newline to fd N (ready only) */
} pm_probe_kind_t;

typedef struct {
    pm_probe_kind_t kind;
    char *command;            /* exec */
    char *host;               /* tcp, http: numeric address or name, as written */
    int port;                 /* tcp, http */
    struct sockaddr_storage addr; /* tcp, http: host and port, resolved at load */
    socklen_t addrlen;        /* tcp, http: the size of addr in use */
    char *path;               /* http: path and query, from '/' */
    char *regex;              /* log: POSIX extended regular expression */
    int notify_fd;            /* notify_fd: 3..255 */
    double initial_delay;     /* "initial_delay" before the first attempt, default 0 */
    double interval;          /* "interval" between attempts, default 1 s (ready), 10 s (alive) */
    double timeout;           /* "timeout" of one attempt, default 5 s */
    double deadline;          /* ready: "deadline" for the whole, default 60 s, 0 = none */
    unsigned failures;        /* alive: "failures" in a row that fail the service, default 3 */
    int line;                 /* line of the probe's group, for messages */
} pm_config_probe_t;

typedef struct {
    char *name;               /* the dependency's name */
    pm_cond_t cond;           /* started, ready or completed */
    size_t index;             /* its index in pm_config_t.services */
} pm_config_dep_t;

typedef struct {
    char *key;
    char *value;
} pm_config_env_t;

/*  One service, as configured.  Strings are owned by the config. */
typedef struct {
    char *name;               /* the setting's name under services */
    int line;                 /* line of its group in the file */
    char *command;            /* "command" (run by /bin/sh -c or directly, see spawn), or NULL */
    char **argv;              /* "argv", NULL-terminated, or NULL */
    size_t argc;
    char *working_dir;        /* absolute: "working_dir" resolved, default the config's dir */
    pm_config_env_t *env;     /* what the service gets on top of the agent's
                                 environment: agent.env_file, its own
                                 env_file, then "environment", each key
                                 once, a later setting replacing an
                                 earlier one */
    size_t env_count;
    pm_config_dep_t *deps;    /* "depends_on" in file order */
    size_t deps_count;
    int stop_signal;          /* "stop_signal", default SIGTERM */
    double stop_timeout;      /* "stop_timeout" seconds, default 10 */
    bool autostart;           /* "autostart", default true */
    pm_restart_t restart;     /* "restart", default "no" */
    char *log_file;           /* absolute: "log_file", default <log_dir>/<name>.log */
    pm_config_log_t log;      /* the agent's log settings, overridden by its own */
    pm_config_probe_t ready;  /* "ready" probe, kind NONE: ready once exec'd */
    pm_config_probe_t alive;  /* "alive" probe, kind NONE: none */
    double backoff_initial;   /* "backoff_initial": first restart delay, default 1 s */
    double backoff_max;       /* "backoff_max": the delay doubles up to this, default 30 s */
    unsigned max_restarts;    /* "max_restarts" within restart_window, default 5, 0 = no limit, at most 1000 */
    double restart_window;    /* "restart_window" seconds, default 60 */
    double min_uptime;        /* "min_uptime": a run this long was healthy (restarted at once, count reset), default 1 s */
} pm_config_service_t;

/*  agent.subscriber_queue when not set. */
#define PM_SUBSCRIBER_QUEUE_DEFAULT 4096

typedef struct {
    char *path;               /* absolute path of the file read */
    char *dir;                /* its directory */
    bool has_file_id;         /* file_id is known: a single file (no
                                 @include), not changed in the clock tick
                                 it was read in */
    pm_file_id_t file_id;     /* the file's identity before it was read */
    char *name;               /* agent.name, or NULL when not set */
    char *log_dir;            /* absolute: agent.log_dir resolved, default <dir>/logs */
    pm_config_env_t *env;     /* agent.env_file's variables, in order: under
                                 every service's own (envfile.h) */
    size_t env_count;
    pm_log_format_t log_format;   /* agent.log_format, default text (also the agent's own log) */
    pm_config_log_t log;      /* agent.log_*: defaults for every service */
    char *control;            /* agent.control as an ipc endpoint (replaces
                                 the runtime directory's socket), or NULL */
    char *events;             /* agent.events, the same */
    char *tcp_control;        /* agent.control as a TCP endpoint, bound
                                 besides the runtime directory's socket,
                                 or NULL; set with tcp_events, never alone */
    char *tcp_events;         /* agent.events as a TCP endpoint, or NULL */
    char *curve_secret_key;   /* agent.curve.secret_key: absolute path of the
                                 server's secret certificate, or NULL */
    char *curve_clients;      /* agent.curve.clients: absolute path of the
                                 directory of authorised public certificates,
                                 or NULL; set with curve_secret_key */
    char *broker;             /* agent.broker.endpoint: the broker's agents
                                 endpoint this agent connects to, or NULL */
    char *broker_server_key;  /* agent.broker.server_key: absolute path of
                                 the broker's public certificate (TCP) */
    char *broker_key;         /* agent.broker.key: absolute path of this
                                 agent's secret certificate (TCP) */
    size_t subscriber_queue;  /* agent.subscriber_queue: messages queued
                                 per subscriber before it loses some
                                 (PROTOCOL.md 1.3), default 4096 */
    pm_config_service_t *services;    /* in file order */
    size_t services_count;
    size_t *start_order;      /* services_count indexes: dependencies first,
                                 ties broken by file order */
} pm_config_t;

/*  Reads and validates path.  Returns a new config, or NULL with a message
    in err of the form "FILE:LINE: KEY: what is wrong" (for a cycle:
    "FILE:LINE: depends_on: dependency cycle: a -> b -> a"). */
pm_config_t *pm_config_load (const char *path, char *err, size_t errlen);

void pm_config_destroy (pm_config_t **self_p);

/*  Index of the service called name, or -1. */
int pm_config_find (const pm_config_t *self, const char *name);

#endif
