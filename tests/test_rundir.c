/*  test_rundir.c - unit tests of proto/pm_rundir.c

    The naming rule (stem, pmbus.cfg, sanitising, hash), the runtime
    directory rule (XDG_RUNTIME_DIR or /tmp/pmbus-<uid>, --runtime-dir,
    endpoint overrides, sun_path limit), directory creation and modes, the
    liveness test on the lock (no file, free lock, lock held by another
    open file description and by another process) and the pid file.
    Everything happens under a fresh directory in /tmp, removed at the end.
*/
#include "pm_rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int s_checks;

#define CHECK(cond) do {                                                   \
    s_checks++;                                                            \
    if (!(cond)) {                                                         \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                 #cond);                                                   \
        exit (1);                                                          \
    }                                                                      \
} while (0)

static char s_tmp [64];                 //  this run's scratch directory

//  The hash the header specifies: 64-bit FNV-1a of the whole path; the
//  name carries its top 32 bits as 8 hex digits.
static uint64_t
s_fnv1a (const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        hash ^= *p;
        hash *= 1099511628211ULL;
    }
    return hash;
}

static void
s_expect_name (const char *path, const char *stem)
{
    char name [128];
    char want [128];
    snprintf (want, sizeof want, "%s-%08" PRIx32, stem,
              (uint32_t) (s_fnv1a (path) >> 32));
    CHECK (pm_agent_name_derive (path, name, sizeof name) == 0);
    if (strcmp (name, want) != 0) {
        fprintf (stderr, "%s: got '%s', want '%s'\n", path, name, want);
        exit (1);
    }
    CHECK (pm_agent_name_valid (name));
}

static void
test_derive (void)
{
    //  The reference vectors of FNV-1a 64, so the helper above is right.
    CHECK (s_fnv1a ("") == 0xcbf29ce484222325ULL);
    CHECK (s_fnv1a ("a") == 0xaf63dc4c8601ec8cULL);

    s_expect_name ("/home/me/proj/dev.cfg", "dev");
    s_expect_name ("/home/me/proj/conf/demo.cfg", "demo");
    s_expect_name ("/etc/pm/noext", "noext");
    //  The stem stops at the first dot.
    s_expect_name ("/srv/app.prod.cfg", "app");
    //  pmbus.cfg says nothing: the directory names the agent.
    s_expect_name ("/home/me/shop/pmbus.cfg", "shop");
    s_expect_name ("/home/me/shop/pmbus", "shop");
    s_expect_name ("/home/me/my shop!/pmbus.cfg", "my_shop_");
    s_expect_name ("/pmbus.cfg", "pmbus");
    s_expect_name ("/x/pmbus2.cfg", "pmbus2");
    //  Sanitising: anything outside [A-Za-z0-9._-] becomes '_'.
    s_expect_name ("/x/my app (v2).cfg", "my_app__v2_");
    s_expect_name ("/x/caf\xc3\xa9.cfg", "caf__");
    s_expect_name ("/x/a_b-C9.cfg", "a_b-C9");
    //  A leading dot would hide the directory: it becomes '_'.
    s_expect_name ("/x/.hidden", "_hidden");
    //  At most 32 bytes of stem.
    s_expect_name ("/x/abcdefghijklmnopqrstuvwxyz0123456789.cfg",
                   "abcdefghijklmnopqrstuvwxyz012345");
    //  Same stem, different directories: different names.
    char one [64], two [64];
    CHECK (pm_agent_name_derive ("/a/dev.cfg", one, sizeof one) == 0);
    CHECK (pm_agent_name_derive ("/b/dev.cfg", two, sizeof two) == 0);
    CHECK (strcmp (one, two) != 0);
    CHECK (strncmp (one, "dev-", 4) == 0 && strlen (one) == 12);
    //  Output buffer: exactly enough, and one byte short.
    char small [13];
    CHECK (pm_agent_name_derive ("/a/dev.cfg", small, 13) == 0);
    CHECK (strcmp (small, one) == 0);
    CHECK (pm_agent_name_derive ("/a/dev.cfg", small, 12) == -1);

    CHECK (pm_agent_name_valid ("demo"));
    CHECK (pm_agent_name_valid ("a.b_c-D9"));
    CHECK (!pm_agent_name_valid (""));
    CHECK (!pm_agent_name_valid (NULL));
    CHECK (!pm_agent_name_valid (".demo"));
    CHECK (!pm_agent_name_valid ("de/mo"));
    CHECK (!pm_agent_name_valid ("de mo"));
    char name [80];
    memset (name, 'n', 64);
    name [64] = 0;
    CHECK (pm_agent_name_valid (name));
    name [64] = 'n';
    name [65] = 0;
    CHECK (!pm_agent_name_valid (name));
}

