/*  probe.c - readiness and liveness probes (probe.h)

    One attempt at a time.  An attempt ends in a pass or a failure (with a
    reason); its timeout timer ends it as a failure.  Between attempts the
    probe sleeps on a timer: an idle agent with probes wakes only on them.

    tcp: a non-blocking connect; writable with SO_ERROR 0 passes.
    http: the same connection, then "GET path HTTP/1.0"; a status line
    "HTTP/1.x 2xx" passes.  Our own few lines rather than libcurl: a GET
    on a local port needs no TLS, redirects or pooling, and one more
    dependency (with its own threads for name resolution) is not worth it.
    The address comes resolved from the config (libpmconfig resolves
    host names at load), so no attempt waits on a name lookup.
    exec: /bin/sh -c COMMAND in its own process group, output discarded;
    exit 0 passes; on timeout the group gets SIGKILL.
*/
#include "probe.h"
#include "fdlimit.h"
#include "agentlog.h"
#include "spawn.h"
#include "timer.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct pm_probe_t {
    zloop_t *loop;                    /* not owned */
    pm_config_service_t *service;     /* copy of what exec probes need */
    pm_config_probe_t *config;        /* copy, so a reload can free the
                                         config the probe came from */
    bool alive;                       /* liveness, else readiness */
    char *const *env;                 /* borrowed */
    pm_probe_fn *verdict;
    void *arg;
    bool done;                        /* verdict given */
    int next_timer;                   /* next attempt, -1 */
    int attempt_timer;                /* this attempt's timeout, -1 */
    int deadline_timer;               /* readiness deadline, -1 */
    pid_t pid;                        /* exec attempt running, 0 */
    int sock;                         /* tcp/http attempt, -1 */
    bool sent;                        /* http: request written */
    char response [64];               /* http: start of the answer */
    size_t response_size;
    regex_t regex;                    /* log */
    bool has_regex;
    int notify_fd;                    /* notify_fd: read end, -1 */
    unsigned failures;                /* in a row */
    unsigned long attempts;
    char last_error [256];            /* reason of the last failure */
};

static void s_schedule (pm_probe_t *self, double delay);

static size_t
s_ms (double seconds)
{
    double ms = seconds * 1000.0 + 0.5;
    return ms < 1 ? 1 : (size_t) ms;
}

static void
s_end_timer (pm_probe_t *self, int *timer)
{
    pm_timer_end (self->loop, timer);
}

static void
s_close_socket (pm_probe_t *self)
{
    if (self->sock == -1)
        return;
    zmq_pollitem_t item = { NULL, self->sock, 0, 0 };
    zloop_poller_end (self->loop, &item);
    close (self->sock);
    self->sock = -1;
}

static void
s_kill_attempt (pm_probe_t *self)
{
    if (self->pid > 0) {
        //  It will be reaped by the reaper like any child; we no longer
        //  care for its status.
        kill (-self->pid, SIGKILL);
        self->pid = 0;
    }
    s_close_socket (self);
}

static void
s_give_verdict (pm_probe_t *self, bool passed, const char *reason)
{
    self->done = true;
    s_end_timer (self, &self->next_timer);
    s_end_timer (self, &self->attempt_timer);
    s_end_timer (self, &self->deadline_timer);
    s_kill_attempt (self);
    self->verdict (self->arg, self, passed, reason);
}

//  An attempt is over.
static void
s_attempt_done (pm_probe_t *self, bool passed, const char *error)
{
    s_end_timer (self, &self->attempt_timer);
    s_kill_attempt (self);
    if (self->done)
        return;
    if (passed) {
        self->failures = 0;
        if (!self->alive) {
            s_give_verdict (self, true, "ready");
            return;
        }
    }
    else {
        snprintf (self->last_error, sizeof self->last_error, "%s", error);
        self->failures++;
        pm_log_debug ("%s: %s probe attempt failed: %s", self->service->name,
                      self->alive ? "liveness" : "readiness", error);
        if (self->alive && self->failures >= self->config->failures) {
            char reason [400];
            snprintf (reason, sizeof reason, "liveness probe failed %u "
                      "time%s in a row: %s", self->failures,
                      self->failures == 1 ? "" : "s", self->last_error);
            s_give_verdict (self, false, reason);
            return;
        }
    }
    s_schedule (self, self->config->interval);
}

