/*  test_logcap.c - a service's output into lines, files and the ring

    Pipes stand in for the service: the test writes, then drains the
    capture (as the supervisor does when the service exits) and reads the
    log file and the ring back.  No loop runs: drain reads what is there.
*/
#include "logcap.h"
#include "agentlog.h"

#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


static char s_dir [64];
static char s_agent_log [128];

typedef struct {
    zloop_t *loop;
    pm_logcap_t *cap;
    int out_w, err_w;
    char path [256];
} s_fixture_t;

static pm_config_log_t
s_settings (pm_log_format_t format, size_t line_max)
{
    pm_config_log_t log;
    memset (&log, 0, sizeof log);
    log.format = format;
    log.max_size = 0;
    log.line_max = line_max;
    log.ring = 1000;
    log.ring_bytes = 1 << 20;
    return log;
}

static void
s_open (s_fixture_t *self, const char *name, const pm_config_log_t *log)
{
    self->loop = zloop_new ();
    snprintf (self->path, sizeof self->path, "%s/%s.log", s_dir, name);
    char err [256];
    self->cap = pm_logcap_new (self->loop, name, self->path, log, NULL, err,
                               sizeof err);
    CHECK (self->cap != NULL);
    int out [2], errp [2];
    CHECK (pipe2 (out, O_CLOEXEC | O_NONBLOCK) == 0);
    CHECK (pipe2 (errp, O_CLOEXEC | O_NONBLOCK) == 0);
    pm_logcap_attach (self->cap, out [0], errp [0]);
    self->out_w = out [1];
    self->err_w = errp [1];
}

static void
s_write (int fd, const char *data, size_t size)
{
    CHECK (write (fd, data, size) == (ssize_t) size);
}

static char *
s_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        *size = 0;
        return strdup ("");
    }
    char *data = malloc (1 << 21);
    *size = fread (data, 1, (1 << 21) - 1, file);
    data [*size] = 0;
    fclose (file);
    return data;
}

static int
s_on_stop (zloop_t *loop, int timer_id, void *arg)
{
    return -1;
}

//  Lets the loop read whatever the pipes hold, as it does while a
//  service runs (unlike drain, which also ends unfinished lines).
static void
s_pump (s_fixture_t *self)
{
    zloop_timer (self->loop, 20, 1, s_on_stop, NULL);
    zloop_start (self->loop);
}

static void
s_close (s_fixture_t *self)
{
    close (self->out_w);
    close (self->err_w);
    pm_logcap_destroy (&self->cap);
    zloop_destroy (&self->loop);
}

static void
test_lines_and_ring (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    s_open (&fx, "plain", &log);
    s_write (fx.out_w, "one\ntwo\nthr", 11);
    s_write (fx.err_w, "oops\n", 5);
    pm_logcap_drain (fx.cap);           //  "thr" is kept: the end of output
    size_t size;
    char *data = s_file (fx.path, &size);
    CHECK (strcmp (data, "one\ntwo\noops\nthr\n") == 0);
    free (data);
    const pm_logring_t *ring = pm_logcap_ring (fx.cap);
    CHECK (pm_logring_first (ring) == 1 && pm_logring_last (ring) == 4);
    CHECK (pm_logring_get (ring, 3)->stream == PM_STREAM_ERR);
    CHECK (pm_logring_get (ring, 4)->size == 3);
    CHECK (pm_logcap_seq (fx.cap) == 4);
    s_close (&fx);
}

static void
test_long_line_pieces (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    s_open (&fx, "long", &log);
    char line [2501];
    memset (line, 'x', 2500);
    line [2500] = '\n';
    s_write (fx.out_w, line, sizeof line);
    //  Exactly two pieces long, and no newline at the end of output.
    s_write (fx.out_w, line, 2000);
    pm_logcap_drain (fx.cap);
    const pm_logring_t *ring = pm_logcap_ring (fx.cap);
    CHECK (pm_logring_last (ring) == 5);
    size_t sizes [5] = { 1000, 1000, 500, 1000, 1000 };
    bool partial [5] = { true, true, false, true, false };
    for (uint64_t seq = 1; seq <= 5; seq++) {
        const pm_logline_t *piece = pm_logring_get (ring, seq);
        CHECK (piece && piece->size == sizes [seq - 1]);
        CHECK (piece && piece->partial == partial [seq - 1]);
    }
    //  The file holds each line whole.
    size_t size;
    char *data = s_file (fx.path, &size);
    CHECK (size == 2501 + 2001);
    CHECK (data [2500] == '\n' && data [4501] == '\n');
    CHECK (strchr (data, '\n') == data + 2500);
    free (data);
    s_close (&fx);
}

