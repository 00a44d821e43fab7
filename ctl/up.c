/*  up.c - the agent's life from pmctl (see up.h)

    `up` starts the agent with `pmd --daemon`, which returns only once the
    agent accepts commands (exit 0) or with the agent's own verdict: 2 and
    the config error, 3 when another agent already holds the runtime
    directory (that is success for `up`: someone else won the race), 1
    for anything else.  So once `up` returns, every other command works,
    and no lock or socket is ever polled here.

    pmd's standard error goes to a pipe, its standard output to
    /dev/null.  The daemon itself (pmd's grandchild) keeps the pipe open
    for a moment after pmd exits, so the pipe's end of file is not what
    we wait for: pmd's exit is (a pidfd), then what is in the pipe is
    read without blocking.
*/
#include "up.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "pmctl.h"
#include "remote.h"

#if !defined (SYS_pidfd_open) && defined (__linux__)
#   define SYS_pidfd_open 434
#endif

//  How long pmd --daemon may take to say how the start went.
#define S_DAEMON_MS 30000
//  Where pmd --daemon's own exit codes say "already running".
#define S_PMD_RUNNING 3
//  pmd's messages are one line; this is plenty.
#define S_MESSAGE_MAX 4096

static bool
s_executable (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode)
        && access (path, X_OK) == 0;
}

//  Where pmd is: next to this pmctl (../agent/pmd in the build tree,
//  ./pmd in an install), else $PMD, else "pmd" for a $PATH search.
static void
s_find_pmd (char *path, size_t size)
{
    char self [PM_PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self [len] = 0;
        char *slash = strrchr (self, '/');
        if (slash) {
            *slash = 0;
            const char *relative [] = { "../agent/pmd", "pmd" };
            for (size_t i = 0; i < 2; i++) {
                int n = snprintf (path, size, "%s/%s", self, relative [i]);
                if (n > 0 && (size_t) n < size && s_executable (path))
                    return;
            }
        }
    }
    const char *env = getenv ("PMD");
    if (env && *env) {
        snprintf (path, size, "%s", env);
        return;
    }
    snprintf (path, size, "pmd");
}

//  Appends what can be read from fd now to buffer (at most size - 1
//  bytes in all).  Returns 1 at end of file, else 0.
static int
s_read_some (int fd, char *buffer, size_t *have, size_t size)
{
    for (;;) {
        char chunk [1024];
        ssize_t got = read (fd, chunk, sizeof chunk);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == 0)
            return 1;
        if (got < 0)
            return 0;
        size_t take = (size_t) got;
        if (take > size - 1 - *have)
            take = size - 1 - *have;
        memcpy (buffer + *have, chunk, take);
        *have += take;
        buffer [*have] = 0;
    }
}