static int
s_on_attempt_timeout (zloop_t *loop, int timer_id, void *arg)
{
    pm_probe_t *self = (pm_probe_t *) arg;
    self->attempt_timer = -1;
    char error [64];
    snprintf (error, sizeof error, "no answer within %gs",
              self->config->timeout);
    s_attempt_done (self, false, error);
    return 0;
}

/* --- tcp and http ---------------------------------------------------- */

static int s_on_socket (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_watch (pm_probe_t *self, short events)
{
    zmq_pollitem_t item = { NULL, self->sock, 0, 0 };
    zloop_poller_end (self->loop, &item);
    item.events = events;
    if (zloop_poller (self->loop, &item, s_on_socket, self) == 0)
        zloop_poller_set_tolerant (self->loop, &item);
}

static void
s_http_request (pm_probe_t *self)
{
    char request [1024];
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.0\r\nHost: %s:%d\r\n"
                        "User-Agent: pmbus-probe\r\nConnection: close\r\n\r\n",
                        self->config->path, self->config->host,
                        self->config->port);
    if (len < 0 || (size_t) len >= sizeof request) {
        s_attempt_done (self, false, "http path too long");
        return;
    }
    //  A request this small fits a fresh socket's buffer in one go.
    ssize_t sent = send (self->sock, request, (size_t) len, MSG_NOSIGNAL);
    if (sent != len) {
        char error [128];
        snprintf (error, sizeof error, "cannot send the request: %s",
                  sent == -1 ? strerror (errno) : "short write");
        s_attempt_done (self, false, error);
        return;
    }
    self->sent = true;
    s_watch (self, ZMQ_POLLIN);
}

