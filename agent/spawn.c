/*  spawn.c - fork/exec of a service (spawn.h)

    The races closed here:
    - exec failure: a close-on-exec pipe stays open in the child until exec
      succeeds (closing it) or fails (the child writes the step and errno).
      The parent's read returns 0 bytes on success.
    - signals: the agent keeps its signals blocked (signalfd); the child
      resets every disposition and unblocks all before exec, so services
      start with a clean slate.
    - fork in a threaded process (libzmq has I/O threads): everything the
      child needs (argv, envp, candidate paths) is built before fork; the
      child only calls async-signal-safe functions.
    - leaked descriptors: every agent fd is close-on-exec; the child also
      marks everything above stderr close-on-exec as a second guard.
    - agent death: the direct child gets SIGKILL if the agent dies
      (PR_SET_PDEATHSIG), checked against the race where the agent died
      before the prctl.
*/
#include "spawn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum { s_STEP_CHDIR = 1, s_STEP_EXEC = 2, s_STEP_SETUP = 3 };

typedef struct {
    int step;
    int error;
} s_failure_t;

//  Words that only a shell understands: builtins and keywords.
static const char *s_shell_words [] = {
    ".", ":", "[[", "{", "!", "alias", "bg", "break", "case", "cd",
    "command", "continue", "do", "done", "elif", "else", "esac", "eval",
    "exec", "exit", "export", "fc", "fg", "fi", "for", "function",
    "getopts", "hash", "if", "jobs", "local", "read", "readonly", "return",
    "select", "set", "shift", "source", "then", "times", "trap", "type",
    "ulimit", "umask", "unalias", "unset", "until", "wait", "while", NULL
};

int
pm_spawn_needs_shell (const char *command)
{
    const char *start = command + strspn (command, " \t");
    size_t len = strcspn (start, " \t");
    for (const char **word = s_shell_words; *word; word++)
        if (strlen (*word) == len && strncmp (start, *word, len) == 0)
            return 1;
    bool first_word = true;
    for (const char *p = command; *p; p++) {
        if (strchr ("|&;<>()$`\\\"'*?[#~{\n", *p))
            return 1;
        //  VAR=value before the command is an assignment.
        if (*p == '=' && first_word)
            return 1;
        if (*p == ' ' || *p == '\t')
            first_word = false;
    }
    return 0;
}

//  Splits a command with no shell syntax on blanks.  Returns a
//  NULL-terminated malloc'd vector whose strings point into copy.
static char **
s_split (char *copy)
{
    size_t count = 0, cap = 8;
    char **argv = malloc (cap * sizeof *argv);
    assert (argv);
    char *save = NULL;
    for (char *word = strtok_r (copy, " \t", &save); word;
         word = strtok_r (NULL, " \t", &save)) {
        if (count + 2 > cap) {
            cap *= 2;
            argv = realloc (argv, cap * sizeof *argv);
            assert (argv);
        }
        argv [count++] = word;
    }
    argv [count] = NULL;
    return argv;
}

static size_t
s_key_len (const char *entry)
{
    const char *eq = strchr (entry, '=');
    return eq ? (size_t) (eq - entry) : strlen (entry);
}

//  True if a later layer sets the same key as entry.
static bool
s_replaced (const char *entry, const pm_config_service_t *spec,
            char *const *extra, bool check_spec)
{
    size_t len = s_key_len (entry);
    if (len == 13 && strncmp (entry, "PMBUS_SERVICE", 13) == 0)
        return true;
    if (check_spec)
        for (size_t i = 0; i < spec->env_count; i++)
            if (strlen (spec->env [i].key) == len
            &&  strncmp (spec->env [i].key, entry, len) == 0)
                return true;
    for (char *const *p = extra; p && *p; p++)
        if (s_key_len (*p) == len && strncmp (*p, entry, len) == 0)
            return true;
    return false;
}

//  The agent's environment, then the config's variables, then extra, then
//  PMBUS_SERVICE, each layer replacing the keys it sets.
static char **
s_build_env (const pm_config_service_t *spec, char *const *extra)
{
    size_t count = 0, extra_count = 0;
    while (environ [count])
        count++;
    while (extra && extra [extra_count])
        extra_count++;
    char **envp = calloc (count + spec->env_count + extra_count + 2,
                          sizeof *envp);
    assert (envp);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (!s_replaced (environ [i], spec, extra, true))
            envp [n++] = strdup (environ [i]);
    for (size_t i = 0; i < spec->env_count; i++) {
        if (s_replaced (spec->env [i].key, spec, extra, false))
            continue;
        if (asprintf (&envp [n++], "%s=%s", spec->env [i].key,
                      spec->env [i].value) < 0)
            abort ();
    }
    for (size_t i = 0; i < extra_count; i++)
        envp [n++] = strdup (extra [i]);
    if (asprintf (&envp [n++], "PMBUS_SERVICE=%s", spec->name) < 0)
        abort ();
    envp [n] = NULL;
    return envp;
}