static void
test_other_stream_while_a_line_is_cut (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    s_open (&fx, "mixed", &log);
    char piece [1500];
    memset (piece, 'o', sizeof piece);
    s_write (fx.out_w, piece, sizeof piece);
    s_pump (&fx);                       //  1000 out, held; 500 waiting
    s_write (fx.err_w, "err line\n", 9);
    s_pump (&fx);
    s_write (fx.out_w, "\n", 1);
    s_pump (&fx);
    size_t size;
    char *data = s_file (fx.path, &size);
    //  The err line first, then the out line whole.
    CHECK (size == 9 + 1501);
    CHECK (strncmp (data, "err line\n", 9) == 0);
    CHECK (data [9] == 'o' && data [1508] == 'o' && data [1509] == '\n');
    free (data);
    s_close (&fx);
}

static void
test_json_and_invalid_utf8 (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_JSON, 1000);
    s_open (&fx, "js", &log);
    s_write (fx.out_w, "a\xff" "b \"q\"\n", 8);
    pm_logcap_drain (fx.cap);
    size_t size;
    char *data = s_file (fx.path, &size);
    CHECK (strstr (data, "\"service\":\"js\"") != NULL);
    CHECK (strstr (data, "\"stream\":\"out\",\"seq\":1,") != NULL);
    CHECK (strstr (data, "\"line\":\"a\\ufffdb \\\"q\\\"\"}\n") != NULL);
    free (data);
    //  The ring keeps the bytes as written.
    const pm_logline_t *line = pm_logring_get (pm_logcap_ring (fx.cap), 1);
    CHECK (line && line->size == 7 && memcmp (line->data, "a\xff" "b \"q\"", 7) == 0);
    s_close (&fx);
}

static void
test_rotation_keeps_lines_whole (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    log.max_size = 4096;
    log.backups = 1;
    s_open (&fx, "rot", &log);
    char line [100];
    for (int i = 0; i < 100; i++) {
        int len = snprintf (line, sizeof line, "%04d %s\n", i,
                            "................................................"
                            "................................");
        s_write (fx.out_w, line, (size_t) len);
        if (i % 20 == 19)
            pm_logcap_drain (fx.cap);
    }
    pm_logcap_drain (fx.cap);
    size_t size, size1;
    char *current = s_file (fx.path, &size);
    char path1 [300];
    snprintf (path1, sizeof path1, "%s.1", fx.path);
    char *backup = s_file (path1, &size1);
    char path2 [300];
    snprintf (path2, sizeof path2, "%s.2", fx.path);
    struct stat st;
    CHECK (stat (path2, &st) == -1);    //  one backup kept
    CHECK (size > 0 && size <= 4096 && size1 > 0 && size1 <= 4096);
    //  Whole lines in both, and the current file ends with the last one.
    CHECK (size % 86 == 0 && size1 % 86 == 0);
    CHECK (strncmp (current + size - 86, "0099 ", 5) == 0);
    //  Contiguous across the rotation.
    int last_backup = atoi (backup + size1 - 86);
    CHECK (atoi (current) == last_backup + 1);
    free (current);
    free (backup);
    s_close (&fx);
}

//  How often text occurs in the file at path.
static int
s_count (const char *path, const char *text)
{
    size_t size;
    char *data = s_file (path, &size);
    int count = 0;
    for (char *p = data; (p = strstr (p, text)); p += strlen (text))
        count++;
    free (data);
    return count;
}

//  Writes lines first..last as "line NNNNN" padded to 100 bytes, in
//  batches of 20, each drained as the loop would.
static void
s_write_numbered (s_fixture_t *self, int first, int last)
{
    char line [128];
    for (int i = first; i <= last; i++) {
        int len = snprintf (line, sizeof line, "line %05d %088d\n", i, 0);
        CHECK (len == 100);
        s_write (self->out_w, line, (size_t) len);
        if ((i - first) % 20 == 19 || i == last)
            pm_logcap_drain (self->cap);
    }
}

