/*  daemon.c - the double fork and the start pipe (daemon.h) */
#include "daemon.h"
#include "agentlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { EXIT_RUNTIME = 1 };

//  In the starting process: reads the daemon's line and exits with it.
static void
s_wait_for_word (const char *program, int fd, pid_t child)
{
    char line [PM_DAEMON_MESSAGE_MAX + 16];
    size_t have = 0;
    while (have < sizeof line - 1) {
        ssize_t got = read (fd, line + have, sizeof line - 1 - have);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t) got;
    }
    line [have] = 0;
    waitpid (child, NULL, 0);
    int code = 0, offset = 0;
    if (have == 0 || sscanf (line, "%d %n", &code, &offset) < 1) {
        fprintf (stderr, "%s: exited while starting\n", program);
        exit (EXIT_RUNTIME);
    }
    if (code != 0) {
        char *newline = strchr (line + offset, '\n');
        if (newline)
            *newline = 0;
        fprintf (stderr, "%s: %s\n", program, line + offset);
    }
    exit (code);
}

int
pm_daemon_start (const char *program)
{
    int fds [2];
    if (pipe2 (fds, O_CLOEXEC) == -1) {
        fprintf (stderr, "%s: pipe: %s\n", program, strerror (errno));
        exit (EXIT_RUNTIME);
    }
    pid_t pid = fork ();
    if (pid == -1) {
        fprintf (stderr, "%s: fork: %s\n", program, strerror (errno));
        exit (EXIT_RUNTIME);
    }
    if (pid > 0) {
        close (fds [1]);
        s_wait_for_word (program, fds [0], pid);
    }
    close (fds [0]);
    if (setsid () == -1)
        _exit (EXIT_RUNTIME);
    pid = fork ();
    if (pid == -1)
        _exit (EXIT_RUNTIME);
    if (pid > 0)
        _exit (0);              //  the daemon is re-parented
    int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd != -1) {
        dup2 (null_fd, STDIN_FILENO);
        close (null_fd);
    }
    if (chdir ("/") == -1)
        _exit (EXIT_RUNTIME);
    return fds [1];
}

void
pm_daemon_notify (int *fd, int code, const char *message)
{
    if (*fd == -1)
        return;
    char line [PM_DAEMON_MESSAGE_MAX + 16];
    int len = snprintf (line, sizeof line, "%d %s\n", code, message);
    if (len > (int) sizeof line - 1)
        len = (int) sizeof line - 1;
    ssize_t rc = write (*fd, line, (size_t) len);
    (void) rc;
    close (*fd);
    *fd = -1;
}

void
pm_daemon_detach_stdio (void)
{
    int null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd == -1)
        return;
    dup2 (null_fd, STDOUT_FILENO);
    dup2 (null_fd, STDERR_FILENO);
    close (null_fd);
    pm_log_quiet_stderr (true);
}

int
pm_daemon_absolute (const char *path, char *out, size_t size)
{
    char cwd [4096];
    int len;
    if (*path == '/' || !*path)
        len = snprintf (out, size, "%s", path);
    else
    if (!getcwd (cwd, sizeof cwd))
        return -1;
    else
        len = snprintf (out, size, "%s/%s", cwd, path);
    return len < 0 || (size_t) len >= size ? -1 : 0;
}
