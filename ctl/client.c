/*  client.c - pmctl's side of the control socket (see client.h)

    Owns: locating the agent from its config file, the lock check, the
    DEALER socket and the pidfd that watches the agent while pmctl waits.

    Races closed here:
    - The pidfd is opened before the request is sent, so an agent that
      dies while handling it is noticed, and a recycled pid cannot be
      mistaken for it afterwards.
    - An agent that answers and exits at once (shutdown) makes both the
      socket and the pidfd ready: the socket is always read first, and
      after the pidfd fires the socket gets a short grace period, since
      the reply may still be crossing libzmq's I/O thread.
    - Where no pidfd can be had (no pid file yet, old kernel), the lock is
      polled instead: the kernel releases it when the agent's process
      ends, however it ends.
*/
#include "client.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "keys.h"
#include "zmqlib.h"

#if !defined (SYS_pidfd_open) && defined (__linux__)
#   define SYS_pidfd_open 434     //  the same number on every architecture
#endif

//  How long a reply may trail the agent's exit (see the header comment).
#define S_EXIT_GRACE_MS 200
//  How often the lock is polled when the agent cannot be watched by pidfd.
#define S_LOCK_POLL_MS 100
//  Over TCP: the longest a connection and its CURVE handshake may take
//  before pmctl says the server cannot be reached, and the ZMTP
//  heartbeats that tear down a connection to a peer gone silent.
#define S_CONNECT_MS 5000
#define S_HEARTBEAT_MS 2000
#define S_MONITOR "inproc://pmctl-monitor"

struct pm_client_t {
    char name [PM_NAME_MAX + 1];  //  agent name
    char *config;                 //  absolute config path, or NULL
    char *warning;                //  why the config did not validate, or NULL
    pm_paths_t paths;             //  runtime dir, endpoints, lock, pid file
    void *context;                //  libzmq context, or NULL before a call
    void *socket;                 //  DEALER connected to paths.control
    long pid;                     //  the agent's pid from its pid file, or 0
    int pidfd;                    //  pidfd on pid, or -1
    uint64_t last_id;             //  the last id pm_client_next_id gave
    bool remote;                  //  --connect: no lock, no pid, CURVE
    pm_keys_t keys;               //  remote: the server's key and ours
    void *monitor;                //  remote: PAIR on the DEALER's events
    bool handshaken;              //  remote: the handshake succeeded
    bool disconnected;            //  remote: the server closed on us since
};

long long
pm_client_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
pm_client_config_file (const char *option, bool *implicit)
{
    *implicit = false;
    if (option && *option)
        return option;
    const char *env = getenv ("PMBUS_CONFIG");
    if (env && *env)
        return env;
    *implicit = true;
    return "pmbus.cfg";
}

//  The name a runtime directory given alone stands for: its last
//  component.  It only labels messages; the directory is used as is.
static void
s_name_from_dir (const char *dir, char *name, size_t size)
{
    char copy [PM_PATH_MAX];
    snprintf (copy, sizeof copy, "%s", dir);
    size_t len = strlen (copy);
    while (len > 1 && copy [len - 1] == '/')
        copy [--len] = 0;
    const char *slash = strrchr (copy, '/');
    snprintf (name, size, "%s", slash && slash [1] ? slash + 1 : copy);
}

//  Reads a string setting, or NULL when absent or not a string.
static const char *
s_lookup (config_t *file, const char *path)
{
    const char *value = NULL;
    if (config_lookup_string (file, path, &value) != CONFIG_TRUE)
        return NULL;
    return value;
}