//  Runs argv (argv [0] is pmd) and waits for it to exit.  Returns its
//  exit code, or -1 when it could not be run or did not exit normally;
//  message gets what it wrote on stderr.
static int
s_run_pmd (char *const *argv, char *message, size_t size)
{
    size_t have = 0;
    message [0] = 0;
    int fds [2];
    if (pipe2 (fds, O_CLOEXEC) == -1) {
        snprintf (message, size, "cannot create a pipe: %s",
                  strerror (errno));
        return -1;
    }
    int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = fork ();
    if (pid == -1) {
        snprintf (message, size, "cannot fork: %s", strerror (errno));
        close (fds [0]);
        close (fds [1]);
        if (null_fd != -1)
            close (null_fd);
        return -1;
    }
    if (pid == 0) {
        //  pmctl has no thread here (no ZeroMQ context yet), so the
        //  child may use stdio's helpers before exec.
        if (null_fd != -1) {
            dup2 (null_fd, STDIN_FILENO);
            dup2 (null_fd, STDOUT_FILENO);
        }
        dup2 (fds [1], STDERR_FILENO);
        if (strchr (argv [0], '/'))
            execv (argv [0], argv);
        else
            execvp (argv [0], argv);
        dprintf (STDERR_FILENO, "cannot run %s: %s\n", argv [0],
                 strerror (errno));
        _exit (127);
    }
    close (fds [1]);
    if (null_fd != -1)
        close (null_fd);
    fcntl (fds [0], F_SETFL, O_NONBLOCK);
    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
#endif
    long long deadline = pm_client_now_ms () + S_DAEMON_MS;
    bool eof = false;
    int status = 0;
    bool exited = false;
    while (!exited) {
        long long wait = deadline - pm_client_now_ms ();
        if (wait <= 0) {
            snprintf (message, size, "%s did not return within %d s",
                      argv [0], S_DAEMON_MS / 1000);
            kill (pid, SIGKILL);
            waitpid (pid, NULL, 0);
            break;
        }
        //  Without a pidfd (old kernel) the exit is checked every 50 ms.
        if (pidfd == -1 && wait > 50)
            wait = 50;
        struct pollfd items [2] = {
            { eof ? -1 : fds [0], POLLIN, 0 },
            { pidfd, POLLIN, 0 }
        };
        if (poll (items, 2, (int) wait) == -1 && errno != EINTR)
            break;
        if (items [0].revents)
            eof = s_read_some (fds [0], message, &have, size) == 1;
        if (pidfd == -1 || (items [1].revents & POLLIN)) {
            pid_t done = waitpid (pid, &status, pidfd == -1 ? WNOHANG : 0);
            exited = done == pid;
        }
    }
    if (!eof)
        s_read_some (fds [0], message, &have, size);
    close (fds [0]);
    if (pidfd != -1)
        close (pidfd);
    if (!exited)
        return -1;
    if (WIFSIGNALED (status)) {
        snprintf (message + have, size - have, "%s%s killed by signal %d",
                  have ? "; " : "", argv [0], WTERMSIG (status));
        return -1;
    }
    return WEXITSTATUS (status);
}

//  Prints pmd's message, each line without its "pmd: " prefix.
static void
s_print_message (const char *what, const char *message)
{
    const char *line = message;
    bool printed = false;
    while (*line) {
        size_t len = strcspn (line, "\n");
        const char *text = line;
        if (strncmp (text, "pmd: ", 5) == 0 && len >= 5) {
            text += 5;
            len -= 5;
        }
        if (len) {
            fprintf (stderr, "pmctl: %s: %.*s\n", what, (int) len, text);
            printed = true;
        }
        line = text + len;
        if (*line == '\n')
            line++;
    }
    if (!printed)
        fprintf (stderr, "pmctl: %s\n", what);
}

//  Starts the agent for client's config.  Returns 0 when it was started
//  here, S_PMD_RUNNING when another one runs, else the exit code after
//  printing why.
static int
s_start_agent (const pm_cli_t *cli, pm_client_t *client)
{
    char pmd [PM_PATH_MAX];
    s_find_pmd (pmd, sizeof pmd);
    //  The daemon changes directory to /: a relative -s must be made
    //  absolute first.
    char rundir [PM_PATH_MAX * 2];
    if (cli->rundir && cli->rundir [0] != '/') {
        char cwd [PM_PATH_MAX];
        if (!getcwd (cwd, sizeof cwd)) {
            fprintf (stderr, "pmctl: cannot get the current directory: %s\n",
                     strerror (errno));
            return PM_EXIT_FAILED;
        }
        snprintf (rundir, sizeof rundir, "%s/%s", cwd, cli->rundir);
    }
    else
    if (cli->rundir)
        snprintf (rundir, sizeof rundir, "%s", cli->rundir);
    char *argv [10];
    int argc = 0;
    argv [argc++] = pmd;
    argv [argc++] = (char *) "--daemon";
    argv [argc++] = (char *) "-c";
    argv [argc++] = (char *) pm_client_config_path (client);
    if (cli->rundir) {
        argv [argc++] = (char *) "-s";
        argv [argc++] = rundir;
    }
    if (cli->lease) {
        argv [argc++] = (char *) "--lease";
        argv [argc++] = (char *) cli->lease;
    }
    argv [argc] = NULL;

    fflush (stdout);
    fflush (stderr);
    char message [S_MESSAGE_MAX];
    int code = s_run_pmd (argv, message, sizeof message);
    if (code == 0) {
        if (!cli->json) {
            long pid = pm_rundir_read_pid (pm_client_paths (client));
            if (pid > 0)
                printf ("agent %s started (pid %ld)\n",
                        pm_client_name (client), pid);
            else
                printf ("agent %s started\n", pm_client_name (client));
        }
        return 0;
    }
    if (code == S_PMD_RUNNING)
        return S_PMD_RUNNING;
    s_print_message ("cannot start the agent", message);
    return code == PM_EXIT_USAGE ? PM_EXIT_USAGE : PM_EXIT_FAILED;
}