static void
s_free_vector (char **vector)
{
    if (!vector)
        return;
    for (char **p = vector; *p; p++)
        free (*p);
    free (vector);
}

//  The executable paths to try, in order, as execvp would: the name itself
//  if it holds a slash, else each PATH entry (from the service's
//  environment) joined with it.
static char **
s_candidates (const char *file, char **envp)
{
    if (strchr (file, '/')) {
        char **list = calloc (2, sizeof *list);
        assert (list);
        list [0] = strdup (file);
        return list;
    }
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (char **p = envp; *p; p++)
        if (strncmp (*p, "PATH=", 5) == 0) {
            path = *p + 5;
            break;
        }
    size_t entries = 1;
    for (const char *p = path; *p; p++)
        entries += *p == ':';
    char **list = calloc (entries + 1, sizeof *list);
    assert (list);
    size_t n = 0;
    const char *start = path;
    while (true) {
        const char *end = strchr (start, ':');
        size_t len = end ? (size_t) (end - start) : strlen (start);
        //  An empty entry means the current directory.
        if (asprintf (&list [n++], "%.*s%s%s", (int) len, start,
                      len ? "/" : "", file) < 0)
            abort ();
        if (!end)
            break;
        start = end + 1;
    }
    list [n] = NULL;
    return list;
}

static void
s_child_fail (int status_fd, int step, int error)
{
    s_failure_t failure = { step, error };
    ssize_t rc = write (status_fd, &failure, sizeof failure);
    (void) rc;
    _exit (127);
}

//  In the child, after fork: only async-signal-safe calls from here on.
static void
s_child (const pm_config_service_t *spec, char **argv, char **candidates,
         char **envp, int out_w, int err_w, int null_fd, int status_w,
         pid_t agent, int notify_w, int notify_fd)
{
    //  Dispositions back to default, then unblock everything.
    struct sigaction dfl;
    memset (&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction (sig, &dfl, NULL);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);

    if (setsid () == -1)
        s_child_fail (status_w, s_STEP_SETUP, errno);
    //  If the agent is already gone, the death signal would never come.
    if (prctl (PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid () != agent)
        s_child_fail (status_w, s_STEP_SETUP, ESRCH);

    if (dup2 (null_fd, STDIN_FILENO) == -1
    ||  dup2 (out_w, STDOUT_FILENO) == -1
    ||  dup2 (err_w, STDERR_FILENO) == -1)
        s_child_fail (status_w, s_STEP_SETUP, errno);
    //  Everything else is close-on-exec already; make sure of it.
    if (syscall (SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != status_w)
                fcntl (fd, F_SETFD, FD_CLOEXEC);
    }
    //  The notify pipe goes where the service expects it, after the
    //  close-on-exec sweep (dup2 clears the flag on the new descriptor).
    if (notify_fd >= 3) {
        //  Keep the status pipe out of the way of the notify descriptor.
        if (status_w == notify_fd) {
            int moved = fcntl (status_w, F_DUPFD_CLOEXEC, notify_fd + 1);
            if (moved == -1)
                _exit (127);
            status_w = moved;
        }
        if (notify_w == notify_fd) {
            if (fcntl (notify_fd, F_SETFD, 0) == -1)
                s_child_fail (status_w, s_STEP_SETUP, errno);
        }
        else
        if (dup2 (notify_w, notify_fd) == -1)
            s_child_fail (status_w, s_STEP_SETUP, errno);
    }
    if (chdir (spec->working_dir) == -1)
        s_child_fail (status_w, s_STEP_CHDIR, errno);

    //  execvp's rules: remember EACCES, go on past ENOENT and the like.
    int error = ENOENT;
    bool seen_eacces = false;
    for (char **path = candidates; *path; path++) {
        execve (*path, argv, envp);
        if (errno == EACCES)
            seen_eacces = true;
        else
        if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE
        &&  errno != ENODEV && errno != ETIMEDOUT) {
            error = errno;
            break;
        }
    }
    if (seen_eacces && error == ENOENT)
        error = EACCES;
    s_child_fail (status_w, s_STEP_EXEC, error);
}