static void
s_http_read (pm_probe_t *self)
{
    ssize_t got = recv (self->sock, self->response + self->response_size,
                        sizeof self->response - 1 - self->response_size, 0);
    if (got == -1 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got > 0)
        self->response_size += (size_t) got;
    self->response [self->response_size] = 0;
    //  Enough to judge: the status line "HTTP/1.1 200 OK".
    char *eol = strstr (self->response, "\r\n");
    if (!eol && got > 0 && self->response_size < sizeof self->response - 1)
        return;
    int major, minor, status;
    if (sscanf (self->response, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        s_attempt_done (self, false, got == -1 ? strerror (errno)
                        : "not an HTTP answer");
        return;
    }
    if (status >= 200 && status < 300)
        s_attempt_done (self, true, NULL);
    else {
        char error [64];
        snprintf (error, sizeof error, "HTTP status %d", status);
        s_attempt_done (self, false, error);
    }
}

static int
s_on_socket (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_probe_t *self = (pm_probe_t *) arg;
    if (self->sock == -1 || item->fd != self->sock)
        return 0;
    if (self->sent) {
        s_http_read (self);
        return 0;
    }
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt (self->sock, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
        error = errno;
    if (error) {
        char text [160];
        snprintf (text, sizeof text, "connect %s:%d: %s", self->config->host,
                  self->config->port, strerror (error));
        s_attempt_done (self, false, text);
        return 0;
    }
    if (self->config->kind == PM_PROBE_TCP)
        s_attempt_done (self, true, NULL);
    else
        s_http_request (self);
    return 0;
}

static void
s_attempt_connect (pm_probe_t *self)
{
    char error [256];
    self->sock = socket (self->config->addr.ss_family,
                         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->sock != -1 && pm_fdlimit_check (self->sock) == -1) {
        close (self->sock);
        self->sock = -1;
    }
    if (self->sock == -1) {
        snprintf (error, sizeof error, "socket: %s", strerror (errno));
        s_attempt_done (self, false, error);
        return;
    }
    self->sent = false;
    self->response_size = 0;
    if (connect (self->sock, (struct sockaddr *) &self->config->addr,
                 self->config->addrlen)
        == -1 && errno != EINPROGRESS) {
        snprintf (error, sizeof error, "connect %s:%d: %s",
                  self->config->host, self->config->port, strerror (errno));
        s_attempt_done (self, false, error);
        return;
    }
    zmq_pollitem_t item = { NULL, self->sock, ZMQ_POLLOUT, 0 };
    //  Tolerant: a refused connection reports POLLERR/POLLHUP, and the
    //  handler must see it to read SO_ERROR.
    if (zloop_poller (self->loop, &item, s_on_socket, self) == 0)
        zloop_poller_set_tolerant (self->loop, &item);
}

/* --- exec ------------------------------------------------------------ */

static void
s_attempt_exec (pm_probe_t *self)
{
    pm_config_service_t spec;
    memset (&spec, 0, sizeof spec);
    spec.name = self->service->name;
    spec.command = self->config->command;
    spec.working_dir = self->service->working_dir;
    spec.env = self->service->env;
    spec.env_count = self->service->env_count;
    pm_spawn_options_t options = { self->env, true, 0 };
    pm_spawn_result_t result;
    char error [512];
    if (pm_spawn_run (&spec, &options, &result, error, sizeof error) == -1) {
        s_attempt_done (self, false, error);
        return;
    }
    self->pid = result.pid;
}

bool
pm_probe_on_exit (pm_probe_t *self, pid_t pid, int status)
{
    if (self->pid <= 0 || pid != self->pid)
        return false;
    self->pid = 0;
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        s_attempt_done (self, true, NULL);
    else {
        char error [96];
        if (WIFEXITED (status))
            snprintf (error, sizeof error, "'%s' exited with code %d",
                      self->config->command, WEXITSTATUS (status));
        else
            snprintf (error, sizeof error, "'%s' killed by signal %d",
                      self->config->command, WTERMSIG (status));
        s_attempt_done (self, false, error);
    }
    return true;
}

/* --- log and notify_fd ----------------------------------------------- */

void
pm_probe_line (pm_probe_t *self, const char *line, size_t size)
{
    if (self->done || !self->has_regex)
        return;
    char buffer [4096];
    size_t len = size < sizeof buffer - 1 ? size : sizeof buffer - 1;
    memcpy (buffer, line, len);
    buffer [len] = 0;
    if (regexec (&self->regex, buffer, 0, NULL, 0) == 0)
        s_give_verdict (self, true, "ready");
}

static void
s_close_notify (pm_probe_t *self)
{
    if (self->notify_fd == -1)
        return;
    zmq_pollitem_t item = { NULL, self->notify_fd, ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &item);
    close (self->notify_fd);
    self->notify_fd = -1;
}

static int
s_on_notify (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_probe_t *self = (pm_probe_t *) arg;
    //  Read everything there is: a long status line and the writer's close
    //  can arrive in one wakeup, and the newline may be at its end.
    while (self->notify_fd != -1) {
        char buffer [4096];
        ssize_t got = read (self->notify_fd, buffer, sizeof buffer);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1 && errno == EAGAIN)
            break;
        if (got > 0 && memchr (buffer, '\n', (size_t) got)) {
            s_close_notify (self);
            s_give_verdict (self, true, "ready");
            return 0;
        }
        if (got <= 0) {
            //  Closed without a newline: only the deadline can end this.
            snprintf (self->last_error, sizeof self->last_error,
                      "descriptor %d closed without a newline",
                      self->config->notify_fd);
            s_close_notify (self);
        }
    }
    return 0;
}

void
pm_probe_set_notify_fd (pm_probe_t *self, int fd)
{
    s_close_notify (self);
    self->notify_fd = fd;
    if (fd == -1)
        return;
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    if (zloop_poller (self->loop, &item, s_on_notify, self) == 0)
        zloop_poller_set_tolerant (self->loop, &item);
}

/* --- schedule -------------------------------------------------------- */

static int
s_on_next (zloop_t *loop, int timer_id, void *arg)
{
    pm_probe_t *self = (pm_probe_t *) arg;
    self->next_timer = -1;
    if (self->done)
        return 0;
    self->attempts++;
    self->attempt_timer = pm_timer_add (self->loop,
                                        s_ms (self->config->timeout),
                                        s_on_attempt_timeout, self);
    switch (self->config->kind) {
        case PM_PROBE_TCP:
        case PM_PROBE_HTTP:
            s_attempt_connect (self);
            break;
        case PM_PROBE_EXEC:
            s_attempt_exec (self);
            break;
        default:
            break;
    }
    return 0;
}

static void
s_schedule (pm_probe_t *self, double delay)
{
    s_end_timer (self, &self->next_timer);
    self->next_timer = pm_timer_add (self->loop, s_ms (delay), s_on_next,
                                    self);
}

static int
s_on_deadline (zloop_t *loop, int timer_id, void *arg)
{
    pm_probe_t *self = (pm_probe_t *) arg;
    self->deadline_timer = -1;
    char reason [400];
    if (self->last_error [0])
        snprintf (reason, sizeof reason, "not ready after %g s: %s",
                  self->config->deadline, self->last_error);
    else
        snprintf (reason, sizeof reason, "not ready after %g s",
                  self->config->deadline);
    s_give_verdict (self, false, reason);
    return 0;
}

static char *
s_dup (const char *text)
{
    return text ? strdup (text) : NULL;
}

pm_probe_t *
pm_probe_new (zloop_t *loop, const pm_config_service_t *service,
              const pm_config_probe_t *config, bool alive, char *const *env,
              pm_probe_fn *verdict, void *arg)
{
    pm_probe_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->service = calloc (1, sizeof *self->service);
    self->config = malloc (sizeof *self->config);
    assert (self->service && self->config);
    self->service->name = s_dup (service->name);
    self->service->working_dir = s_dup (service->working_dir);
    self->service->env_count = service->env_count;
    self->service->env = calloc (service->env_count + 1,
                                 sizeof *self->service->env);
    assert (self->service->env);
    for (size_t i = 0; i < service->env_count; i++) {
        self->service->env [i].key = s_dup (service->env [i].key);
        self->service->env [i].value = s_dup (service->env [i].value);
    }
    *self->config = *config;
    self->config->command = s_dup (config->command);
    self->config->host = s_dup (config->host);
    self->config->path = s_dup (config->path);
    self->config->regex = s_dup (config->regex);
    self->alive = alive;
    self->env = env;
    self->verdict = verdict;
    self->arg = arg;
    self->next_timer = self->attempt_timer = self->deadline_timer = -1;
    self->sock = -1;
    self->notify_fd = -1;
    if (config->kind == PM_PROBE_LOG) {
        //  Checked by the config loader already.
        self->has_regex = regcomp (&self->regex, config->regex,
                                   REG_EXTENDED | REG_NOSUB) == 0;
    }
    return self;
}

void
pm_probe_start (pm_probe_t *self)
{
    if (!self->alive && self->config->deadline > 0)
        self->deadline_timer = pm_timer_add (self->loop,
                                             s_ms (self->config->deadline),
                                             s_on_deadline, self);
    //  log and notify_fd wait for the service; the others poll.
    if (self->config->kind == PM_PROBE_TCP || self->config->kind == PM_PROBE_HTTP
    ||  self->config->kind == PM_PROBE_EXEC)
        s_schedule (self, self->config->initial_delay);
}

unsigned long
pm_probe_attempts (const pm_probe_t *self)
{
    return self->attempts;
}

void
pm_probe_destroy (pm_probe_t **self_p)
{
    pm_probe_t *self = *self_p;
    if (!self)
        return;
    s_end_timer (self, &self->next_timer);
    s_end_timer (self, &self->attempt_timer);
    s_end_timer (self, &self->deadline_timer);
    s_kill_attempt (self);
    s_close_notify (self);
    if (self->has_regex)
        regfree (&self->regex);
    free (self->config->command);
    free (self->config->host);
    free (self->config->path);
    free (self->config->regex);
    free (self->config);
    for (size_t i = 0; i < self->service->env_count; i++) {
        free (self->service->env [i].key);
        free (self->service->env [i].value);
    }
    free (self->service->env);
    free (self->service->name);
    free (self->service->working_dir);
    free (self->service);
    free (self);
    *self_p = NULL;
}