//  Sorts the services to bring up into start (to be started) and wait
//  (being started by the agent itself: only waited for).  names, count:
//  as asked (none: every autostart service).  fresh: the agent was
//  started just now, so it is starting its autostart services on its
//  own.  Returns 0, or -1 after printing why.
static int
s_plan (pm_client_t *client, char **names, int count, bool fresh,
        pm_request_t *start, pm_request_t *wait)
{
    for (int i = 0; i < count; i++)
        if (pm_request_add_name (start, names [i]) == -1) {
            pm_cli_usage_error ("bad service name '%s'", names [i]);
            return -1;
        }
    if (count > 0 && !fresh)
        return 0;
    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (pm_client_config_path (client), err,
                                          sizeof err);
    if (!config) {
        fprintf (stderr, "pmctl: cannot tell which services start by "
                 "themselves: %s\n", err);
        return -1;
    }
    if (count == 0) {
        for (size_t i = 0; i < config->services_count; i++)
            if (config->services [i].autostart)
                pm_request_add_name (fresh ? wait : start,
                                     config->services [i].name);
    }
    else {
        //  Named: those the fresh agent starts anyway are waited for, the
        //  others started.  A `start` of a one-shot the agent has already
        //  run to completion would run it a second time.
        pm_request_t *named = start;
        char **kept = named->names;
        size_t kept_count = named->names_count;
        named->names = NULL;
        named->names_count = 0;
        for (size_t k = 0; k < kept_count; k++) {
            int index = pm_config_find (config, kept [k]);
            bool own = index >= 0 && config->services [index].autostart;
            pm_request_add_name (own ? wait : start, kept [k]);
            free (kept [k]);
        }
        free (kept);
    }
    pm_config_destroy (&config);
    return 0;
}

int
pm_up_run (const pm_cli_t *cli, char **names, int count)
{
    //  No warning about a broken config yet: pmd says it better, with
    //  its own exit code, when it is the one to read it.
    pm_client_t *client = pm_remote_client (cli, false);
    if (!client)
        return PM_EXIT_USAGE;
    int code = PM_EXIT_OK;
    pm_request_t *request = NULL;
    pm_request_t *wait = NULL;
    bool started = false;       //  by this up, just now
    if (!pm_client_config_path (client)) {
        fprintf (stderr, "pmctl: up needs a config file (-c FILE, "
                 "$PMBUS_CONFIG or ./pmbus.cfg)\n");
        code = PM_EXIT_USAGE;
        goto done;
    }
    int running = pm_rundir_agent_running (pm_client_paths (client));
    if (running == -1) {
        fprintf (stderr, "pmctl: cannot check the agent's lock %s: %s\n",
                 pm_client_paths (client)->lock, strerror (errno));
        code = PM_EXIT_UNREACHABLE;
        goto done;
    }
    bool leased = false;
    if (running == 0) {
        code = s_start_agent (cli, client);
        if (code == 0)
            leased = started = true;    //  pmd took --lease itself
        else
        if (code == S_PMD_RUNNING)
            code = PM_EXIT_OK;
        else
            goto done;
    }
    else
    if (pm_client_warning (client))
        fprintf (stderr, "pmctl: warning: %s (the agent is located anyway)\n",
                 pm_client_warning (client));

    if (cli->lease && !leased) {
        long pid = 0;
        pm_cli_parse_pid (cli->lease, &pid);
        request = pm_request_new (PM_CMD_LEASE, 0);
        request->pid = pid;
        code = pm_remote_run (cli, client, request, 0, PM_REMOTE_QUIET_OK);
        pm_request_destroy (&request);
        if (code != PM_EXIT_OK)
            goto done;
    }

    //  What the agent does not start by itself is started, and `up`
    //  waits until it runs (start's default wait).  What a freshly
    //  started agent is starting already is only waited for: running,
    //  or completed for a one-shot that finished first.
    request = pm_request_new (PM_CMD_START, 0);
    request->wait = PM_WAIT_RUNNING;
    request->timeout = cli->timeout_s;
    wait = pm_request_new (PM_CMD_WAIT, 0);
    wait->wait_for = PM_STATE_RUNNING;
    wait->timeout = cli->timeout_s;
    if (s_plan (client, names, count, started, request, wait) == -1) {
        code = PM_EXIT_USAGE;
        goto done;
    }
    if (request->names_count > 0)
        code = pm_remote_run (cli, client, request, cli->timeout_s, 0);
    if (code == PM_EXIT_OK && wait->names_count > 0)
        code = pm_remote_run (cli, client, wait, cli->timeout_s,
                              PM_REMOTE_COMPLETED_OK);

done:
    pm_request_destroy (&request);
    pm_request_destroy (&wait);
    pm_client_destroy (&client);
    return code;
}