int
pm_spawn_run (const pm_config_service_t *spec,
              const pm_spawn_options_t *options,
              pm_spawn_result_t *result, char *err, size_t errlen)
{
    memset (result, 0, sizeof *result);
    result->out_fd = result->err_fd = result->notify_fd = -1;
    pm_spawn_options_t defaults = { NULL, false, 0 };
    if (!options)
        options = &defaults;
    char *const *extra_env = options->extra_env;

    //  Build everything the child needs before fork.
    char *copy = NULL;
    char **argv;
    static char *shell_argv [4];
    if (spec->command && pm_spawn_needs_shell (spec->command)) {
        shell_argv [0] = "/bin/sh";
        shell_argv [1] = "-c";
        shell_argv [2] = spec->command;
        shell_argv [3] = NULL;
        argv = shell_argv;
    }
    else
    if (spec->command) {
        copy = strdup (spec->command);
        argv = s_split (copy);
        if (!argv [0]) {
            free (argv);
            free (copy);
            snprintf (err, errlen, "empty command");
            return -1;
        }
    }
    else
        argv = spec->argv;
    char **envp = s_build_env (spec, extra_env);
    char **candidates = s_candidates (argv [0], envp);

    int out_pipe [2] = { -1, -1 }, err_pipe [2] = { -1, -1 };
    int status_pipe [2] = { -1, -1 };
    int notify_pipe [2] = { -1, -1 };
    int null_fd = -1;
    int rc = -1;
    if ((null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC)) == -1
    ||  pipe2 (status_pipe, O_CLOEXEC) == -1
    ||  (!options->quiet && pipe2 (out_pipe, O_CLOEXEC) == -1)
    ||  (!options->quiet && pipe2 (err_pipe, O_CLOEXEC) == -1)
    ||  (options->notify_fd >= 3 && pipe2 (notify_pipe, O_CLOEXEC) == -1)) {
        snprintf (err, errlen, "cannot create pipes: %s", strerror (errno));
        goto done;
    }
    //  A larger pipe means fewer wakeups for a chatty service; best effort.
    if (!options->quiet)
        fcntl (out_pipe [0], F_SETPIPE_SZ, 256 * 1024);

    pid_t agent = getpid ();
    pid_t pid = fork ();
    if (pid == -1) {
        snprintf (err, errlen, "fork: %s", strerror (errno));
        goto done;
    }
    if (pid == 0)
        s_child (spec, argv, candidates, envp,
                 options->quiet ? null_fd : out_pipe [1],
                 options->quiet ? null_fd : err_pipe [1],
                 null_fd, status_pipe [1], agent, notify_pipe [1],
                 options->notify_fd);

    close (status_pipe [1]);
    status_pipe [1] = -1;
    s_failure_t failure;
    ssize_t got;
    do
        got = read (status_pipe [0], &failure, sizeof failure);
    while (got == -1 && errno == EINTR);
    if (got == (ssize_t) sizeof failure) {
        //  The child is exiting right now; reap it here so the reaper
        //  never sees an unknown pid.
        while (waitpid (pid, NULL, 0) == -1 && errno == EINTR)
            ;
        if (failure.step == s_STEP_CHDIR)
            snprintf (err, errlen, "chdir %s: %s", spec->working_dir,
                      strerror (failure.error));
        else
        if (failure.step == s_STEP_EXEC)
            snprintf (err, errlen, "exec %s: %s", argv [0],
                      strerror (failure.error));
        else
            snprintf (err, errlen, "cannot set up the process: %s",
                      strerror (failure.error));
        goto done;
    }
    if (out_pipe [0] != -1)
        fcntl (out_pipe [0], F_SETFL, O_NONBLOCK);
    if (err_pipe [0] != -1)
        fcntl (err_pipe [0], F_SETFL, O_NONBLOCK);
    if (notify_pipe [0] != -1)
        fcntl (notify_pipe [0], F_SETFL, O_NONBLOCK);
    result->pid = pid;
    result->out_fd = out_pipe [0];
    result->err_fd = err_pipe [0];
    result->notify_fd = notify_pipe [0];
    out_pipe [0] = err_pipe [0] = notify_pipe [0] = -1;
    rc = 0;

done:
    for (int i = 0; i < 2; i++) {
        if (out_pipe [i] != -1)
            close (out_pipe [i]);
        if (err_pipe [i] != -1)
            close (err_pipe [i]);
        if (status_pipe [i] != -1)
            close (status_pipe [i]);
        if (notify_pipe [i] != -1)
            close (notify_pipe [i]);
    }
    if (null_fd != -1)
        close (null_fd);
    s_free_vector (candidates);
    s_free_vector (envp);
    if (copy) {
        free (argv);
        free (copy);
    }
    return rc;
}