//  Locates the agent from a config file that exists but does not
//  validate: the three settings that place it (agent.name, agent.control,
//  agent.events) as far as libconfig can read them, else the name derived
//  from the file's real path, as pm_config_load would have.  Returns 0,
//  or -1 when even that fails.
static int
s_locate_anyway (pm_client_t *self, const char *file, const char *rundir)
{
    //  Only a file that was read and found wrong; not one that cannot be
    //  read at all (missing, a directory, no permission).
    struct stat st;
    if (stat (file, &st) == -1 || !S_ISREG (st.st_mode)
    ||  access (file, R_OK) == -1)
        return -1;
    char *real = realpath (file, NULL);
    if (!real)
        return -1;
    char dir [PM_PATH_MAX];
    snprintf (dir, sizeof dir, "%s", real);
    char *slash = strrchr (dir, '/');
    if (slash)
        slash [slash == dir ? 1 : 0] = 0;

    config_t parsed;
    config_init (&parsed);
    config_set_include_dir (&parsed, dir);
    const char *name = NULL;
    const char *control = NULL;
    const char *events = NULL;
    if (config_read_file (&parsed, file) == CONFIG_TRUE) {
        name = s_lookup (&parsed, "agent.name");
        control = s_lookup (&parsed, "agent.control");
        events = s_lookup (&parsed, "agent.events");
    }
    int rc = 0;
    if (name && pm_agent_name_valid (name))
        snprintf (self->name, sizeof self->name, "%s", name);
    else
    //  Unreadable (a syntax error): the running agent wrote down which
    //  file it was started from.
    if (rundir || pm_rundir_find_by_config (real, self->name,
                                            sizeof self->name, NULL) == -1)
        rc = pm_agent_name_derive (real, self->name, sizeof self->name);
    char ignored [256];
    if (rc == 0)
        rc = pm_paths_init (&self->paths, self->name, rundir, control, events,
                            ignored, sizeof ignored);
    config_destroy (&parsed);
    if (rc == 0)
        self->config = real;
    else
        free (real);
    return rc;
}

//  Locates the agent that loaded file, when file is still exactly what it
//  loaded (the identities in its record equal): the record says where the
//  agent is, and the file, validated when the agent read it, need not be
//  parsed again.  Returns 0, or -1 when the file has to be read.
static int
s_locate_loaded (pm_client_t *self, const char *file)
{
    struct stat st;
    if (stat (file, &st) == -1 || !S_ISREG (st.st_mode)
    ||  access (file, R_OK) == -1)
        return -1;
    char *real = realpath (file, NULL);
    pm_loaded_t *loaded = malloc (sizeof *loaded);
    pm_file_id_t id;
    pm_file_id_of (&st, &id);
    char ignored [256];
    int rc = real && loaded
          && pm_rundir_find_by_config (real, self->name, sizeof self->name,
                                       loaded) == 0
          && loaded->has_id && pm_file_id_equal (&loaded->id, &id)
          && pm_paths_init (&self->paths, self->name, NULL, loaded->control,
                            loaded->events, ignored, sizeof ignored) == 0
           ? 0 : -1;
    free (loaded);
    if (rc == 0)
        self->config = real;
    else
        free (real);
    return rc;
}

pm_client_t *
pm_client_new (const char *config_option, const char *rundir,
               char *err, size_t errlen)
{
    bool implicit;
    const char *file = pm_client_config_file (config_option, &implicit);

    pm_client_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->pidfd = -1;

    //  Without a config file, a runtime directory alone still names an
    //  agent: its endpoints default inside it.
    if (rundir && *rundir && implicit && access (file, F_OK) == -1) {
        s_name_from_dir (rundir, self->name, sizeof self->name);
        if (pm_paths_init (&self->paths, self->name, rundir, NULL, NULL,
                           err, errlen) == -1) {
            pm_client_destroy (&self);
            return NULL;
        }
        return self;
    }
    if (implicit && access (file, F_OK) == -1) {
        snprintf (err, errlen,
                  "no config file: ./%s not found (use -c FILE, "
                  "$PMBUS_CONFIG or -s DIR)", file);
        pm_client_destroy (&self);
        return NULL;
    }
    if (!rundir && s_locate_loaded (self, file) == 0)
        return self;
    char cfg_err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (file, cfg_err, sizeof cfg_err);
    if (!config) {
        //  An agent keeps running on the config it loaded; a file broken
        //  since then must not lock the user out of stop or shutdown.
        if (s_locate_anyway (self, file, rundir) == 0) {
            self->warning = strdup (cfg_err);
            if (!self->warning)
                abort ();
            return self;
        }
        snprintf (err, errlen, "%s", cfg_err);
        pm_client_destroy (&self);
        return NULL;
    }
    self->config = strdup (config->path);
    if (!self->config)
        abort ();
    int rc = 0;
    if (config->name)
        snprintf (self->name, sizeof self->name, "%s", config->name);
    else
    if (pm_agent_name_derive (config->path, self->name,
                              sizeof self->name) == -1) {
        snprintf (err, errlen, "%s: cannot derive an agent name from the "
                  "path (set agent.name)", config->path);
        rc = -1;
    }
    if (rc == 0)
        rc = pm_paths_init (&self->paths, self->name, rundir,
                            config->control, config->events, err, errlen);
    pm_config_destroy (&config);
    if (rc == -1)
        pm_client_destroy (&self);
    return self;
}

