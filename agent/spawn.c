/*  spawn.c - fork/exec of a service (spawn.h)

    The races closed here:
    - a failure in the child: the status pipe is close-on-exec and stays
      open in the child until exec.  Every step that can fail in the child
      (setsid, the death signal, the standard streams, the notify
      descriptor, the descriptor limit, chdir, the signal mask, exec)
      writes one record, its step, errno and detail, and exits; the
      parent turns it into a start failure naming the step ("chdir
      /srv/x: No such file or directory").
      Just before exec the child writes a "reached exec" record.  So the
      end of the pipe means success only after that record: an end without
      it is a child that died during its setup (a SIGKILL, a crash), and a
      failed start too, never a service that seems to run.
    - signals: the agent keeps its signals blocked (signalfd), and the
      child keeps them blocked through its whole setup.  Until setsid it
      is still in the agent's process group, so a terminal's ^C (or a
      kill of the group) aimed at the agent reaches it too; blocked, such
      a signal stays pending instead of killing it before exec.  After
      setsid, every disposition goes to SIG_IGN (which discards what is
      pending: it was meant for the agent's group) and back to SIG_DFL,
      including the two the C library keeps for itself (its sigaction
      refuses them, the system call does not), which a parent of the
      agent may have left ignored; the mask is emptied last, just before
      exec, so services start with a clean slate.
    - the cost of a fork: the child is made with clone (CLONE_VM |
      CLONE_VFORK) on a stack of its own, as posix_spawn does, so the
      agent's page tables are not copied and none of its pages become
      copy-on-write; the agent waits only while the child sets itself up
      and execs (the kernel resumes it once the child has a new program
      or has exited), and by then the status pipe holds the whole story.
      That is what lets 100 services start in a few tens of ms.
    - a child sharing the agent's memory (and libzmq's running threads):
      everything the child needs (argv, envp, candidate paths) is built
      before; the child only reads that and calls async-signal-safe
      functions, which touch nothing shared but errno (the agent does not
      rely on errno across a spawn).  Its signal dispositions are its own
      (no CLONE_SIGHAND).
    - leaked descriptors: every agent fd is close-on-exec; the child also
      marks everything above stderr close-on-exec as a second guard.  Our
      descriptors that sit on 0, 1 or 2 (an agent started with a standard
      stream closed) are moved up first, so the dup2s onto the standard
      streams cannot clobber them.
    - agent death: the direct child gets SIGKILL if the agent dies
      (PR_SET_PDEATHSIG), checked against the race where the agent died
      before the prctl.
    - descriptors running out: the parent's pipes are checked against
      the reserve kept for libzmq (fdlimit.h) before fork, and the child
      drops from the agent's raised RLIMIT_NOFILE to the service's after
      its own descriptor setup, which needed the agent's.
*/
#include "spawn.h"
#include "fdlimit.h"
#include "pm_proto.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

//  What the child reports on the status pipe, one record per write (a
//  record is far below PIPE_BUF, so it arrives whole or not at all).
typedef enum {
    s_STEP_EXEC_NEXT = 0,     //  setup done, exec comes next: not a failure
    s_STEP_MOVE,              //  moving one of our fds off 0, 1 or 2
    s_STEP_SETSID,
    s_STEP_PDEATHSIG,
    s_STEP_AGENT_GONE,        //  the agent died before the prctl
    s_STEP_STDIO,             //  detail: the standard stream's fd
    s_STEP_NOTIFY_MOVE,       //  the status pipe out of the notify fd's way
    s_STEP_NOTIFY,            //  detail: the notify fd
    s_STEP_RLIMIT,
    s_STEP_CHDIR,
    s_STEP_SIGMASK,
    s_STEP_EXEC
} s_step_t;

typedef struct {
    int step;                 /* s_step_t */
    int error;                /* errno, 0 for s_STEP_EXEC_NEXT */
    int detail;               /* a descriptor number, or 0 */
} s_record_t;

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
s_child_record (int status_fd, s_step_t step, int error, int detail)
{
    s_record_t record = { (int) step, error, detail };
    ssize_t rc;
    do
        rc = write (status_fd, &record, sizeof record);
    while (rc == -1 && errno == EINTR);
}

