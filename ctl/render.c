/*  render.c - what pmctl prints, and the exit code a reply stands for
    (see render.h)

    Tables are sized from their data: every cell is formatted first, then
    columns are padded to their widest cell.  Strings from the agent are
    printed as they came; the decoder has already bounded them.
*/
#include "render.h"

#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmctl.h"

//  Columns of the status table.
enum { S_AGENT, S_NAME, S_STATE, S_PID, S_UPTIME, S_RESTARTS, S_EXIT,
       S_ERROR, S_COLUMNS };

//  AGENT only for records a broker gave (they carry their agent).
static const char *s_headers [S_COLUMNS] = {
    "AGENT", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT", "ERROR"
};

//  Two spaces between columns, as wide as the widest cell.
#define S_GAP "  "

void
pm_render_duration (double seconds, char *buf, size_t size)
{
    if (!(seconds >= 0) || seconds > 1e15) {
        snprintf (buf, size, "-");
        return;
    }
    unsigned long long s = (unsigned long long) floor (seconds);
    if (s < 60)
        snprintf (buf, size, "%llus", s);
    else
    if (s < 3600)
        snprintf (buf, size, "%llum%02llus", s / 60, s % 60);
    else
    if (s < 86400)
        snprintf (buf, size, "%lluh%02llum", s / 3600, s % 3600 / 60);
    else
        snprintf (buf, size, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

void
pm_render_exit (const pm_record_t *record, char *buf, size_t size)
{
    if (record->signal && *record->signal)
        snprintf (buf, size, "%s", record->signal);
    else
    if (record->has_exit_code)
        snprintf (buf, size, "%d", record->exit_code);
    else
        snprintf (buf, size, "-");
}

//  Writes cells padded to widths, the last one unpadded, then strips
//  trailing blanks (an empty last cell leaves none).
static void
s_print_row (FILE *out, const char **cells, const size_t *widths,
             size_t columns)
{
    size_t total = 0;
    for (size_t i = 0; i < columns; i++)
        total += widths [i] + strlen (S_GAP) + strlen (cells [i]);
    char *line = malloc (total + 1);
    if (!line)
        abort ();
    size_t at = 0;
    for (size_t i = 0; i < columns; i++) {
        size_t len = strlen (cells [i]);
        memcpy (line + at, cells [i], len);
        at += len;
        if (i + 1 < columns) {
            for (size_t pad = len; pad < widths [i]; pad++)
                line [at++] = ' ';
            memcpy (line + at, S_GAP, strlen (S_GAP));
            at += strlen (S_GAP);
        }
    }
    while (at > 0 && line [at - 1] == ' ')
        at--;
    line [at] = 0;
    fprintf (out, "%s\n", line);
    free (line);
}

void
pm_render_status (FILE *out, const pm_record_t *records, size_t count)
{
    //  Cells that are numbers are formatted into this per-row scratch.
    typedef struct {
        char pid [24];
        char uptime [32];
        char restarts [24];
        char exit [48];
    } row_t;
    row_t *rows = calloc (count ? count : 1, sizeof *rows);
    if (!rows)
        abort ();
    size_t widths [S_COLUMNS];
    for (size_t c = 0; c < S_COLUMNS; c++)
        widths [c] = strlen (s_headers [c]);

    for (size_t i = 0; i < count; i++) {
        const pm_record_t *record = &records [i];
        row_t *row = &rows [i];
        if (record->pid > 0)
            snprintf (row->pid, sizeof row->pid, "%lld",
                      (long long) record->pid);
        else
            snprintf (row->pid, sizeof row->pid, "-");
        //  Uptime only means something while there is a process.
        pm_render_duration (record->pid > 0 ? record->uptime : -1,
                            row->uptime, sizeof row->uptime);
        snprintf (row->restarts, sizeof row->restarts, "%llu",
                  (unsigned long long) record->restarts);
        pm_render_exit (record, row->exit, sizeof row->exit);
        const char *cells [S_COLUMNS] = {
            record->agent ? record->agent : "",
            record->name ? record->name : "?",
            pm_state_name (record->state),
            row->pid, row->uptime, row->restarts, row->exit,
            record->error ? record->error : ""
        };
        for (size_t c = 0; c < S_COLUMNS; c++) {
            size_t len = strlen (cells [c]);
            if (len > widths [c])
                widths [c] = len;
        }
    }
    size_t first = S_NAME;
    for (size_t i = 0; i < count; i++)
        if (records [i].agent)
            first = S_AGENT;
    s_print_row (out, s_headers + first, widths + first, S_COLUMNS - first);
    for (size_t i = 0; i < count; i++) {
        const pm_record_t *record = &records [i];
        const char *cells [S_COLUMNS] = {
            record->agent ? record->agent : "",
            record->name ? record->name : "?",
            pm_state_name (record->state),
            rows [i].pid, rows [i].uptime, rows [i].restarts, rows [i].exit,
            record->error ? record->error : ""
        };
        s_print_row (out, cells + first, widths + first, S_COLUMNS - first);
    }
    free (rows);
}

void
pm_render_results (FILE *out, const pm_reply_t *reply)
{
    size_t widths [3] = { 0, 0, 0 };
    for (size_t i = 0; i < reply->results_count; i++) {
        const pm_result_t *result = &reply->results [i];
        size_t name = strlen (result->name ? result->name : "?");
        size_t state = strlen (pm_state_name (result->state));
        if (name > widths [0])
            widths [0] = name;
        if (state > widths [1])
            widths [1] = state;
    }
    for (size_t i = 0; i < reply->results_count; i++) {
        const pm_result_t *result = &reply->results [i];
        const char *cells [3] = {
            result->name ? result->name : "?",
            pm_state_name (result->state),
            result->note ? result->note : ""
        };
        s_print_row (out, cells, widths, 3);
    }
}

void
pm_render_hello (FILE *out, const pm_reply_t *reply, double now)
{
    char uptime [32] = "-";
    if (reply->started_at > 0)
        pm_render_duration (now - reply->started_at, uptime, sizeof uptime);
    fprintf (out, "agent    %s\n", reply->agent ? reply->agent : "-");
    fprintf (out, "version  %s\n", reply->version ? reply->version : "-");
    if (reply->agent_pid > 0)
        fprintf (out, "pid      %lld\n", (long long) reply->agent_pid);
    else
        fprintf (out, "pid      -\n");
    fprintf (out, "config   %s\n", reply->config ? reply->config : "-");
    fprintf (out, "control  %s\n", reply->control ? reply->control : "-");
    fprintf (out, "events   %s\n", reply->events ? reply->events : "-");
    fprintf (out, "uptime   %s\n", uptime);
    pm_render_leases (out, reply);
}

void
pm_render_agents (FILE *out, const pm_reply_t *reply, double now)
{
    static const char *headers [] = { "AGENT", "STATE", "SINCE", "ADDRESS",
                                      "VERSION", "SERVICES", "PID" };
    enum { columns = sizeof headers / sizeof headers [0] };
    size_t widths [columns];
    for (size_t c = 0; c < columns; c++)
        widths [c] = strlen (headers [c]);
    typedef struct { char since [32], services [24], pid [24]; } row_t;
    row_t *rows = calloc (reply->agents_count + 1, sizeof *rows);
    if (!rows)
        abort ();
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            s_print_row (out, headers, widths, columns);
        for (size_t i = 0; i < reply->agents_count; i++) {
            const pm_agent_info_t *agent = &reply->agents [i];
            row_t *row = &rows [i];
            char ago [24];
            pm_render_duration (now - agent->since, ago, sizeof ago);
            snprintf (row->since, sizeof row->since, "%s ago", ago);
            snprintf (row->services, sizeof row->services, "%llu",
                      (unsigned long long) agent->services);
            snprintf (row->pid, sizeof row->pid, "%lld",
                      (long long) agent->pid);
            const char *cells [columns] = {
                agent->name, agent->connected ? "connected" : "unreachable",
                row->since, agent->address ? agent->address : "",
                agent->version ? agent->version : "", row->services, row->pid
            };
            for (size_t c = 0; !pass && c < columns; c++)
                if (strlen (cells [c]) > widths [c])
                    widths [c] = strlen (cells [c]);
            if (pass)
                s_print_row (out, cells, widths, columns);
        }
    }
    free (rows);
}

void
pm_render_leases (FILE *out, const pm_reply_t *reply)
{
    fprintf (out, "leases   ");
    if (reply->leases_count == 0)
        fprintf (out, "none");
    for (size_t i = 0; i < reply->leases_count; i++)
        fprintf (out, "%s%lld", i ? ", " : "", (long long) reply->leases [i]);
    fprintf (out, "\n");
}

int
pm_render_exit_code (const pm_reply_t *reply)
{
    if (reply->ok) {
        //  An agent that says ok with a failed target is believed on the
        //  target: a script must not read success over a failure.
        for (size_t i = 0; i < reply->results_count; i++)
            if (!reply->results [i].ok)
                return PM_EXIT_FAILED;
        return PM_EXIT_OK;
    }
    switch (reply->err) {
        case PM_ERR_FAILED:
        case PM_ERR_NOT_RUNNING:
        case PM_ERR_BUSY:
        case PM_ERR_INTERNAL:
            return PM_EXIT_FAILED;
        case PM_ERR_TIMEOUT:
            return PM_EXIT_TIMEOUT;
        case PM_ERR_SHUTTING_DOWN:
        case PM_ERR_UNAUTHORISED:
        case PM_ERR_AGENT_UNREACHABLE:
            return PM_EXIT_UNREACHABLE;
        case PM_ERR_UNKNOWN_SERVICE:
        case PM_ERR_BAD_REQUEST:
        case PM_ERR_TOO_LARGE:
        case PM_ERR_BAD_VERSION:
        case PM_ERR_UNKNOWN_COMMAND:
        case PM_ERR_BAD_SIGNAL:
        case PM_ERR_BAD_CONFIG:
        default:
            return PM_EXIT_USAGE;
    }
}

//  The verb of "cannot VERB 'name'" for a command.
static const char *
s_verb (pm_cmd_t cmd)
{
    switch (cmd) {
        case PM_CMD_START:   return "start";
        case PM_CMD_STOP:    return "stop";
        case PM_CMD_RESTART: return "restart";
        case PM_CMD_SIGNAL:  return "signal";
        case PM_CMD_WAIT:    return "wait for";
        case PM_CMD_LEASE:   return "lease";
        default:             return pm_cmd_name (cmd);
    }
}

//  The state a waiting command waits for, in words: "running",
//  "started" or "stopped".
static const char *
s_goal (const pm_request_t *request)
{
    if (request->cmd == PM_CMD_WAIT)
        return pm_state_name (request->wait_for);
    pm_wait_t wait = request->wait;
    if (wait == PM_WAIT_DEFAULT)
        wait = request->cmd == PM_CMD_STOP ? PM_WAIT_STOPPED
                                           : PM_WAIT_RUNNING;
    return pm_wait_name (wait);
}

//  True for a target of a timeout reply that was only late: no error
//  text, or the agent's own wording for one still on its way ("still
//  starting after 5s"), as opposed to one that failed on the way.
static bool
s_late (const pm_result_t *result)
{
    return !result->ok
        && (!result->error || strncmp (result->error, "still ", 6) == 0);
}

//  One stderr line per failed target; returns how many.  With
//  only_errors, only targets that carry an error text (a timeout reply
//  lists the late ones apart).
static size_t
s_print_failures (FILE *err, const pm_request_t *request,
                  const pm_reply_t *reply, bool only_errors)
{
    size_t failed = 0;
    for (size_t i = 0; i < reply->results_count; i++) {
        const pm_result_t *result = &reply->results [i];
        if (result->ok || (only_errors && s_late (result)))
            continue;
        const char *why = result->error ? result->error
                        : result->note ? result->note
                        : pm_state_name (result->state);
        fprintf (err, "pmctl: cannot %s '%s': %s\n", s_verb (request->cmd),
                 result->name ? result->name : "?", why);
        failed++;
    }
    return failed;
}

//  The timeout report: targets that failed on the way, one line each,
//  then those that had not reached the goal yet, and where they were:
//  "timed out after 5 s: not running yet: api (starting)".
static void
s_print_timeout (FILE *err, const pm_request_t *request,
                 const pm_reply_t *reply)
{
    s_print_failures (err, request, reply, true);
    fprintf (err, "pmctl: timed out");
    if (request->timeout > 0)
        fprintf (err, " after %g s", request->timeout);
    size_t late = 0;
    for (size_t i = 0; i < reply->results_count; i++) {
        const pm_result_t *result = &reply->results [i];
        if (!s_late (result))
            continue;
        if (late++ == 0)
            fprintf (err, ": not %s yet: ", s_goal (request));
        else
            fprintf (err, ", ");
        fprintf (err, "%s (%s)", result->name ? result->name : "?",
                 pm_state_name (result->state));
    }
    if (late == 0 && reply->message)
        fprintf (err, ": %s", reply->message);
    fprintf (err, "\n");
}

void
pm_render_reload (FILE *out, const pm_reply_t *reply)
{
    static const char *labels [PM_RELOAD_COUNT_] = {
        "added", "removed", "changed", "restarted", "updated in place",
        "unchanged"
    };
    for (int list = 0; list < PM_RELOAD_COUNT_; list++) {
        fprintf (out, "%-17s", labels [list]);
        if (reply->reload_count [list] == 0)
            fprintf (out, "-");
        for (size_t i = 0; i < reply->reload_count [list]; i++)
            fprintf (out, "%s%s", i ? ", " : "", reply->reload [list][i]);
        fprintf (out, "\n");
    }
}

int
pm_render_reply (FILE *out, FILE *err, const pm_request_t *request,
                 const pm_reply_t *reply, double now, int json)
{
    int code = pm_render_exit_code (reply);
    //  A refused lease is that one target failing, whatever the code.
    if (request->cmd == PM_CMD_LEASE && !reply->ok)
        code = PM_EXIT_FAILED;
    if (json)
        return code;
    if (request->cmd == PM_CMD_RELOAD && reply->has_reload)
        pm_render_reload (out, reply);

    if (reply->ok) {
        if (request->cmd == PM_CMD_STATUS)
            pm_render_status (out, reply->services, reply->services_count);
        else
        if (request->cmd == PM_CMD_HELLO)
            pm_render_hello (out, reply, now);
        else
        if (request->cmd == PM_CMD_AGENTS)
            pm_render_agents (out, reply, now);
        else
        if (request->cmd == PM_CMD_LEASE)
            pm_render_leases (out, reply);
        else
        if (request->cmd == PM_CMD_RELOAD)
            ;                   //  the lists say it all
        else {
            pm_render_results (out, reply);
            s_print_failures (err, request, reply, false);
        }
        return code;
    }
    if (request->cmd == PM_CMD_LEASE) {
        //  The agent's message says which pid and why ("cannot lease:
        //  no process 123"); every refusal is this target failing.
        fprintf (err, "pmctl: %s\n", reply->message ? reply->message
                 : pm_err_name (reply->err));
        return code;
    }
    switch (reply->err) {
        case PM_ERR_UNKNOWN_SERVICE:
            fprintf (err, "pmctl: unknown service: ");
            for (size_t i = 0; i < reply->err_names_count; i++)
                fprintf (err, "%s%s", i ? ", " : "", reply->err_names [i]);
            if (reply->err_names_count == 0)
                fprintf (err, "%s", reply->message ? reply->message : "?");
            fprintf (err, "\n");
            break;
        case PM_ERR_TIMEOUT:
            pm_render_results (out, reply);
            s_print_timeout (err, request, reply);
            break;
        case PM_ERR_FAILED:
        case PM_ERR_NOT_RUNNING:
            pm_render_results (out, reply);
            if (s_print_failures (err, request, reply, false) == 0)
                fprintf (err, "pmctl: cannot %s: %s\n", s_verb (request->cmd),
                         reply->message ? reply->message
                                        : pm_err_name (reply->err));
            break;
        case PM_ERR_SHUTTING_DOWN:
            fprintf (err, "pmctl: the agent is shutting down%s%s\n",
                     reply->message ? ": " : "",
                     reply->message ? reply->message : "");
            break;
        default:
            fprintf (err, "pmctl: %s: %s\n", pm_err_name (reply->err),
                     reply->message ? reply->message : "(no message)");
            break;
    }
    return code;
}

//  Packs a C string as a msgpack str.
static void
s_pack_string (msgpack_packer *packer, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (packer, len);
    msgpack_pack_str_body (packer, text, len);
}

void
pm_render_check (FILE *out, FILE *err, const char *file,
                 const pm_config_t *config, const char *error, int json)
{
    if (!json) {
        if (config)
            fprintf (out, "%s: ok, %zu service%s\n", file,
                     config->services_count,
                     config->services_count == 1 ? "" : "s");
        else
            fprintf (err, "pmctl: %s\n", error);
        return;
    }
    //  Built as msgpack so the one JSON writer (libpmproto) escapes it.
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 3);
    s_pack_string (&packer, "config");
    s_pack_string (&packer, config ? config->path : file);
    s_pack_string (&packer, "ok");
    if (config) {
        msgpack_pack_true (&packer);
        s_pack_string (&packer, "services");
        msgpack_pack_uint64 (&packer, config->services_count);
    }
    else {
        msgpack_pack_false (&packer);
        s_pack_string (&packer, "error");
        s_pack_string (&packer, error);
    }
    char *text = pm_json_from_msgpack (buffer.data, buffer.size);
    fprintf (out, "%s\n", text ? text : "null");
    free (text);
    msgpack_sbuffer_destroy (&buffer);
}
