/*  test_spawn.c - unit tests of the child's setup in spawn.c

    Runs pm_spawn_run for real (fork, exec of /bin/true, /bin/sleep,
    /bin/sh) and checks what a service gets and what a start failure says.

    The window before setsid is made reachable by interposing setsid: this
    executable defines it, so the call in spawn.c lands here (in the
    child), where a test can send the child the signal a terminal's ^C
    would send the agent's process group, kill it, or fail, before the
    real setsid runs.
*/
#include "spawn.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum {
    SETSID_REAL,              //  just the real call
    SETSID_SIGINT_FIRST,      //  SIGINT to ourselves, then the real call
    SETSID_SIGKILL_FIRST,     //  SIGKILL to ourselves
    SETSID_FAIL               //  fail with EPERM
} setsid_mode_t;

//  Set in the parent before a spawn; the child sees the copy fork made.
static volatile setsid_mode_t s_setsid_mode = SETSID_REAL;

pid_t
setsid (void)
{
    switch (s_setsid_mode) {
        case SETSID_SIGINT_FIRST:
            kill (getpid (), SIGINT);
            break;
        case SETSID_SIGKILL_FIRST:
            kill (getpid (), SIGKILL);
            break;
        case SETSID_FAIL:
            errno = EPERM;
            return -1;
        case SETSID_REAL:
            break;
    }
    return (pid_t) syscall (SYS_setsid);
}

static pm_config_service_t
s_spec (char **argv)
{
    pm_config_service_t spec;
    memset (&spec, 0, sizeof spec);
    spec.name = "t";
    spec.argv = argv;
    spec.working_dir = "/";
    return spec;
}

static int
s_spawn (char **argv, int notify_fd, pm_spawn_result_t *result, char *err,
         size_t errlen)
{
    pm_config_service_t spec = s_spec (argv);
    pm_spawn_options_t options = { NULL, true, notify_fd };
    err [0] = 0;
    return pm_spawn_run (&spec, &options, result, err, errlen);
}

//  The child's wait status, or -1.
static int
s_reap (pid_t pid)
{
    int status;
    pid_t rc;
    do
        rc = waitpid (pid, &status, 0);
    while (rc == -1 && errno == EINTR);
    return rc == pid ? status : -1;
}

static void
s_close_result (pm_spawn_result_t *result)
{
    if (result->notify_fd != -1)
        close (result->notify_fd);
}

//  The hexadecimal mask of field ("SigBlk:") in /proc/pid/status, or
//  ULLONG_MAX if it cannot be read.
static unsigned long long
s_status_mask (pid_t pid, const char *field)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "re");
    if (!file)
        return ULLONG_MAX;
    char line [256];
    unsigned long long mask = ULLONG_MAX;
    size_t len = strlen (field);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0) {
            mask = strtoull (line + len, NULL, 16);
            break;
        }
    fclose (file);
    return mask;
}

//  Blocks what the agent blocks (reaper.c), as pm_spawn_run expects.
static void
s_block_agent_signals (sigset_t *saved)
{
    sigset_t blocked;
    sigemptyset (&blocked);
    sigaddset (&blocked, SIGCHLD);
    sigaddset (&blocked, SIGTERM);
    sigaddset (&blocked, SIGINT);
    sigaddset (&blocked, SIGHUP);
    sigprocmask (SIG_BLOCK, &blocked, saved);
}

//  The agent's signal setup (blocked, SIGPIPE ignored) and more: after
//  exec the service has an empty mask, nothing pending, and every
//  disposition at its default (SIG_IGN, unlike a handler, would survive
//  exec).  Guards the order of the child's setup: the mask is emptied
//  last, and nothing is left behind.
//  True once field of pid's status reads 0, within 2 s (200 reads).
static bool
s_mask_clean (pid_t pid, const char *field)
{
    for (int i = 0; i < 200; i++) {
        if (s_status_mask (pid, field) == 0)
            return true;
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        nanosleep (&pause, NULL);
    }
    return false;
}