pm_client_t *
pm_client_new_remote (const char *endpoint, const char *server_key_file,
                      const char *key_file, char *err, size_t errlen)
{
    bool tcp = strncmp (endpoint, "tcp://", 6) == 0;
    if (!tcp && strncmp (endpoint, "ipc://", 6) != 0) {
        snprintf (err, errlen, "--connect %s: expected tcp://HOST:PORT or "
                  "ipc://PATH", endpoint);
        return NULL;
    }
    if (tcp && (!server_key_file || !*server_key_file
             || !key_file || !*key_file)) {
        snprintf (err, errlen, "--connect %s needs --server-key FILE (the "
                  "server's public certificate) and --key FILE_secret (this "
                  "client's), or PMBUS_SERVER_KEY and PMBUS_KEY", endpoint);
        return NULL;
    }
    pm_client_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->pidfd = -1;
    self->remote = true;
    snprintf (self->name, sizeof self->name, "%s", endpoint);
    if (snprintf (self->paths.control, sizeof self->paths.control, "%s",
                  endpoint) >= (int) sizeof self->paths.control) {
        snprintf (err, errlen, "--connect %s: too long", endpoint);
        pm_client_destroy (&self);
        return NULL;
    }
    if (tcp && pm_keys_load (server_key_file, key_file, &self->keys, err,
                             errlen) == -1) {
        pm_client_destroy (&self);
        return NULL;
    }
    return self;
}