int
pm_up_down (const pm_cli_t *cli, double timeout)
{
    pm_client_t *client = pm_remote_client (cli, true);
    if (!client)
        return PM_EXIT_USAGE;
    pm_request_t *request = pm_request_new (PM_CMD_SHUTDOWN, 0);
    int code = pm_remote_run (cli, client, request, timeout,
                              PM_REMOTE_ABSENT_OK);
    pm_request_destroy (&request);
    pm_client_destroy (&client);
    return code;
}

int
pm_up_is_running (const pm_cli_t *cli)
{
    char err [PM_PATH_MAX + 256];
    pm_client_t *client = pm_client_new (cli->config, cli->rundir, err,
                                         sizeof err);
    if (!client) {
        fprintf (stderr, "pmctl: %s\n", err);
        return PM_EXIT_USAGE;
    }
    //  The lock alone: the kernel drops it when the agent's process ends,
    //  however it ends, so a lock file left by a killed agent is free.
    const pm_paths_t *paths = pm_client_paths (client);
    int running = pm_rundir_agent_running (paths);
    int code;
    if (running == -1) {
        fprintf (stderr, "pmctl: cannot check the agent's lock %s: %s\n",
                 paths->lock, strerror (errno));
        code = PM_EXIT_UNREACHABLE;
    }
    else
    if (running == 1) {
        long pid = pm_rundir_read_pid (paths);
        if (cli->quiet)
            ;
        else
        if (cli->json)
            printf ("{\"running\":true,\"pid\":%ld}\n", pid);
        else
        if (pid > 0)
            printf ("running (pid %ld)\n", pid);
        else
            printf ("running\n");
        code = PM_EXIT_OK;
    }
    else {
        if (cli->quiet)
            ;
        else
        if (cli->json)
            printf ("{\"running\":false}\n");
        else
            printf ("not running\n");
        code = PM_EXIT_FAILED;
    }
    pm_client_destroy (&client);
    return code;
}

int
pm_up_lease (const pm_cli_t *cli, const char *pid_text)
{
    long pid = 0;
    if (pm_cli_parse_pid (pid_text, &pid) == -1)
        return pm_cli_usage_error ("bad process id '%s'", pid_text);
    pm_client_t *client = pm_remote_client (cli, true);
    if (!client)
        return PM_EXIT_USAGE;
    pm_request_t *request = pm_request_new (PM_CMD_LEASE, 0);
    request->pid = pid;
    int code = pm_remote_run (cli, client, request, 0, 0);
    pm_request_destroy (&request);
    pm_client_destroy (&client);
    return code;
}
