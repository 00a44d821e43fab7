/*  pm_proto.h - the pmbus wire protocol (libpmproto)

    Owns: the msgpack encoding and decoding of every request, reply and
    published message, the names of states, commands and error codes, and
    the limits every decoder enforces.  PROTOCOL.md beside this file is the
    normative description; this header and that document change together.

    Leaves to others: sockets and framing (the agent and the clients put
    one encoded message in one ZeroMQ frame), and everything about what a
    command does.

    Ownership: decoded structs own copies of every string they hold (the
    decoder never returns pointers into the frame); free them with the
    matching _destroy, which takes the pointer's address and sets it to
    NULL.  Encoders return a malloc'd buffer the caller frees with free().
*/
#ifndef PM_PROTO_H
#define PM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_PROTOCOL_VERSION 1

/*  Limits.  The agent also caps frames at the socket (ZMQ_MAXMSGSIZE) at
    PM_FRAME_MAX; the decoder checks again, so a frame from any source is
    bounded. */
#define PM_FRAME_MAX      (1024 * 1024)   /* bytes in one encoded message */
#define PM_NAME_MAX       128             /* bytes in a service or agent name */
/*  Bytes in a target: a service name, or service@agent at a broker. */
#define PM_TARGET_MAX     (2 * PM_NAME_MAX + 1)
/*  Bytes in an agent's instance (text unique to one run of its process). */
#define PM_INSTANCE_MAX   64
#define PM_NAMES_MAX      4096            /* names in one request */
#define PM_TEXT_MAX       4096            /* bytes in a note, error or message */
#define PM_TIMEOUT_MAX    31536000        /* seconds in a request's timeout (a year) */
/*  Bytes in the longest topic, "log/<agent>/<service>/out/" */
#define PM_TOPIC_MAX      (4 + 2 * (PM_NAME_MAX + 1) + 4)

/* ------------------------------------------------------------------ */
/*  Enumerations, with their wire names                                */
/* ------------------------------------------------------------------ */

/*  Service states.  Wire names are the lower-case words in PROTOCOL.md. */
typedef enum {
    PM_STATE_INACTIVE = 0,
    PM_STATE_WAITING,
    PM_STATE_STARTING,
    PM_STATE_RUNNING,
    PM_STATE_STOPPING,
    PM_STATE_STOPPED,
    PM_STATE_COMPLETED,
    PM_STATE_FAILED,
    PM_STATE_BACKOFF,
    PM_STATE_COUNT_
} pm_state_t;

/*  Returns the wire name ("running"), or "?" for an out-of-range value. */
const char *pm_state_name (pm_state_t state);
/*  Parses a wire name; returns 0 and sets *state, or -1 if unknown. */
int pm_state_parse (const char *name, pm_state_t *state);

typedef enum {
    PM_CMD_HELLO = 0,
    PM_CMD_STATUS,
    PM_CMD_START,
    PM_CMD_STOP,
    PM_CMD_RESTART,
    PM_CMD_SIGNAL,
    PM_CMD_SHUTDOWN,
    PM_CMD_LOGS,
    PM_CMD_RELOAD,
    PM_CMD_LEASE,
    PM_CMD_WAIT,
    PM_CMD_AGENTS,            /* a broker's agents */
    PM_CMD_COUNT_
} pm_cmd_t;

const char *pm_cmd_name (pm_cmd_t cmd);
int pm_cmd_parse (const char *name, pm_cmd_t *cmd);

/*  What a start, stop or restart request waits for before it is answered.
    PM_WAIT_DEFAULT means the field was absent: the agent applies the
    command's default ("running" for start and restart, "stopped" for
    stop), as PROTOCOL.md states. */
typedef enum {
    PM_WAIT_DEFAULT = 0,
    PM_WAIT_NONE,
    PM_WAIT_STARTED,
    PM_WAIT_RUNNING,
    PM_WAIT_STOPPED
} pm_wait_t;

const char *pm_wait_name (pm_wait_t wait);
int pm_wait_parse (const char *name, pm_wait_t *wait);

/*  Dependency conditions. */
typedef enum {
    PM_COND_STARTED = 0,
    PM_COND_READY,
    PM_COND_COMPLETED
} pm_cond_t;