void
pm_client_secure (const pm_client_t *self, void *socket)
{
    if (!self->remote || !self->keys.server [0])
        return;
    int on = 1, ivl = S_HEARTBEAT_MS, timeout = 3 * S_HEARTBEAT_MS;
    int handshake = S_CONNECT_MS;
    pm_zmq->setsockopt (socket, ZMQ_CURVE_SERVERKEY, self->keys.server, 40);
    pm_zmq->setsockopt (socket, ZMQ_CURVE_PUBLICKEY, self->keys.public, 40);
    pm_zmq->setsockopt (socket, ZMQ_CURVE_SECRETKEY, self->keys.secret, 40);
    pm_zmq->setsockopt (socket, ZMQ_IMMEDIATE, &on, sizeof on);
    pm_zmq->setsockopt (socket, ZMQ_HANDSHAKE_IVL, &handshake,
                        sizeof handshake);
    pm_zmq->setsockopt (socket, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    pm_zmq->setsockopt (socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout,
                        sizeof timeout);
}

int
pm_client_endpoint (const pm_client_t *self, const char *endpoint,
                    char *out, size_t size)
{
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    bool wildcard = strncmp (endpoint, "tcp://", 6) == 0 && colon
                 && ((colon - host == 1 && *host == '*')
                  || (colon - host == 7 && strncmp (host, "0.0.0.0", 7) == 0)
                  || (colon - host == 4 && strncmp (host, "[::]", 4) == 0)
                  || (colon - host == 2 && strncmp (host, "::", 2) == 0));
    if (!wildcard || !self->remote
    ||  strncmp (self->paths.control, "tcp://", 6) != 0)
        return snprintf (out, size, "%s", endpoint) < (int) size ? 0 : -1;
    //  The host pmctl reached the control socket at.
    const char *ours = self->paths.control + 6;
    const char *our_colon = strrchr (ours, ':');
    int len = our_colon ? (int) (our_colon - ours) : (int) strlen (ours);
    return snprintf (out, size, "tcp://%.*s%s", len, ours, colon)
           < (int) size ? 0 : -1;
}

bool
pm_client_is_remote (const pm_client_t *self)
{
    return self->remote;
}

void
pm_client_destroy (pm_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_client_t *self = *self_p;
    if (self->monitor)
        pm_zmq->close (self->monitor);
    if (self->socket)
        pm_zmq->close (self->socket);
    if (self->context)
        pm_zmq->ctx_term (self->context);
    if (self->pidfd != -1)
        close (self->pidfd);
    free (self->config);
    free (self->warning);
    free (self);
    *self_p = NULL;
}

const char *
pm_client_name (const pm_client_t *self)
{
    return self->name;
}

const pm_paths_t *
pm_client_paths (const pm_client_t *self)
{
    return &self->paths;
}

const char *
pm_client_config_path (const pm_client_t *self)
{
    return self->config;
}

const char *
pm_client_warning (const pm_client_t *self)
{
    return self->warning;
}

//  Opens a pidfd on the agent named by the pid file.  Leaves pidfd at -1
//  when there is no pid file yet or the kernel has no pidfd_open; the
//  wait then falls back to the lock.
static void
s_watch_agent (pm_client_t *self)
{
    self->pid = pm_rundir_read_pid (&self->paths);
    if (self->pid <= 0 || self->pid > INT_MAX) {
        self->pid = 0;
        return;
    }
#ifdef SYS_pidfd_open
    self->pidfd = (int) syscall (SYS_pidfd_open, (pid_t) self->pid, 0);
#endif
    //  ESRCH: a stale pid file while the lock is held (an agent that has
    //  not written its pid yet); the lock stays the proof of life.
    if (self->pidfd == -1)
        self->pid = 0;
}

//  True when the agent is known to be gone: its lock is free.
static bool
s_lock_released (const pm_client_t *self)
{
    //  A remote agent has no lock here: only its answers tell.
    return !self->remote && pm_rundir_agent_running (&self->paths) == 0;
}

//  Reads the monitor's waiting events.  Returns -1 with the reason in err
//  once a handshake failed (libzmq tells which side refused), else 0.
static int
s_monitor_check (pm_client_t *self, char *err, size_t errlen)
{
    for (;;) {
        zmq_msg_t msg;
        pm_zmq->msg_init (&msg);
        if (pm_zmq->msg_recv (&msg, self->monitor, ZMQ_DONTWAIT) == -1) {
            pm_zmq->msg_close (&msg);
            return 0;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (pm_zmq->msg_size (&msg) >= 6) {
            const unsigned char *data = pm_zmq->msg_data (&msg);
            memcpy (&event, data, 2);
            memcpy (&value, data + 2, 4);
        }
        //  The second frame (the endpoint) is already here.
        while (pm_zmq->msg_more (&msg)) {
            pm_zmq->msg_close (&msg);
            pm_zmq->msg_init (&msg);
            pm_zmq->msg_recv (&msg, self->monitor, 0);
        }
        pm_zmq->msg_close (&msg);
        const char *at = self->paths.control;
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            self->handshaken = true;
        else
        if (event == ZMQ_EVENT_DISCONNECTED)
            self->disconnected = self->handshaken;
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            snprintf (err, errlen, "security handshake failed: the server at "
                      "%s refused this client's key %s (ZAP status %u): its "
                      "public certificate is not in the server's clients "
                      "directory", at, self->keys.public, (unsigned) value);
            return -1;
        }
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            snprintf (err, errlen, "security handshake failed: the server at "
                      "%s did not complete the CURVE handshake (is "
                      "--server-key that server's public key?)", at);
            return -1;
        }
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            snprintf (err, errlen, "security handshake failed: protocol "
                      "error 0x%x with %s (a server without CURVE, or one "
                      "that expects other keys)", (unsigned) value, at);
            return -1;
        }
    }
}