static void
test_paths (void)
{
    pm_paths_t paths;
    char err [512];
    char want [PM_PATH_MAX];

    CHECK (setenv ("XDG_RUNTIME_DIR", "/run/user/4242", 1) == 0);
    CHECK (pm_paths_init (&paths, "demo", NULL, NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strcmp (paths.dir, "/run/user/4242/pmbus/demo") == 0);
    CHECK (strcmp (paths.control,
                   "ipc:///run/user/4242/pmbus/demo/control.sock") == 0);
    CHECK (strcmp (paths.events,
                   "ipc:///run/user/4242/pmbus/demo/events.sock") == 0);
    CHECK (strcmp (paths.lock, "/run/user/4242/pmbus/demo/pmd.lock") == 0);
    CHECK (strcmp (paths.pidfile, "/run/user/4242/pmbus/demo/pmd.pid") == 0);

    //  Without XDG_RUNTIME_DIR (or with an empty or relative one):
    //  /tmp/pmbus-<uid>.
    snprintf (want, sizeof want, "/tmp/pmbus-%u/demo", (unsigned) getuid ());
    CHECK (unsetenv ("XDG_RUNTIME_DIR") == 0);
    CHECK (pm_paths_init (&paths, "demo", NULL, NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strcmp (paths.dir, want) == 0);
    setenv ("XDG_RUNTIME_DIR", "", 1);
    CHECK (pm_paths_init (&paths, "demo", NULL, NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strcmp (paths.dir, want) == 0);
    setenv ("XDG_RUNTIME_DIR", "relative/dir", 1);
    CHECK (pm_paths_init (&paths, "demo", NULL, NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strcmp (paths.dir, want) == 0);

    //  --runtime-dir wins over both, trailing slashes dropped; an empty
    //  one counts as not given.
    setenv ("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    CHECK (pm_paths_init (&paths, "demo", "/srv/rt//", NULL, NULL, err,
                          sizeof err) == 0);
    CHECK (strcmp (paths.dir, "/srv/rt") == 0);
    CHECK (strcmp (paths.control, "ipc:///srv/rt/control.sock") == 0);
    CHECK (strcmp (paths.lock, "/srv/rt/pmd.lock") == 0);
    CHECK (pm_paths_init (&paths, "demo", "", NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strcmp (paths.dir, "/run/user/4242/pmbus/demo") == 0);

    //  Endpoint overrides, TCP or ipc; an empty one counts as not given.
    CHECK (pm_paths_init (&paths, "demo", NULL, "tcp://127.0.0.1:7000",
                          "tcp://127.0.0.1:7001", err, sizeof err) == 0);
    CHECK (strcmp (paths.control, "tcp://127.0.0.1:7000") == 0);
    CHECK (strcmp (paths.events, "tcp://127.0.0.1:7001") == 0);
    CHECK (strcmp (paths.lock, "/run/user/4242/pmbus/demo/pmd.lock") == 0);
    CHECK (pm_paths_init (&paths, "demo", NULL, "ipc:///tmp/c.sock", "",
                          err, sizeof err) == 0);
    CHECK (strcmp (paths.control, "ipc:///tmp/c.sock") == 0);
    CHECK (strcmp (paths.events,
                   "ipc:///run/user/4242/pmbus/demo/events.sock") == 0);

    //  sun_path: 107 bytes of path fit, 108 do not, and the message names
    //  the path.
    char dir [PM_PATH_MAX];
    size_t fixed = strlen ("/control.sock");
    memset (dir, 'd', sizeof dir);
    dir [0] = '/';
    dir [PM_SUN_PATH_MAX - fixed] = 0;
    CHECK (pm_paths_init (&paths, "demo", dir, NULL, NULL, err, sizeof err)
           == 0);
    CHECK (strlen (paths.control) - 6 == PM_SUN_PATH_MAX);
    dir [PM_SUN_PATH_MAX - fixed] = 'd';
    dir [PM_SUN_PATH_MAX - fixed + 1] = 0;
    err [0] = 0;
    CHECK (pm_paths_init (&paths, "demo", dir, NULL, NULL, err, sizeof err)
           == -1);
    CHECK (strstr (err, dir) != NULL);
    CHECK (strstr (err, "control") != NULL);
    CHECK (strstr (err, "108 bytes") != NULL);
    //  The same for an overriding events endpoint.
    char endpoint [PM_PATH_MAX];
    memset (endpoint, 'e', sizeof endpoint);
    memcpy (endpoint, "ipc:///", 7);
    endpoint [6 + PM_SUN_PATH_MAX + 1] = 0;
    CHECK (pm_paths_init (&paths, "demo", "/srv/rt", NULL, endpoint, err,
                          sizeof err) == -1);
    CHECK (strstr (err, "events") != NULL);
    CHECK (strstr (err, endpoint + 6) != NULL);
    //  A long name under XDG_RUNTIME_DIR hits the same limit.
    char name [100];
    memset (name, 'n', 99);
    name [99] = 0;
    CHECK (pm_paths_init (&paths, name, NULL, NULL, NULL, err, sizeof err)
           == -1);
    CHECK (strstr (err, name) != NULL);
    //  ...but TCP endpoints do not care how long the directory is.
    CHECK (pm_paths_init (&paths, name, NULL, "tcp://127.0.0.1:1",
                          "tcp://127.0.0.1:2", err, sizeof err) == 0);
    //  A directory path too long for the buffers is refused too.
    char huge [PM_PATH_MAX + 10];
    memset (huge, 'h', sizeof huge - 1);
    huge [0] = '/';
    huge [sizeof huge - 1] = 0;
    CHECK (pm_paths_init (&paths, "demo", huge, NULL, NULL, err, sizeof err)
           == -1);
    CHECK (strlen (err) > 0);
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    CHECK (lstat (path, &st) == 0);
    return st.st_mode;
}

static void
test_make (void)
{
    pm_paths_t paths;
    char err [512];
    char rundir [PM_PATH_MAX];

    //  Under XDG_RUNTIME_DIR: the base (pmbus) and the agent directory
    //  are created, both 0700.
    setenv ("XDG_RUNTIME_DIR", s_tmp, 1);
    CHECK (pm_paths_init (&paths, "demo", NULL, NULL, NULL, err, sizeof err)
           == 0);
    umask (022);
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);
    CHECK (S_ISDIR (s_mode (paths.dir)));
    CHECK ((s_mode (paths.dir) & 07777) == 0700);
    snprintf (rundir, sizeof rundir, "%s/pmbus", s_tmp);
    CHECK ((s_mode (rundir) & 07777) == 0700);
    //  Again: nothing to do, still fine.
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);
    //  A directory others can read is made private.
    CHECK (chmod (paths.dir, 0755) == 0);
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);
    CHECK ((s_mode (paths.dir) & 07777) == 0700);

    //  --runtime-dir with missing parents: all created.
    snprintf (rundir, sizeof rundir, "%s/deep/er/rt", s_tmp);
    CHECK (pm_paths_init (&paths, "demo", rundir, NULL, NULL, err,
                          sizeof err) == 0);
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);
    CHECK ((s_mode (rundir) & 07777) == 0700);

    //  A file where the directory should be.
    snprintf (rundir, sizeof rundir, "%s/afile", s_tmp);
    int fd = open (rundir, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    CHECK (fd >= 0);
    close (fd);
    CHECK (pm_paths_init (&paths, "demo", rundir, NULL, NULL, err,
                          sizeof err) == 0);
    err [0] = 0;
    CHECK (pm_rundir_make (&paths, err, sizeof err) == -1);
    CHECK (strstr (err, rundir) && strstr (err, "not a directory"));
    //  A file in the way of a parent.
    snprintf (rundir, sizeof rundir, "%s/afile/sub", s_tmp);
    CHECK (pm_paths_init (&paths, "demo", rundir, NULL, NULL, err,
                          sizeof err) == 0);
    err [0] = 0;
    CHECK (pm_rundir_make (&paths, err, sizeof err) == -1);
    CHECK (strlen (err) > 0);
}

static void
test_lock (void)
{
    pm_paths_t paths;
    char err [512];
    char rundir [PM_PATH_MAX];
    snprintf (rundir, sizeof rundir, "%s/lockdir", s_tmp);
    CHECK (pm_paths_init (&paths, "demo", rundir, NULL, NULL, err,
                          sizeof err) == 0);
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);

    //  No lock file: not running.
    CHECK (pm_rundir_agent_running (&paths) == 0);
    //  A lock file nobody holds: not running.
    int fd = open (paths.lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    CHECK (fd >= 0);
    CHECK (pm_rundir_agent_running (&paths) == 0);
    //  Held (exclusively, as the agent does) through another open file
    //  description of this process: running.
    CHECK (flock (fd, LOCK_EX | LOCK_NB) == 0);
    CHECK (pm_rundir_agent_running (&paths) == 1);
    CHECK (flock (fd, LOCK_UN) == 0);
    CHECK (pm_rundir_agent_running (&paths) == 0);
    close (fd);

    //  Held by another process: running while it lives, free after.
    int ready [2], done [2];
    CHECK (pipe (ready) == 0 && pipe (done) == 0);
    pid_t pid = fork ();
    CHECK (pid >= 0);
    if (pid == 0) {
        //  Only the parent may hold the write end, or EOF never comes.
        close (done [1]);
        close (ready [0]);
        int child_fd = open (paths.lock, O_RDWR | O_CLOEXEC);
        if (child_fd < 0 || flock (child_fd, LOCK_EX) != 0)
            _exit (1);
        char byte = 'r';
        if (write (ready [1], &byte, 1) != 1)
            _exit (1);
        //  Hold the lock until the parent closes its end.
        (void) read (done [0], &byte, 1);
        _exit (0);
    }
    close (ready [1]);
    close (done [0]);
    char byte;
    CHECK (read (ready [0], &byte, 1) == 1);
    CHECK (pm_rundir_agent_running (&paths) == 1);
    close (done [1]);
    int status;
    CHECK (waitpid (pid, &status, 0) == pid);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (ready [0]);
    CHECK (pm_rundir_agent_running (&paths) == 0);

    //  A lock path that cannot be opened for a reason other than
    //  "missing": an error, not an answer.
    pm_paths_t bad = paths;
    snprintf (bad.lock, sizeof bad.lock, "%s/pmd.lock/inside", rundir);
    CHECK (pm_rundir_agent_running (&bad) == -1);

    //  The pid file.
    CHECK (pm_rundir_read_pid (&paths) == 0);
    FILE *file = fopen (paths.pidfile, "w");
    CHECK (file);
    fprintf (file, "4321\n");
    fclose (file);
    CHECK (pm_rundir_read_pid (&paths) == 4321);
    file = fopen (paths.pidfile, "w");
    fprintf (file, "garbage\n");
    fclose (file);
    CHECK (pm_rundir_read_pid (&paths) == 0);
    file = fopen (paths.pidfile, "w");
    fprintf (file, "-5\n");
    fclose (file);
    CHECK (pm_rundir_read_pid (&paths) == 0);
}

//  Writes text to path.
static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    CHECK (file);
    CHECK (fputs (text, file) >= 0);
    CHECK (fclose (file) == 0);
}