const char *pm_cond_name (pm_cond_t cond);
int pm_cond_parse (const char *name, pm_cond_t *cond);

/*  Error codes carried in a reply's error.code, and returned by the
    decoders.  PM_OK is never on the wire. */
typedef enum {
    PM_OK = 0,
    PM_ERR_BAD_REQUEST,      /* "bad-request": not msgpack, wrong types, missing or unknown fields */
    PM_ERR_TOO_LARGE,        /* "too-large": frame over PM_FRAME_MAX, or a field over its limit */
    PM_ERR_BAD_VERSION,      /* "bad-version": v is not PM_PROTOCOL_VERSION */
    PM_ERR_UNKNOWN_COMMAND,  /* "unknown-command" */
    PM_ERR_UNKNOWN_SERVICE,  /* "unknown-service": error.names lists them; nothing was done */
    PM_ERR_NOT_RUNNING,      /* "not-running": e.g. signal to a service that has no process */
    PM_ERR_FAILED,           /* "failed": one or more targets failed; see results */
    PM_ERR_TIMEOUT,          /* "timeout": the wait's timeout passed; see results */
    PM_ERR_SHUTTING_DOWN,    /* "shutting-down": the agent is stopping */
    PM_ERR_BAD_SIGNAL,       /* "bad-signal": unknown signal name or number */
    PM_ERR_BAD_CONFIG,       /* "bad-config": reload found an invalid file */
    PM_ERR_BUSY,             /* "busy": e.g. a reload is already being applied */
    PM_ERR_INTERNAL,         /* "internal": the agent could not do it (message says why) */
    PM_ERR_UNAUTHORISED,     /* "unauthorised": the client's CURVE key is no longer authorised; nothing was done */
    PM_ERR_UNKNOWN_AGENT,    /* "unknown-agent": a broker has no agent of that name; error.names lists them */
    PM_ERR_AGENT_UNREACHABLE,/* "agent-unreachable": a named agent is not connected to the broker; error.names lists them */
    PM_ERR_AMBIGUOUS,        /* "ambiguous": a bare service name several agents have; error.names lists the candidates */
    PM_ERR_COUNT_
} pm_err_t;

const char *pm_err_name (pm_err_t err);
int pm_err_parse (const char *name, pm_err_t *err);

/*  Output streams of a service: "out" and "err". */
typedef enum {
    PM_STREAM_OUT = 0,
    PM_STREAM_ERR
} pm_stream_t;

const char *pm_stream_name (pm_stream_t stream);
int pm_stream_parse (const char *name, pm_stream_t *stream);

/*  Signal names: "SIGTERM", "TERM" and "15" all parse to SIGTERM.
    pm_signal_name returns "SIGTERM" (static), or NULL if unknown. */
int pm_signal_parse (const char *text, int *signum);
const char *pm_signal_name (int signum);

/*  Wall-clock time, epoch seconds: what every time on the wire is. */
double pm_wall_clock (void);

/*  A record's uptime at now: now - started_at for a process that runs
    (pid > 0), 0 when that is clearly negative (the clock stepped back)
    or started_at is unknown; -1 (nil) without a process.  The agent
    fills `uptime` with it, and a reader of an older record (the status
    snapshot, PROTOCOL.md 12) recomputes it the same way. */
double pm_uptime (int64_t pid, double started_at, double now);

/* ------------------------------------------------------------------ */
/*  Requests                                                           */
/* ------------------------------------------------------------------ */

/*  One request: {"v": 1, "id": uint, "cmd": str, "args": {...}}.
    Fields a command does not take are left zero; the decoder rejects an
    argument the command does not define. */
typedef struct {
    uint64_t id;              /* echoed in the reply; chosen by the client */
    pm_cmd_t cmd;
    char **names;             /* target names, owned; NULL when none */
    size_t names_count;
    bool all;                 /* "all": every service (start, stop, restart, signal) */
    bool with_dependents;     /* "with_dependents" (stop, restart) */
    pm_wait_t wait;           /* "wait" (start, stop, restart) */
    double timeout;           /* "timeout" in seconds, 0 = no limit */
    int signum;               /* "signal" (signal): resolved number */
    bool has_tail;            /* "tail" given (logs) */
    uint64_t tail;            /* "tail": last N lines (logs) */
    bool has_since;           /* "since" given (logs) */
    uint64_t since;           /* "since": lines with seq > since (logs) */
    int64_t pid;              /* "pid" (lease) */
    pm_state_t wait_for;      /* "for" (wait): running (also given as
                                 "ready"), stopped, completed or failed */
    char *agent;              /* "agent" (hello, reload, shutdown, lease):
                                 which agent behind a broker, or NULL */
    char **agents;            /* "agents": a broker's agents to cover
                                 (status, logs, and all), owned */
    size_t agents_count;
} pm_request_t;