//  A file that stops taking writes (here RLIMIT_FSIZE: EFBIG, with what
//  happens on a full disk: a write cut short, then errors): the lines
//  still reach the ring, the error is logged once, the file keeps whole
//  lines, and the first write that works again puts a marker first.
static void
test_write_failure_then_marker (void)
{
    struct rlimit saved;
    CHECK (getrlimit (RLIMIT_FSIZE, &saved) == 0);
    if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < (1 << 20)) {
        printf ("test_write_failure_then_marker: skipped: RLIMIT_FSIZE is "
                "already low\n");
        return;
    }
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    s_open (&fx, "full", &log);
    int errors_before = s_count (s_agent_log, "full: cannot write log file");
    struct rlimit low = saved;
    low.rlim_cur = 16384;             //  163 lines and 84 bytes of one
    CHECK (setrlimit (RLIMIT_FSIZE, &low) == 0);
    s_write_numbered (&fx, 0, 299);
    CHECK (setrlimit (RLIMIT_FSIZE, &saved) == 0);
    CHECK (pm_logring_last (pm_logcap_ring (fx.cap)) == 300);
    CHECK (s_count (s_agent_log, "full: cannot write log file")
           == errors_before + 1);
    s_write_numbered (&fx, 300, 309);
    size_t size;
    char *data = s_file (fx.path, &size);
    const char *marker = "pmd: 137 lines not written here (File too large); "
                         "they may still be in the agent's memory: pmctl "
                         "logs full\n";
    CHECK (size == 163 * 100 + strlen (marker) + 10 * 100);
    CHECK (size > 16300 && strncmp (data + 16200, "line 00162 ", 11) == 0);
    CHECK (size > 16300 && strncmp (data + 16300, marker, strlen (marker)) == 0);
    CHECK (strncmp (data + size - 100, "line 00309 ", 11) == 0);
    free (data);
    CHECK (s_count (s_agent_log, "full: writing log file") == 1);
    s_close (&fx);
}

//  A backup name that cannot be renamed over (a directory): the rotation
//  fails, is logged once, and every line stays in the current file; once
//  the name is free, rotation works again.
static void
test_rotation_rename_fails (void)
{
    s_fixture_t fx;
    pm_config_log_t log = s_settings (PM_LOG_TEXT, 1000);
    log.max_size = 4096;
    log.backups = 1;
    s_open (&fx, "stuck", &log);
    char backup [300];
    snprintf (backup, sizeof backup, "%s.1", fx.path);
    CHECK (mkdir (backup, 0700) == 0);
    s_write_numbered (&fx, 0, 99);
    size_t size;
    char *data = s_file (fx.path, &size);
    CHECK (size == 100 * 100);
    CHECK (strncmp (data, "line 00000 ", 11) == 0);
    free (data);
    CHECK (s_count (s_agent_log, "stuck: cannot rotate log file") == 1);
    CHECK (s_count (s_agent_log, backup) >= 1);
    CHECK (rmdir (backup) == 0);
    //  Tried again once the file grew by another log_max_size.
    s_write_numbered (&fx, 100, 199);
    struct stat st;
    CHECK (stat (backup, &st) == 0 && S_ISREG (st.st_mode));
    data = s_file (fx.path, &size);
    CHECK (size > 0 && size <= 4096 && size % 100 == 0);
    CHECK (size >= 100 && strncmp (data + size - 100, "line 00199 ", 11) == 0);
    free (data);
    s_close (&fx);
}

int
main (void)
{
    zsys_handler_set (NULL);
    snprintf (s_dir, sizeof s_dir, "/tmp/pmbus-test-logcap-XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    //  The agent's log, to count the errors it holds.
    snprintf (s_agent_log, sizeof s_agent_log, "%s/agent.log", s_dir);
    CHECK (pm_log_open_file (s_agent_log) == 0);
    signal (SIGXFSZ, SIG_IGN);
    test_lines_and_ring ();
    test_long_line_pieces ();
    test_other_stream_while_a_line_is_cut ();
    test_json_and_invalid_utf8 ();
    test_rotation_keeps_lines_whole ();
    test_write_failure_then_marker ();
    test_rotation_rename_fails ();
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    pm_log_close ();
    if (system (command) != 0)
        fprintf (stderr, "test_logcap: cannot remove %s\n", s_dir);
    return check_report ("test_logcap");
}