//  The agent's record (pm_loaded_t): written, read back, found by path.
static void
test_record (void)
{
    pm_loaded_t record, back;
    memset (&record, 0, sizeof record);
    snprintf (record.path, sizeof record.path, "/srv/app/pmbus.cfg");
    record.has_id = true;
    record.id = (pm_file_id_t) { 2049, 1234567, 8066,
                                 1796303052883064116LL, -1 };
    snprintf (record.control, sizeof record.control, "ipc:///r/c.sock");
    snprintf (record.events, sizeof record.events, "tcp://127.0.0.1:7711");
    char text [PM_PATH_MAX * 4];
    int len = pm_loaded_format (&record, text, sizeof text);
    CHECK (len > 0 && (size_t) len == strlen (text));
    CHECK (strcmp (text, "/srv/app/pmbus.cfg\n2049 1234567 8066 "
                   "1796303052883064116 -1\nipc:///r/c.sock\n"
                   "tcp://127.0.0.1:7711\n") == 0);
    CHECK (pm_loaded_format (&record, text, 20) == -1);

    char file [PM_PATH_MAX];
    snprintf (file, sizeof file, "%s/record", s_tmp);
    CHECK (pm_loaded_format (&record, text, sizeof text) > 0);
    s_write (file, text);
    CHECK (pm_loaded_read (file, &back) == 0);
    CHECK (strcmp (back.path, record.path) == 0);
    CHECK (back.has_id && pm_file_id_equal (&back.id, &record.id));
    CHECK (strcmp (back.control, record.control) == 0);
    CHECK (strcmp (back.events, record.events) == 0);

    //  Identity unknown ("-"), an older agent's record (the path alone),
    //  a damaged identity: read, with no identity.
    record.has_id = false;
    CHECK (pm_loaded_format (&record, text, sizeof text) > 0);
    CHECK (strstr (text, "\n-\n"));
    s_write (file, text);
    CHECK (pm_loaded_read (file, &back) == 0 && !back.has_id);
    CHECK (strcmp (back.events, record.events) == 0);
    s_write (file, "/srv/app/pmbus.cfg\n");
    CHECK (pm_loaded_read (file, &back) == 0 && !back.has_id);
    CHECK (strcmp (back.path, "/srv/app/pmbus.cfg") == 0);
    CHECK (back.control [0] == 0 && back.events [0] == 0);
    s_write (file, "/a\n1 2 3 x 5\nipc:///c\nipc:///e\n");
    CHECK (pm_loaded_read (file, &back) == 0 && !back.has_id);
    s_write (file, "/a\n1 2 3 4 5 6\nipc:///c\nipc:///e\n");
    CHECK (pm_loaded_read (file, &back) == 0 && !back.has_id);
    //  No line at all, a path with no newline, no file.
    s_write (file, "");
    CHECK (pm_loaded_read (file, &back) == -1);
    s_write (file, "/a");
    CHECK (pm_loaded_read (file, &back) == -1);
    unlink (file);
    CHECK (pm_loaded_read (file, &back) == -1);

    //  Identities: any field differing is another file, or a change.
    pm_file_id_t a = { 1, 2, 3, 4, 5 };
    for (int i = 0; i < 5; i++) {
        pm_file_id_t b = a;
        uint64_t *u = &b.dev;
        if (i < 3)
            u [i]++;
        else
        if (i == 3)
            b.mtime_ns++;
        else
            b.ctime_ns++;
        CHECK (!pm_file_id_equal (&a, &b));
    }
    struct stat st;
    CHECK (stat (s_tmp, &st) == 0);
    pm_file_id_of (&st, &a);
    CHECK (a.ino == (uint64_t) st.st_ino && a.dev == (uint64_t) st.st_dev);
    CHECK (a.mtime_ns == (int64_t) st.st_mtim.tv_sec * 1000000000
                       + st.st_mtim.tv_nsec);

    //  Found by the config path: only a live agent's (its lock held).
    char base [PM_PATH_MAX], rundir [PM_PATH_MAX], name [128];
    snprintf (base, sizeof base, "%s/xdg", s_tmp);
    CHECK (mkdir (base, 0700) == 0);
    setenv ("XDG_RUNTIME_DIR", base, 1);
    pm_paths_t paths;
    char err [512];
    CHECK (pm_paths_init (&paths, "live", NULL, NULL, NULL, err,
                          sizeof err) == 0);
    CHECK (pm_rundir_make (&paths, err, sizeof err) == 0);
    snprintf (rundir, sizeof rundir, "%s", paths.dir);
    record.has_id = true;
    CHECK (pm_loaded_format (&record, text, sizeof text) > 0);
    s_write (paths.config, text);
    CHECK (pm_rundir_find_by_config (record.path, name, sizeof name,
                                     &back) == -1);
    int fd = open (paths.lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    CHECK (fd >= 0 && flock (fd, LOCK_EX | LOCK_NB) == 0);
    memset (&back, 0, sizeof back);
    CHECK (pm_rundir_find_by_config (record.path, name, sizeof name,
                                     &back) == 0);
    CHECK (strcmp (name, "live") == 0 && back.has_id);
    CHECK (strcmp (back.events, record.events) == 0);
    CHECK (pm_rundir_find_by_config ("/srv/other.cfg", name, sizeof name,
                                     NULL) == -1);
    close (fd);
    unsetenv ("XDG_RUNTIME_DIR");
}

//  Removes what the tests made (a small tree; no symlinks are created).
static void
s_remove_tree (const char *path)
{
    char command [PM_PATH_MAX + 16];
    snprintf (command, sizeof command, "rm -rf '%s'", path);
    if (system (command) != 0)
        fprintf (stderr, "test_rundir: could not remove %s\n", path);
}

int
main (void)
{
    alarm (30);                 //  a stuck lock test fails, never hangs
    snprintf (s_tmp, sizeof s_tmp, "/tmp/pm-test-rundir-XXXXXX");
    CHECK (mkdtemp (s_tmp) != NULL);
    test_derive ();
    test_paths ();
    test_make ();
    test_lock ();
    test_record ();
    s_remove_tree (s_tmp);
    printf ("test_rundir: %d checks passed\n", s_checks);
    return 0;
}
