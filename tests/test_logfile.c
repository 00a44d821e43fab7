/*  test_logfile.c - a service's log file: whole entries, rotation, markers

    Entries are handed over as logcap hands them (whole, newline-ended).
    A file that stops taking writes is made with RLIMIT_FSIZE (EFBIG, and
    a write cut short at the limit, as on a full disk), so no root and no
    full disk is needed; SIGXFSZ is ignored, as the agent's is not needed.
*/
#include "logfile.h"
#include "agentlog.h"

#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir [64];

static pm_config_log_t
s_settings (pm_log_format_t format)
{
    pm_config_log_t log;
    memset (&log, 0, sizeof log);
    log.format = format;
    log.backups = 1;
    return log;
}

static char *
s_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        *size = 0;
        return strdup ("");
    }
    char *data = malloc (1 << 20);
    *size = fread (data, 1, (1 << 20) - 1, file);
    data [*size] = 0;
    fclose (file);
    return data;
}

//  Entries first..last, each "entry NNNN" padded to 50 bytes, in one
//  write as logcap does for a chunk.
static void
s_entries (pm_logfile_t *file, int first, int last)
{
    char buf [50 * 100];
    size_t at = 0;
    for (int i = first; i <= last; i++)
        at += (size_t) snprintf (buf + at, sizeof buf - at, "entry %04d %038d\n",
                                 i, 0);
    pm_logfile_write (file, buf, at);
}

//  A file for name in the test's directory (its path in path).
static pm_logfile_t *
s_new (const char *name, const pm_config_log_t *log, char *path, size_t size)
{
    snprintf (path, size, "%s/%s.log", s_dir, name);
    char err [256];
    pm_logfile_t *file = pm_logfile_new (name, path, log, NULL, err,
                                         sizeof err);
    CHECK (file);
    return file;
}

static void
s_limit (rlim_t bytes)
{
    struct rlimit limit;
    CHECK (getrlimit (RLIMIT_FSIZE, &limit) == 0);
    limit.rlim_cur = bytes;
    CHECK (setrlimit (RLIMIT_FSIZE, &limit) == 0);
}

//  A JSON file gets a JSON marker, with a field saying it is one; a write
//  cut mid-entry is cut back to the last whole entry.
static void
test_json_marker_and_whole_entries (void)
{
    char path [128];
    pm_config_log_t log = s_settings (PM_LOG_JSON);
    pm_logfile_t *file = s_new ("js", &log, path, sizeof path);
    s_limit (1025);                   //  20 entries and 25 bytes
    s_entries (file, 0, 29);          //  the 21st is cut at its middle
    CHECK (pm_logfile_missing (file) == 10);
    s_entries (file, 30, 39);         //  nothing written
    CHECK (pm_logfile_missing (file) == 20);
    s_limit (RLIM_INFINITY);
    s_entries (file, 40, 41);
    CHECK (pm_logfile_missing (file) == 0);
    size_t size;
    char *data = s_file (path, &size);
    CHECK (size > 1000 && data [999] == '\n');
    CHECK (size > 1000 && strncmp (data + 950, "entry 0019 ", 11) == 0);
    const char *marker = size > 1000 ? data + 1000 : "";
    CHECK (strncmp (marker, "{\"ts\":", 6) == 0);
    CHECK (strstr (marker, ",\"service\":\"js\",\"marker\":true,\"missing\""
                           ":20,\"line\":\"pmd: 20 lines not written here "
                           "(File too large); they may still be in the "
                           "agent's memory: pmctl logs js\"}\nentry 0040 ")
           == marker + 23);
    CHECK (size >= 100 && strncmp (data + size - 50, "entry 0041 ", 11) == 0);
    free (data);
    pm_logfile_destroy (&file);
    CHECK (file == NULL);
}

//  After a failed rotation the file is full again only after another
//  log_max_size bytes, not at every entry.
static void
test_failed_rotation_waits (void)
{
    char path [128], backup [160];
    pm_config_log_t log = s_settings (PM_LOG_TEXT);
    log.max_size = 1000;
    pm_logfile_t *file = s_new ("wait", &log, path, sizeof path);
    snprintf (backup, sizeof backup, "%s.1", path);
    s_entries (file, 0, 19);
    CHECK (pm_logfile_is_full (file, 0, 50));
    CHECK (mkdir (backup, 0700) == 0);
    pm_logfile_rotate (file);         //  fails: the current file stays
    CHECK (!pm_logfile_is_full (file, 0, 50));
    CHECK (!pm_logfile_is_full (file, 950, 50));
    CHECK (pm_logfile_is_full (file, 951, 50));
    s_entries (file, 20, 39);
    size_t size;
    char *data = s_file (path, &size);
    CHECK (size == 40 * 50);
    free (data);
    CHECK (pm_logfile_is_full (file, 0, 50));
    CHECK (rmdir (backup) == 0);
    pm_logfile_rotate (file);
    CHECK (!pm_logfile_is_full (file, 0, 50));
    data = s_file (backup, &size);
    CHECK (size == 40 * 50);
    free (data);
    pm_logfile_destroy (&file);
}

//  A new path is opened (its directory made); a path that cannot be
//  opened keeps the current file.
static void
test_reopen (void)
{
    char path [128], other [128], bad [128], err [256];
    pm_config_log_t log = s_settings (PM_LOG_TEXT);
    pm_logfile_t *file = s_new ("a", &log, path, sizeof path);
    snprintf (other, sizeof other, "%s/sub/dir/b.log", s_dir);
    snprintf (bad, sizeof bad, "%s/a.log/c.log", s_dir);
    s_entries (file, 0, 0);
    CHECK (pm_logfile_reopen (file, bad, err, sizeof err) == -1);
    CHECK (strstr (err, "a.log") != NULL);
    s_entries (file, 1, 1);
    CHECK (pm_logfile_reopen (file, other, err, sizeof err) == 0);
    s_entries (file, 2, 2);
    size_t size;
    char *data = s_file (path, &size);
    CHECK (size == 100);
    free (data);
    data = s_file (other, &size);
    CHECK (size == 50 && strncmp (data, "entry 0002 ", 11) == 0);
    free (data);
    pm_logfile_destroy (&file);
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/pmbus-test-logfile-XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    signal (SIGXFSZ, SIG_IGN);
    struct rlimit limit;
    CHECK (getrlimit (RLIMIT_FSIZE, &limit) == 0);
    if (limit.rlim_max != RLIM_INFINITY)
        printf ("test_logfile: skipped the write failures: RLIMIT_FSIZE's "
                "hard limit is set\n");
    else
        test_json_marker_and_whole_entries ();
    test_failed_rotation_waits ();
    test_reopen ();
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    if (system (command) != 0)
        fprintf (stderr, "test_logfile: cannot remove %s\n", s_dir);
    return check_report ("test_logfile");
}