/*  A new, zeroed request for cmd with the given id. */
pm_request_t *pm_request_new (pm_cmd_t cmd, uint64_t id);
void pm_request_destroy (pm_request_t **self_p);
/*  Appends a copy of name to names.  Returns 0, or -1 on a bad name. */
int pm_request_add_name (pm_request_t *self, const char *name);

/*  Appends a copy of name to agents (checked like a name).  Returns 0, or
    -1 when it is empty, too long, or one too many. */
int pm_request_add_agent (pm_request_t *self, const char *name);

/*  Encodes; returns 0 and a malloc'd buffer in *data, *size, or -1. */
int pm_request_encode (const pm_request_t *self, char **data, size_t *size);

/*  Decodes and validates one frame.  Returns PM_OK and a new request in
    *req_p, or an error code with a message in err (always NUL-terminated)
    and *req_p NULL.  When the frame was a map with a usable "id", *id is
    set to it even on failure (else 0), so the reply can echo it. */
pm_err_t pm_request_decode (const void *data, size_t size,
                            pm_request_t **req_p, uint64_t *id,
                            char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/*  Status records                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
    char *name;               /* the dependency */
    pm_cond_t cond;
} pm_dep_t;

/*  The status of one service, as carried by status replies and state
    events.  "Absent" values are nil on the wire. */
typedef struct {
    char *name;
    pm_state_t state;
    int64_t pid;              /* 0 = nil */
    double started_at;        /* epoch seconds of the last spawn; 0 = nil */
    double state_since;       /* epoch seconds of the last transition */
    double uptime;            /* seconds since started_at while pid is set; <0 = nil */
    uint64_t restarts;        /* spawns after the first since the agent loaded it */
    bool has_exit_code;       /* false = exit_code nil */
    int exit_code;            /* last exit status */
    char *signal;             /* name of the signal that ended the last run, or NULL */
    bool ready;               /* readiness confirmed for the current run */
    char *error;              /* last error text, or NULL */
    pm_dep_t *deps;           /* depends_on, owned */
    size_t deps_count;
    char *command;            /* the command as configured, for display */
    uint64_t seq;             /* seq of the last state event of this service (0 = none yet) */
    double next_start;        /* epoch seconds of the next policy start (backoff); 0 = nil */
    char *agent;              /* the agent the service runs on: set by a
                                 broker, absent (NULL) from an agent */
    char *instance;           /* that agent's instance: set by a broker */
} pm_record_t;

/*  Frees what the record owns (not the record itself: records live in
    arrays).  Leaves it zeroed. */
void pm_record_clear (pm_record_t *self);
/*  Deep copy of src into dst (dst is overwritten, not freed). */
void pm_record_copy (pm_record_t *dst, const pm_record_t *src);

/* ------------------------------------------------------------------ */
/*  Replies                                                            */
/* ------------------------------------------------------------------ */

/*  The outcome for one target of start, stop, restart or signal. */
typedef struct {
    char *name;
    bool ok;
    pm_state_t state;         /* its state when the reply was made */
    char *note;               /* "already-running", "not-running", "dependency", ... or NULL */
    char *error;              /* why it failed, or NULL */
} pm_result_t;

/*  One line of a `logs` reply. */
typedef struct {
    uint64_t seq;
    double ts;
    pm_stream_t stream;
    bool partial;             /* a cut piece of a longer line */
    char *line;               /* line_size bytes (may hold NULs), NUL-terminated copy */
    size_t line_size;
} pm_line_t;