static void
s_child_fail (int status_fd, s_step_t step, int error, int detail)
{
    s_child_record (status_fd, step, error, detail);
    _exit (127);
}

void
pm_spawn_set_disposition (int sig, void (*handler) (int))
{
#if defined (__x86_64__) || defined (__aarch64__) || defined (__i386__)
    //  The kernel's struct on these architectures: handler, flags,
    //  restorer, mask.
    struct {
        void (*handler) (int);
        unsigned long flags;
        void (*restorer) (void);
        unsigned long mask [1];
    } action = { handler, 0, NULL, { 0 } };
    syscall (SYS_rt_sigaction, sig, &action, NULL, sizeof action.mask);
#else
    (void) sig;
    (void) handler;
#endif
}

//  Moves *fd above the standard streams if it sits on one of them.
static void
s_child_lift (int *fd, int status_fd)
{
    if (*fd < 0 || *fd > STDERR_FILENO)
        return;
    int moved = fcntl (*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved == -1)
        s_child_fail (status_fd, s_STEP_MOVE, errno, *fd);
    *fd = moved;
}

//  What the child needs, all of it built before fork.
typedef struct {
    const pm_config_service_t *spec;
    char **argv;
    char **candidates;        /* the paths to try, in order */
    char **envp;
    int out_w;                /* becomes stdout */
    int err_w;                /* becomes stderr */
    int null_fd;              /* becomes stdin */
    int status_w;             /* the status pipe's write end */
    int notify_w;             /* the notify pipe's write end, or -1 */
    int notify_fd;            /* where notify_w goes (>= 3), or 0 */
    pid_t agent;              /* our parent, the agent */
    bool has_limit;           /* limit is the service's RLIMIT_NOFILE */
    struct rlimit limit;
} s_child_t;