//  Remote: waits until the DEALER has a connection whose handshake is
//  done (ZMQ_IMMEDIATE: only then is it writable), a handshake fails, or
//  S_CONNECT_MS (or timeout_ms when shorter) passes.  Returns 0 or -1
//  with err.
static int
s_wait_connected (pm_client_t *self, int timeout_ms, char *err, size_t errlen)
{
    int limit = timeout_ms >= 0 && timeout_ms < S_CONNECT_MS ? timeout_ms
              : S_CONNECT_MS;
    long long deadline = pm_client_now_ms () + limit;
    for (;;) {
        if (s_monitor_check (self, err, errlen) == -1)
            return -1;
        zmq_pollitem_t items [2] = {
            { self->socket, 0, ZMQ_POLLOUT, 0 },
            { self->monitor, 0, ZMQ_POLLIN, 0 }
        };
        long long wait = deadline - pm_client_now_ms ();
        if (wait < 0)
            wait = 0;
        if (pm_zmq->poll (items, 2, (long) wait) == -1
        &&  pm_zmq->error () != EINTR) {
            snprintf (err, errlen, "cannot wait for %s: %s",
                      self->paths.control,
                      pm_zmq->strerror (pm_zmq->error ()));
            return -1;
        }
        if (items [0].revents & ZMQ_POLLOUT)
            return 0;
        if (!(items [1].revents & ZMQ_POLLIN)
        &&  pm_client_now_ms () >= deadline) {
            snprintf (err, errlen, "cannot reach %s within %.1f s (%s)",
                      self->paths.control, limit / 1000.0,
                      self->handshaken ? "connected, then lost"
                      : "nothing answers there, or the network drops it");
            return -1;
        }
    }
}

//  Receives one whole message and keeps its last frame (an agent that
//  echoes extra envelope frames is still understood).  Returns 0 with a
//  malloc'd copy, or -1 (errno EAGAIN when nothing was waiting).
static int
s_receive (void *socket, char **data_p, size_t *size_p)
{
    char *data = NULL;
    size_t size = 0;
    int more = 1;
    int flags = ZMQ_DONTWAIT;
    while (more) {
        zmq_msg_t msg;
        pm_zmq->msg_init (&msg);
        if (pm_zmq->msg_recv (&msg, socket, flags) == -1) {
            int saved = errno;
            pm_zmq->msg_close (&msg);
            free (data);
            errno = saved;
            return -1;
        }
        //  The rest of a message is already here once its first frame is.
        flags = 0;
        more = pm_zmq->msg_more (&msg);
        free (data);
        size = pm_zmq->msg_size (&msg);
        data = malloc (size ? size : 1);
        if (!data)
            abort ();
        memcpy (data, pm_zmq->msg_data (&msg), size);
        pm_zmq->msg_close (&msg);
    }
    *data_p = data;
    *size_p = size;
    return 0;
}