/*  What a `logs` reply says of one service. */
typedef struct {
    char *service;
    uint64_t first;           /* oldest seq the agent still holds, 0: none */
    uint64_t last;            /* newest seq the service has written, 0: none */
    uint64_t gone_from;       /* lines asked for that the agent no longer */
    uint64_t gone_to;         /*   holds (its log file does): 0, 0 = none */
    bool more;                /* cut to fit: ask again with since = the
                                 last line's seq */
    char *instance;           /* the instance of the agent that answered:
                                 set by a broker, NULL from an agent */
    pm_line_t *lines;
    size_t lines_count;
} pm_logblock_t;

/*  What a `reload` did, service by service (the lists of the "reload"
    map of its reply). */
typedef enum {
    PM_RELOAD_ADDED = 0,      /* "added": new in the file (started if autostart) */
    PM_RELOAD_REMOVED,        /* "removed": gone from the file (stopped) */
    PM_RELOAD_CHANGED,        /* "changed": how its process runs changed */
    PM_RELOAD_RESTARTED,      /* "restarted": stopped and started again */
    PM_RELOAD_UPDATED,        /* "updated_in_place": settings applied without a restart */
    PM_RELOAD_UNCHANGED,      /* "unchanged": untouched */
    PM_RELOAD_COUNT_
} pm_reload_list_t;

const char *pm_reload_list_name (pm_reload_list_t list);

/*  One agent as a broker knows it ("agents" reply). */
typedef struct {
    char *name;
    bool connected;           /* "state": "connected" or "unreachable" */
    double since;             /* epoch seconds of the last change of state */
    char *address;            /* where its connection comes from, or NULL */
    char *version;
    char *instance;           /* this run of the agent process */
    int64_t pid;
    uint64_t services;        /* how many services it has */
} pm_agent_info_t;

/*  A reply: {"v", "id", "ok", ...}.  Which optional parts are present
    depends on the command (PROTOCOL.md lists them). */
typedef struct {
    uint64_t id;
    bool ok;
    pm_err_t err;             /* PM_OK when ok */
    char *message;            /* error.message, or NULL */
    char **err_names;         /* error.names (unknown services), or NULL */
    size_t err_names_count;

    pm_result_t *results;     /* "results", or NULL */
    size_t results_count;

    pm_record_t *services;    /* "services" (status), or NULL */
    size_t services_count;

    /* hello */
    char *agent;              /* agent name, or NULL */
    char *version;            /* agent version string */
    int64_t agent_pid;        /* "pid" */
    char *config;             /* absolute path of the config file */
    char *control;            /* control endpoint */
    char *events;             /* events endpoint */
    double started_at;        /* "started_at" of the agent; 0 = absent */
    char *instance;           /* "instance" (hello, status and logs of an
                                 agent): this run of its process, or NULL */
    uint64_t generation;      /* "generation" of a status snapshot file
                                 (PROTOCOL.md 12); 0 = absent */
    int64_t *leases;          /* "leases": leased pids, or NULL */
    size_t leases_count;

    /* logs */
    pm_logblock_t *logs;      /* "logs", one block per service, or NULL */
    size_t logs_count;

    bool broker;              /* hello: "broker": true from a broker */

    /* agents (a broker) */
    pm_agent_info_t *agents;  /* "agents", or NULL */
    size_t agents_count;

    /* reload */
    bool has_reload;          /* "reload" present */
    char **reload [PM_RELOAD_COUNT_];     /* names per list, owned */
    size_t reload_count [PM_RELOAD_COUNT_];
} pm_reply_t;

pm_reply_t *pm_reply_new (uint64_t id);
void pm_reply_destroy (pm_reply_t **self_p);