//  In the child, in the agent's memory until exec (clone CLONE_VM): only
//  async-signal-safe calls from here on.
//  The agent's signals stay blocked until just before exec (see the
//  header); every failure is reported on the status pipe.
static void
s_child (s_child_t *c)
{
    //  The status pipe first, so that every later failure can be told.
    s_child_lift (&c->status_w, c->status_w);
    s_child_lift (&c->out_w, c->status_w);
    s_child_lift (&c->err_w, c->status_w);
    s_child_lift (&c->null_fd, c->status_w);
    s_child_lift (&c->notify_w, c->status_w);

    //  Out of the agent's process group and terminal: from here on, no
    //  signal aimed at the agent's group reaches us.
    if (setsid () == -1)
        s_child_fail (c->status_w, s_STEP_SETSID, errno, 0);
    //  If the agent is already gone, the death signal would never come.
    if (prctl (PR_SET_PDEATHSIG, SIGKILL) == -1)
        s_child_fail (c->status_w, s_STEP_PDEATHSIG, errno, 0);
    if (getppid () != c->agent)
        s_child_fail (c->status_w, s_STEP_AGENT_GONE, ESRCH, 0);

    const int targets [3] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };
    const int sources [3] = { c->null_fd, c->out_w, c->err_w };
    for (int i = 0; i < 3; i++)
        if (dup2 (sources [i], targets [i]) == -1)
            s_child_fail (c->status_w, s_STEP_STDIO, errno, targets [i]);
    //  Everything else is close-on-exec already; make sure of it.
    if (syscall (SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
        for (int fd = 3; fd < 1024; fd++)
            if (fd != c->status_w)
                fcntl (fd, F_SETFD, FD_CLOEXEC);
    }
    //  The notify pipe goes where the service expects it, after the
    //  close-on-exec sweep (dup2 clears the flag on the new descriptor).
    if (c->notify_fd >= 3) {
        //  Keep the status pipe out of the way of the notify descriptor.
        if (c->status_w == c->notify_fd) {
            int moved = fcntl (c->status_w, F_DUPFD_CLOEXEC, c->notify_fd + 1);
            if (moved == -1)
                s_child_fail (c->status_w, s_STEP_NOTIFY_MOVE, errno,
                              c->notify_fd);
            c->status_w = moved;
        }
        if (c->notify_w == c->notify_fd) {
            if (fcntl (c->notify_fd, F_SETFD, 0) == -1)
                s_child_fail (c->status_w, s_STEP_NOTIFY, errno, c->notify_fd);
        }
        else
        if (dup2 (c->notify_w, c->notify_fd) == -1)
            s_child_fail (c->status_w, s_STEP_NOTIFY, errno, c->notify_fd);
    }
    //  The service's own descriptor limit, once the setup (under the
    //  agent's) is done.
    if (c->has_limit && setrlimit (RLIMIT_NOFILE, &c->limit) == -1)
        s_child_fail (c->status_w, s_STEP_RLIMIT, errno, 0);
    if (chdir (c->spec->working_dir) == -1)
        s_child_fail (c->status_w, s_STEP_CHDIR, errno, 0);

    //  Still blocked: SIG_IGN discards whatever is pending (a ^C that
    //  reached us before setsid), then SIG_DFL for the service.  SIGKILL
    //  and SIGSTOP refuse, which is fine; the C library's own two refuse
    //  its sigaction and go through the system call.
    struct sigaction action;
    memset (&action, 0, sizeof action);
    for (int sig = 1; sig < NSIG; sig++) {
        action.sa_handler = SIG_IGN;
        if (sigaction (sig, &action, NULL) == -1 && errno == EINVAL)
            pm_spawn_set_disposition (sig, SIG_DFL);
        action.sa_handler = SIG_DFL;
        sigaction (sig, &action, NULL);
    }
    //  Last: from here a signal kills us with its default action, as it
    //  would the service.
    sigset_t none;
    sigemptyset (&none);
    if (sigprocmask (SIG_SETMASK, &none, NULL) == -1)
        s_child_fail (c->status_w, s_STEP_SIGMASK, errno, 0);
    s_child_record (c->status_w, s_STEP_EXEC_NEXT, 0, 0);

    //  execvp's rules: remember EACCES, go on past ENOENT and the like.
    int error = ENOENT;
    bool seen_eacces = false;
    for (char **path = c->candidates; *path; path++) {
        execve (*path, c->argv, c->envp);
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
    s_child_fail (c->status_w, s_STEP_EXEC, error, 0);
}

//  The child's stack.  clone with CLONE_VFORK returns only once the child
//  has exec'd or exited, and only the loop's thread spawns, so one stack
//  serves every spawn.
static char s_child_stack [64 * 1024] __attribute__ ((aligned (64)));

static int
s_child_main (void *arg)
{
    s_child ((s_child_t *) arg);
    return 127;                 //  not reached: s_child execs or exits
}

//  What each step did, for the messages: "<what>: <strerror>", or with
//  the record's descriptor, "<what> <fd>: <strerror>".
static const struct {
    s_step_t step;
    const char *what;
    bool with_fd;
} s_steps [] = {
    { s_STEP_MOVE, "fcntl F_DUPFD_CLOEXEC of fd", true },
    { s_STEP_SETSID, "setsid", false },
    { s_STEP_PDEATHSIG, "prctl PR_SET_PDEATHSIG", false },
    { s_STEP_STDIO, "dup2 onto fd", true },
    { s_STEP_NOTIFY_MOVE, "fcntl F_DUPFD_CLOEXEC above notify_fd", true },
    { s_STEP_NOTIFY, "dup2 onto notify_fd", true },
    { s_STEP_RLIMIT, "setrlimit RLIMIT_NOFILE", false },
    { s_STEP_SIGMASK, "sigprocmask", false }
};

//  The start failure that a child's record tells, in err.
static void
s_describe (const s_record_t *record, const pm_config_service_t *spec,
            const char *program, char *err, size_t errlen)
{
    const char *why = strerror (record->error);
    if (record->step == s_STEP_CHDIR) {
        snprintf (err, errlen, "chdir %s: %s", spec->working_dir, why);
        return;
    }
    if (record->step == s_STEP_EXEC) {
        snprintf (err, errlen, "exec %s: %s", program, why);
        return;
    }
    if (record->step == s_STEP_AGENT_GONE) {
        snprintf (err, errlen, "the agent exited while the process was "
                  "being set up");
        return;
    }
    for (size_t i = 0; i < sizeof s_steps / sizeof *s_steps; i++)
        if ((int) s_steps [i].step == record->step) {
            if (s_steps [i].with_fd)
                snprintf (err, errlen, "%s %d: %s", s_steps [i].what,
                          record->detail, why);
            else
                snprintf (err, errlen, "%s: %s", s_steps [i].what, why);
            return;
        }
    snprintf (err, errlen, "setup step %d: %s", record->step, why);
}

//  Reads the child's records until the pipe ends.  Returns 0 if the child
//  reached exec and no failure followed (exec succeeded); -1 with the
//  reason in err, the child reaped.
static int
s_await_exec (pid_t pid, int status_r, const pm_config_service_t *spec,
              const char *program, char *err, size_t errlen)
{
    //  At most two records come: "exec next", then perhaps a failure.
    s_record_t records [2];
    size_t got = 0;
    while (got < sizeof records) {
        ssize_t rc = read (status_r, (char *) records + got,
                           sizeof records - got);
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        got += (size_t) rc;
    }
    size_t count = got / sizeof *records;
    bool reached_exec = count >= 1 && records [0].step == s_STEP_EXEC_NEXT;
    if (reached_exec && count == 1 && got % sizeof *records == 0)
        return 0;
    //  The child failed or died before exec and is exiting right now;
    //  reap it here so the reaper never sees an unknown pid.
    int status = 0;
    while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
        ;
    const s_record_t *failure = reached_exec ? &records [1] : &records [0];
    if (count > (reached_exec ? 1u : 0u))
        s_describe (failure, spec, program, err, errlen);
    else
    if (WIFSIGNALED (status)) {
        const char *name = pm_signal_name (WTERMSIG (status));
        if (name)
            snprintf (err, errlen, "killed by %s before exec", name);
        else
            snprintf (err, errlen, "killed by signal %d before exec",
                      WTERMSIG (status));
    }
    else
        snprintf (err, errlen, "exited with code %d before exec",
                  WIFEXITED (status) ? WEXITSTATUS (status) : -1);
    return -1;
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
    if ((null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
        snprintf (err, errlen, "open /dev/null: %s", strerror (errno));
        goto done;
    }
    if (pipe2 (status_pipe, O_CLOEXEC) == -1
    ||  (!options->quiet && pipe2 (out_pipe, O_CLOEXEC) == -1)
    ||  (!options->quiet && pipe2 (err_pipe, O_CLOEXEC) == -1)
    ||  (options->notify_fd >= 3 && pipe2 (notify_pipe, O_CLOEXEC) == -1)) {
        snprintf (err, errlen, "pipe: %s", strerror (errno));
        goto done;
    }
    int highest = null_fd;
    const int opened [] = { status_pipe [0], status_pipe [1], out_pipe [0],
                            out_pipe [1], err_pipe [0], err_pipe [1],
                            notify_pipe [0], notify_pipe [1] };
    for (size_t i = 0; i < sizeof opened / sizeof *opened; i++)
        if (opened [i] > highest)
            highest = opened [i];
    if (pm_fdlimit_check (highest) == -1) {
        snprintf (err, errlen, "pipe: %s (the last %d descriptors are kept "
                  "for clients)", strerror (errno), pm_fdlimit_reserve ());
        goto done;
    }
    //  A larger pipe means fewer wakeups for a chatty service; best effort.
    if (!options->quiet)
        fcntl (out_pipe [0], F_SETPIPE_SZ, 256 * 1024);

    s_child_t child = {
        spec, argv, candidates, envp,
        options->quiet ? null_fd : out_pipe [1],
        options->quiet ? null_fd : err_pipe [1],
        null_fd, status_pipe [1], notify_pipe [1], options->notify_fd,
        getpid (), false, { 0, 0 }
    };
    child.has_limit = pm_fdlimit_for_services (&child.limit) == 0;
    pid_t pid = clone (s_child_main, s_child_stack + sizeof s_child_stack,
                       CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
    if (pid == -1) {
        snprintf (err, errlen, "clone: %s", strerror (errno));
        goto done;
    }

    close (status_pipe [1]);
    status_pipe [1] = -1;
    if (s_await_exec (pid, status_pipe [0], spec, argv [0], err,
                      errlen) == -1)
        goto done;
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
