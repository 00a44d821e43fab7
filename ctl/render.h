/*  render.h - what pmctl prints, and the exit code a reply stands for

    Owns: the human output (the status table, per-target result lines,
    the agent description of `ping`, durations), the messages for failed
    targets and refused requests, and the mapping from a reply to pmctl's
    exit code (pmctl.h).  Output goes to the given streams: results to
    out (stdout), failures to err (stderr), so a script can read results
    and a person still sees why something failed.

    Leaves to others: talking to the agent (client.c), options (main.c),
    JSON (pm_json_from_msgpack in libpmproto).  No system calls besides
    writing to the streams.
*/
#ifndef PM_RENDER_H
#define PM_RENDER_H

#include <stdio.h>

#include "config.h"
#include "pm_proto.h"

/*  Writes a duration the way the status table shows it: "45s", "3m12s",
    "2h05m", "3d04h" (whole units, rounded down); "-" when negative. */
void pm_render_duration (double seconds, char *buf, size_t size);

/*  The EXIT column of a record: the signal's name ("SIGKILL"), else the
    exit code ("3"), else "-". */
void pm_render_exit (const pm_record_t *record, char *buf, size_t size);

/*  The status table: a header NAME STATE PID UPTIME RESTARTS EXIT ERROR,
    one line per record, columns as wide as their widest cell, two spaces
    apart, no trailing blanks. */
void pm_render_status (FILE *out, const pm_record_t *records, size_t count);

/*  One line per result on out: "NAME  STATE  note", names and states
    aligned.  Nothing when there are none. */
void pm_render_results (FILE *out, const pm_reply_t *reply);

/*  The hello reply as "key  value" lines; now is the wall clock, in epoch
    seconds, for the agent's uptime. */
void pm_render_hello (FILE *out, const pm_reply_t *reply, double now);

/*  The "leases" line of ping and lease: "leases   11, 22" or
    "leases   none". */
/*  A broker's agents: one row each. */
void pm_render_agents (FILE *out, const pm_reply_t *reply, double now);
void pm_render_leases (FILE *out, const pm_reply_t *reply);

/*  A reload's lists, one line each ("restarted        db, api"). */
void pm_render_reload (FILE *out, const pm_reply_t *reply);

/*  Prints a reply for request in human form (results or table on out,
    failures and errors on err) and returns the exit code it stands for.
    With json set, prints nothing and only returns the code (the caller
    printed the frame). */
int pm_render_reply (FILE *out, FILE *err, const pm_request_t *request,
                     const pm_reply_t *reply, double now, int json);

/*  The outcome of `check` on file: "FILE: ok, N services" on out, or the
    loader's error (config NULL, message in error) on err.  With json,
    one JSON object on out instead: {"config", "ok", "services"} or
    {"config", "ok", "error"}. */
void pm_render_check (FILE *out, FILE *err, const char *file,
                      const pm_config_t *config, const char *error, int json);

/*  The exit code for a reply alone (see pmctl.h). */
int pm_render_exit_code (const pm_reply_t *reply);

#endif