/*  Sets ok = false, err and a copy of message (printf-style). */
void pm_reply_set_error (pm_reply_t *self, pm_err_t err, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/*  Appends a copy of name to err_names. */
void pm_reply_add_err_name (pm_reply_t *self, const char *name);
/*  After err_names holds the names a request gave that match no service:
    the unknown_service error, with one message naming them all
    ("unknown services: a, b").  The agent and a reader of the status
    snapshot answer an unknown name with the same words. */
void pm_reply_set_unknown (pm_reply_t *self);
/*  Appends a result; strings are copied (note, error may be NULL). */
void pm_reply_add_result (pm_reply_t *self, const char *name, bool ok,
                          pm_state_t state, const char *note,
                          const char *error);
/*  Appends a deep copy of record to services. */
void pm_reply_add_service (pm_reply_t *self, const pm_record_t *record);

/*  Appends a copy of name to a reload list (and sets has_reload). */
void pm_reply_add_reload (pm_reply_t *self, pm_reload_list_t list,
                          const char *name);

/*  Appends an empty block for service to logs and returns it (valid until
    the next call). */
pm_logblock_t *pm_reply_add_logblock (pm_reply_t *self, const char *service);
/*  Appends a copy of a line to block. */
void pm_logblock_add_line (pm_logblock_t *block, uint64_t seq, double ts,
                           pm_stream_t stream, bool partial,
                           const char *line, size_t size);
/*  Bytes a line takes in an encoded reply, at most (for budgeting). */
size_t pm_line_encoded_size (size_t line_size);

int pm_reply_encode (const pm_reply_t *self, char **data, size_t *size);
pm_err_t pm_reply_decode (const void *data, size_t size, pm_reply_t **reply_p,
                          char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/*  Published messages                                                 */
/* ------------------------------------------------------------------ */

typedef enum {
    PM_EVENT_STATE = 0,       /* topic state/<agent>/<service>/ */
    PM_EVENT_LOG,             /* topic log/<agent>/<service>/<out|err>/ */
    PM_EVENT_AGENT            /* topic agent/<agent>/ */
} pm_event_kind_t;

/*  Parses "out" or "err"; returns 0 and sets *stream, or -1. */

/*  One published message (the body frame; the topic frame is built with
    pm_topic_format).  Fields not used by the kind are zero. */
typedef struct {
    pm_event_kind_t kind;
    uint64_t seq;             /* per stream, from 1 */
    double ts;                /* epoch seconds */
    char *agent;
    char *instance;           /* this run of the agent, or NULL (absent) */
    char *service;            /* state and log */
    /* state */
    pm_state_t old_state;
    pm_state_t new_state;
    pm_record_t record;
    /* log: consecutive lines of one stream, the first with seq, each
       next with one more; to encode, each line's line, line_size and
       partial are read; decoded ones also carry their seq, ts and stream,
       and are owned by the event */
    pm_stream_t stream;
    pm_line_t *lines;
    size_t lines_count;
    /* agent */
    char *event;              /* "started", "shutdown", "reload", ... */
    char *message;            /* optional human text, or NULL */
} pm_event_t;

pm_event_t *pm_event_new (pm_event_kind_t kind);
void pm_event_destroy (pm_event_t **self_p);

int pm_event_encode (const pm_event_t *self, char **data, size_t *size);
pm_err_t pm_event_decode (const void *data, size_t size, pm_event_t **event_p,
                          char *err, size_t errlen);

/*  A reusable encoding buffer, so a publisher encoding many messages
    allocates once: pm_event_encode_to replaces what it holds. */
typedef struct pm_buffer_t pm_buffer_t;
pm_buffer_t *pm_buffer_new (void);
void pm_buffer_destroy (pm_buffer_t **self_p);
const char *pm_buffer_data (const pm_buffer_t *self);
size_t pm_buffer_size (const pm_buffer_t *self);
/*  Encodes event into buffer.  Returns 0, or -1 (nothing usable held). */
int pm_event_encode_to (const pm_event_t *self, pm_buffer_t *buffer);

/*  Writes the topic for an event into buf ("state/demo/db/",
    "log/demo/db/out/", "agent/demo/"), NUL-terminated.  Returns the
    length, or -1 if it does not fit or a name is missing, empty or holds
    a '/' (buf then holds "" if size allows). */
int pm_topic_format (char *buf, size_t size, pm_event_kind_t kind,
                     const char *agent, const char *service,
                     pm_stream_t stream);

/* ------------------------------------------------------------------ */
/*  JSON rendering, for tools                                          */
/* ------------------------------------------------------------------ */

/*  Bytes in the valid UTF-8 sequence that starts text (1..4), or 0 when
    it is not valid UTF-8 (or size is 0). */
size_t pm_utf8_next (const unsigned char *text, size_t size);

/*  Renders any msgpack frame as one line of JSON (no trailing newline)
    into a malloc'd NUL-terminated string, keeping the protocol's field
    names.  bin values and invalid UTF-8 become strings with \uFFFD for bad
    bytes.  Returns NULL if the frame is not valid msgpack. */
char *pm_json_from_msgpack (const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
