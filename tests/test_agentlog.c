/*  test_agentlog.c - the agent's own log when its file stops taking lines

    RLIMIT_FSIZE stands in for a full disk (EFBIG instead of ENOSPC, the
    same path): lines the file does not take are counted, and the first
    line it takes again comes after a warning saying how many are missing.
*/
#include "agentlog.h"

#include "check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
s_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    char *data = calloc (1, 1 << 16);
    if (file) {
        size_t size = fread (data, 1, (1 << 16) - 1, file);
        data [size] = 0;
        fclose (file);
    }
    return data;
}

int
main (void)
{
    struct rlimit saved;
    CHECK (getrlimit (RLIMIT_FSIZE, &saved) == 0);
    if (saved.rlim_cur != RLIM_INFINITY) {
        printf ("test_agentlog: skipped: RLIMIT_FSIZE is set already\n");
        return 0;
    }
    char dir [64];
    snprintf (dir, sizeof dir, "/tmp/pmbus-test-agentlog-XXXXXX");
    if (!mkdtemp (dir))
        return 1;
    char path [128];
    snprintf (path, sizeof path, "%s/agent.log", dir);
    signal (SIGXFSZ, SIG_IGN);
    pm_log_setup ("t", false, PM_LOG_INFO);
    pm_log_quiet_stderr (true);
    CHECK (pm_log_open_file (path) == 0);
    pm_log_info ("one");
    struct stat st;
    CHECK (stat (path, &st) == 0);
    struct rlimit full = saved;
    full.rlim_cur = (rlim_t) st.st_size;
    CHECK (setrlimit (RLIMIT_FSIZE, &full) == 0);
    pm_log_error ("two");             //  neither is written, and neither
    pm_log_info ("three");            //  blocks nor fails the caller
    CHECK (setrlimit (RLIMIT_FSIZE, &saved) == 0);
    pm_log_info ("four");
    pm_log_info ("five");
    char *data = s_file (path);
    CHECK (strstr (data, "info: one\n") != NULL);
    CHECK (strstr (data, "two") == NULL && strstr (data, "three") == NULL);
    const char *marker = strstr (data, " warn: 2 lines of this log not "
                                       "written here (File too large)\n");
    CHECK (marker != NULL);
    const char *four = strstr (data, "info: four\n");
    CHECK (four != NULL && marker != NULL && four > marker);
    CHECK (four != NULL && strstr (four, "info: five\n") != NULL);
    const char *first = strstr (data, "lines of this log");
    CHECK (first && strstr (first + 1, "lines of this log") == NULL);
    free (data);
    pm_log_close ();
    unlink (path);
    rmdir (dir);
    return check_report ("test_agentlog");
}