static void
test_clean_slate (void)
{
    sigset_t saved;
    s_block_agent_signals (&saved);
    //  What the agent may inherit ignored (nohup, a CI runner): SIGHUP,
    //  SIGPIPE, any signal, even the C library's own two.
    struct sigaction ignore, old_pipe, old_usr1, old_hup;
    memset (&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigaction (SIGPIPE, &ignore, &old_pipe);
    sigaction (SIGUSR1, &ignore, &old_usr1);
    sigaction (SIGHUP, &ignore, &old_hup);
    pm_spawn_set_disposition (32, SIG_IGN);
    pm_spawn_set_disposition (33, SIG_IGN);

    char *argv [] = { "/bin/sleep", "30", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn (argv, 0, &result, err, sizeof err);
    CHECK (rc == 0);
    if (rc == 0) {
        //  pm_spawn_run returns after exec: this is sleep's status.
        char exe [PATH_MAX], path [64], want [PATH_MAX];
        snprintf (path, sizeof path, "/proc/%d/exe", (int) result.pid);
        ssize_t len = readlink (path, exe, sizeof exe - 1);
        CHECK (len > 0);
        exe [len > 0 ? len : 0] = 0;
        CHECK (realpath ("/bin/sleep", want) && strcmp (exe, want) == 0);
        //  Once seen clean (bounded: 2 s); under load the first read
        //  was once seen to race with the end of the exec.
        CHECK (s_mask_clean (result.pid, "SigBlk:"));
        //  Nothing ignored: before the fix, the C library's two signals
        //  stayed as the agent's parent left them (the CI runner's).
        CHECK (s_mask_clean (result.pid, "SigIgn:"));
        CHECK (s_mask_clean (result.pid, "SigCgt:"));
        CHECK (s_mask_clean (result.pid, "SigPnd:"));
        CHECK (s_mask_clean (result.pid, "ShdPnd:"));
        //  Its own session and process group.
        CHECK (getsid (result.pid) == result.pid);
        CHECK (getpgid (result.pid) == result.pid);
        kill (result.pid, SIGKILL);
        int status = s_reap (result.pid);
        CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    }
    sigaction (SIGPIPE, &old_pipe, NULL);
    sigaction (SIGUSR1, &old_usr1, NULL);
    sigaction (SIGHUP, &old_hup, NULL);
    pm_spawn_set_disposition (32, SIG_DFL);
    pm_spawn_set_disposition (33, SIG_DFL);
    sigprocmask (SIG_SETMASK, &saved, NULL);
}

//  A SIGINT that reaches the child before setsid (a ^C sent to the
//  agent's process group) neither kills it before exec nor reaches the
//  service: it was blocked, then dropped.  Before the fix the child
//  emptied its mask first and died of it, and the start read as a
//  success.
static void
test_sigint_before_setsid (void)
{
    sigset_t saved;
    s_block_agent_signals (&saved);
    char *argv [] = { "/bin/true", NULL };
    pm_spawn_result_t result;
    char err [256];
    s_setsid_mode = SETSID_SIGINT_FIRST;
    int rc = s_spawn (argv, 0, &result, err, sizeof err);
    s_setsid_mode = SETSID_REAL;
    CHECK (rc == 0);
    if (rc == 0) {
        int status = s_reap (result.pid);
        if (!(WIFEXITED (status) && WEXITSTATUS (status) == 0))
            fprintf (stderr, "true ended with status %#x (signal %d)\n",
                     status, WIFSIGNALED (status) ? WTERMSIG (status) : 0);
        CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    else
        fprintf (stderr, "spawn: %s\n", err);
    sigprocmask (SIG_SETMASK, &saved, NULL);
}

//  Spawns argv with setsid in mode, then back to the real one.
static int
s_spawn_setsid (setsid_mode_t mode, char **argv, pm_spawn_result_t *result,
                char *err, size_t errlen)
{
    s_setsid_mode = mode;
    int rc = s_spawn (argv, 0, result, err, errlen);
    s_setsid_mode = SETSID_REAL;
    return rc;
}

//  Checks that a spawn failed with the message want and that no child of
//  ours is left (pm_spawn_run reaped it).
static void
s_expect_failure (int rc, pm_spawn_result_t *result, const char *err,
                  const char *want)
{
    CHECK (rc == -1);
    if (rc == 0) {
        int status = s_reap (result->pid);
        fprintf (stderr, "spawn succeeded; the child ended with %#x\n",
                 status);
        s_close_result (result);
    }
    CHECK (strcmp (err, want) == 0);
    if (strcmp (err, want) != 0)
        fprintf (stderr, "expected: %s\n     got: %s\n", want, err);
    CHECK (waitpid (-1, NULL, WNOHANG) == -1 && errno == ECHILD);
}

//  A child that dies before exec, without a word on the status pipe, is
//  a failed start: the end of the pipe alone is not success.
static void
test_killed_before_exec (void)
{
    char *argv [] = { "/bin/true", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn_setsid (SETSID_SIGKILL_FIRST, argv, &result, err,
                             sizeof err);
    s_expect_failure (rc, &result, err, "killed by SIGKILL before exec");
}

//  A failed setsid is told by name.
static void
test_setsid_fails (void)
{
    char *argv [] = { "/bin/true", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn_setsid (SETSID_FAIL, argv, &result, err, sizeof err);
    s_expect_failure (rc, &result, err, "setsid: Operation not permitted");
}

//  Runs one spawn under a soft RLIMIT_NOFILE of limit; restores it.
static int
s_spawn_limited (rlim_t limit, char **argv, int notify_fd,
                 pm_spawn_result_t *result, char *err, size_t errlen)
{
    struct rlimit saved, low;
    if (getrlimit (RLIMIT_NOFILE, &saved) == -1)
        return -2;
    low = saved;
    low.rlim_cur = limit;
    if (setrlimit (RLIMIT_NOFILE, &low) == -1)
        return -2;
    int rc = s_spawn (argv, notify_fd, result, err, errlen);
    setrlimit (RLIMIT_NOFILE, &saved);
    return rc;
}

//  A notify descriptor the child cannot have (over its descriptor limit)
//  is a failed start naming notify_fd and dup2.
static void
test_notify_fd_over_limit (void)
{
    char *argv [] = { "/bin/true", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn_limited (64, argv, 100, &result, err, sizeof err);
    s_expect_failure (rc, &result, err,
                      "dup2 onto notify_fd 100: Bad file descriptor");
}

static bool
s_fd_free (int fd)
{
    return fcntl (fd, F_GETFD) == -1 && errno == EBADF;
}

//  The status pipe's write end lands on the notify descriptor and cannot
//  be moved out of its way (no descriptor free above it): before the fix
//  the child exited 127 without a word, read as a successful start.
//  pm_spawn_run (quiet) opens /dev/null, then the status pipe, then the
//  notify pipe, each at the lowest free descriptors: with a..a+4 free
//  and the limit at a+5, the status pipe's write end is a+2 and nothing
//  is free above it.
static void
test_status_pipe_cannot_move (void)
{
    int probe = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK (probe >= 3);
    if (probe < 3)
        return;
    close (probe);
    int a = probe;
    for (int fd = a; fd < a + 5; fd++)
        if (!s_fd_free (fd)) {
            fprintf (stderr, "SKIP test_status_pipe_cannot_move: fd %d is "
                     "in use, the layout cannot be arranged\n", fd);
            return;
        }
    char *argv [] = { "/bin/true", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn_limited ((rlim_t) a + 5, argv, a + 2, &result, err,
                              sizeof err);
    char want [128];
    snprintf (want, sizeof want, "fcntl F_DUPFD_CLOEXEC above notify_fd %d: "
              "Too many open files", a + 2);
    s_expect_failure (rc, &result, err, want);
}

//  An agent started with stdin closed: /dev/null lands on fd 0, and a
//  dup2 of a descriptor onto itself keeps its close-on-exec flag, so the
//  service would start with stdin closed.  The child moves our
//  descriptors off 0..2 first.
static void
test_stdin_closed (void)
{
    int saved = fcntl (STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    close (STDIN_FILENO);
    char *argv [] = { "/bin/sh", "-c", "test -e /proc/$$/fd/0", NULL };
    pm_spawn_result_t result;
    char err [256];
    int rc = s_spawn (argv, 0, &result, err, sizeof err);
    if (saved != -1) {
        dup2 (saved, STDIN_FILENO);
        close (saved);
    }
    CHECK (rc == 0);
    if (rc == 0) {
        int status = s_reap (result.pid);
        CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
}

int
main (void)
{
    test_clean_slate ();
    test_sigint_before_setsid ();
    test_killed_before_exec ();
    test_setsid_fails ();
    test_notify_fd_over_limit ();
    test_status_pipe_cannot_move ();
    test_stdin_closed ();
    return check_report ("test_spawn");
}