//  Opens the context and the DEALER, connected to the control endpoint.
static int
s_connect (pm_client_t *self, char *err, size_t errlen)
{
    if (pm_zmq_load (err, errlen) == -1)
        return -1;
    self->context = pm_zmq->ctx_new ();
    if (self->context)
        self->socket = pm_zmq->socket (self->context, ZMQ_DEALER);
    if (!self->socket) {
        snprintf (err, errlen, "cannot create a socket: %s",
                  pm_zmq->strerror (pm_zmq->error ()));
        return -1;
    }
    //  Nothing must outlive pmctl: an unsent request is dropped at exit.
    int linger = 0;
    int64_t max_size = PM_FRAME_MAX;
    pm_zmq->setsockopt (self->socket, ZMQ_LINGER, &linger, sizeof linger);
    pm_zmq->setsockopt (self->socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (self->remote) {
        //  Watched from before the connect, so no failure goes unseen.
        pm_client_secure (self, self->socket);
        int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                   | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                   | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                   | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
        if (pm_zmq->socket_monitor (self->socket, S_MONITOR, events) == -1
        ||  !(self->monitor = pm_zmq->socket (self->context, ZMQ_PAIR))
        ||  pm_zmq->connect (self->monitor, S_MONITOR) == -1) {
            snprintf (err, errlen, "cannot watch the connection to %s: %s",
                      self->paths.control,
                      pm_zmq->strerror (pm_zmq->error ()));
            return -1;
        }
    }
    if (pm_zmq->connect (self->socket, self->paths.control) == -1) {
        snprintf (err, errlen, "cannot connect to %s: %s",
                  self->paths.control, pm_zmq->strerror (pm_zmq->error ()));
        return -1;
    }
    return 0;
}

//  Waits up to timeout_ms for a reply to id on the socket, without
//  looking at the agent.  Returns 1 with a reply, 0 at the deadline, -1
//  on error (message in err).
static int
s_read_reply (pm_client_t *self, uint64_t id, pm_reply_t **reply_p,
              char **frame_p, size_t *size_p, char *err, size_t errlen)
{
    for (;;) {
        char *data;
        size_t size;
        if (s_receive (self->socket, &data, &size) == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            snprintf (err, errlen, "cannot receive from %s: %s",
                      self->paths.control, pm_zmq->strerror (errno));
            return -1;
        }
        char why [256] = "";
        pm_reply_t *reply = NULL;
        if (pm_reply_decode (data, size, &reply, why, sizeof why) != PM_OK) {
            snprintf (err, errlen, "malformed reply from the agent: %s", why);
            free (data);
            return -1;
        }
        //  A fresh DEALER only hears its own replies; skip anything else
        //  rather than trust it.
        if (reply->id != id) {
            pm_reply_destroy (&reply);
            free (data);
            continue;
        }
        *reply_p = reply;
        *frame_p = data;
        *size_p = size;
        return 1;
    }
}

pm_call_t
pm_client_open (pm_client_t *self, char *err, size_t errlen)
{
    if (self->remote) {
        if (!self->socket && s_connect (self, err, errlen) == -1)
            return PM_CALL_ERROR;
        return PM_CALL_READY;
    }
    int running = pm_rundir_agent_running (&self->paths);
    if (running == -1) {
        snprintf (err, errlen, "cannot check the agent's lock %s: %s",
                  self->paths.lock, strerror (errno));
        return PM_CALL_ERROR;
    }
    if (running == 0) {
        if (self->config)
            snprintf (err, errlen, "no agent running for %s (runtime dir %s)",
                      self->config, self->paths.dir);
        else
            snprintf (err, errlen, "no agent running (runtime dir %s)",
                      self->paths.dir);
        return PM_CALL_NO_AGENT;
    }
    //  Once per client: the pidfd keeps watching the same process, so a
    //  recycled pid cannot be mistaken for the agent on a later call.
    if (!self->socket) {
        s_watch_agent (self);
        if (s_connect (self, err, errlen) == -1)
            return PM_CALL_ERROR;
    }
    return PM_CALL_READY;
}

uint64_t
pm_client_next_id (pm_client_t *self)
{
    //  Unique among this client's requests; the pid makes ids from two
    //  pmctl processes easy to tell apart in the agent's log.
    if (self->last_id == 0)
        self->last_id = (uint64_t) getpid () << 20;
    return ++self->last_id;
}

void *
pm_client_context (const pm_client_t *self)
{
    return self->context;
}

long
pm_client_pid (const pm_client_t *self)
{
    return self->pid;
}

int
pm_client_pidfd (const pm_client_t *self)
{
    return self->pidfd;
}

bool
pm_client_agent_gone (const pm_client_t *self)
{
    if (self->pidfd != -1) {
        struct pollfd item = { self->pidfd, POLLIN, 0 };
        return poll (&item, 1, 0) == 1;
    }
    return s_lock_released (self);
}

pm_call_t
pm_client_call (pm_client_t *self, const pm_request_t *request,
                int timeout_ms, pm_reply_t **reply_p,
                char **frame_p, size_t *size_p, char *err, size_t errlen)
{
    *reply_p = NULL;
    *frame_p = NULL;
    *size_p = 0;
    pm_call_t opened = pm_client_open (self, err, errlen);
    if (opened != PM_CALL_READY)
        return opened;

    char *data;
    size_t size;
    if (pm_request_encode (request, &data, &size) == -1) {
        snprintf (err, errlen, "cannot encode the request");
        return PM_CALL_ERROR;
    }
    //  Remote: sent once the handshake is done, so that a refused key is
    //  an answer and never a silent wait.
    if (self->remote
    &&  s_wait_connected (self, timeout_ms, err, errlen) == -1) {
        free (data);
        return PM_CALL_ERROR;
    }
    //  A connected DEALER queues the frame until the pipe is up, so this
    //  does not block; DONTWAIT guards against the unexpected anyway.
    int rc = pm_zmq->send (self->socket, data, size, ZMQ_DONTWAIT);
    free (data);
    if (rc == -1) {
        snprintf (err, errlen, "cannot send to %s: %s", self->paths.control,
                  pm_zmq->strerror (pm_zmq->error ()));
        return PM_CALL_ERROR;
    }

    long long deadline = timeout_ms < 0 ? -1
                       : pm_client_now_ms () + timeout_ms;
    long long exited_at = -1;       //  when the agent was seen gone
    for (;;) {
        long long now = pm_client_now_ms ();
        long long wait = deadline < 0 ? -1 : deadline - now;
        if (deadline >= 0 && wait < 0)
            wait = 0;
        if (exited_at >= 0) {
            long long grace = exited_at + S_EXIT_GRACE_MS - now;
            wait = grace < 0 ? 0 : grace;
        }
        else
        if (!self->remote && self->pidfd == -1
        &&  (wait < 0 || wait > S_LOCK_POLL_MS))
            wait = S_LOCK_POLL_MS;

        zmq_pollitem_t items [3] = {
            { self->socket, 0, ZMQ_POLLIN, 0 },
            { NULL, self->pidfd, ZMQ_POLLIN, 0 },
            { self->monitor, 0, ZMQ_POLLIN, 0 }
        };
        int count = self->pidfd != -1 && exited_at < 0 ? 2 : 1;
        if (self->remote) {
            //  No pidfd: the socket and its monitor.
            items [1] = items [2];
            count = 2;
        }
        if (pm_zmq->poll (items, count, (long) wait) == -1) {
            if (pm_zmq->error () == EINTR)
                continue;
            snprintf (err, errlen, "cannot wait for the agent: %s",
                      pm_zmq->strerror (pm_zmq->error ()));
            return PM_CALL_ERROR;
        }
        //  The socket first: a reply that came with the exit still counts.
        if (items [0].revents & ZMQ_POLLIN) {
            rc = s_read_reply (self, request->id, reply_p, frame_p, size_p,
                               err, errlen);
            if (rc == 1)
                return PM_CALL_REPLY;
            if (rc == -1)
                return PM_CALL_ERROR;
        }
        if (self->remote && (items [1].revents & ZMQ_POLLIN)
        &&  s_monitor_check (self, err, errlen) == -1)
            return PM_CALL_ERROR;
        now = pm_client_now_ms ();
        if (exited_at >= 0) {
            if (now >= exited_at + S_EXIT_GRACE_MS) {
                snprintf (err, errlen, "agent exited before answering");
                return PM_CALL_AGENT_EXITED;
            }
            continue;
        }
        if ((!self->remote && count == 2 && (items [1].revents & ZMQ_POLLIN))
        ||  (self->pidfd == -1 && s_lock_released (self))) {
            exited_at = now;
            continue;
        }
        if (deadline >= 0 && now >= deadline) {
            snprintf (err, errlen, "agent not responding");
            return PM_CALL_NO_ANSWER;
        }
    }
}

int
pm_client_wait_exit (pm_client_t *self, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1
                       : pm_client_now_ms () + timeout_ms;
    //  Remote: no process to watch; the agent closing its end of the
    //  connection is its exit, as far as the network can tell.
    while (self->remote) {
        char ignored [512];
        s_monitor_check (self, ignored, sizeof ignored);
        if (self->disconnected)
            return 0;
        long long wait = deadline < 0 ? -1 : deadline - pm_client_now_ms ();
        if (deadline >= 0 && wait <= 0)
            return -1;
        zmq_pollitem_t item = { self->monitor, 0, ZMQ_POLLIN, 0 };
        if (pm_zmq->poll (&item, 1, (long) wait) == -1
        &&  pm_zmq->error () != EINTR)
            return -1;
    }
    for (;;) {
        long long wait = deadline < 0 ? -1 : deadline - pm_client_now_ms ();
        if (deadline >= 0 && wait < 0)
            wait = 0;
        if (self->pidfd != -1) {
            struct pollfd item = { self->pidfd, POLLIN, 0 };
            int rc = poll (&item, 1, (int) wait);
            if (rc == 1)
                return 0;
            if (rc == -1 && errno != EINTR)
                return -1;
        }
        else {
            if (s_lock_released (self))
                return 0;
            if (wait < 0 || wait > S_LOCK_POLL_MS)
                wait = S_LOCK_POLL_MS;
            struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
            nanosleep (&ts, NULL);
        }
        if (deadline >= 0 && pm_client_now_ms () >= deadline)
            return s_lock_released (self) ? 0 : -1;
    }
}
