/*  main.c - pmd: options, wiring, loop start and stop

    No logic of its own: it reads the options and the config, claims the
    runtime directory, builds the modules in order (signals blocked before
    the first ZeroMQ socket exists, so libzmq's threads inherit the mask),
    runs the loop until the supervisor reports the shutdown complete, and
    takes everything down in reverse order.
*/
#include "agentlog.h"
#include "control.h"
#include "curve.h"
#include "daemon.h"
#include "uplink.h"
#include "snapshot.h"
#include "echo.h"
#include "config.h"
#include "fdlimit.h"
#include "lease.h"
#include "lifecycle.h"
#include "publish.h"
#include "reaper.h"
#include "supervisor.h"
#include "timer.h"
#include "pm_rundir.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/*  pmd's exit codes (README "Exit codes"). */
enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,         /* could not run: bind failed, ... */
    EXIT_USAGE = 2,           /* bad option or invalid config */
    EXIT_RUNNING = 3          /* another agent holds this runtime directory */
};

typedef struct {
    pm_supervisor_t *sup;
    int signals;              /* SIGTERM/SIGINT received */
    pm_curve_t *curve;        /* or NULL (no TCP endpoints) */
    pm_uplink_t *uplink;      /* or NULL (no agent.broker) */
} s_agent_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: pmd -c FILE [options]\n"
        "Supervise the services described in FILE.\n"
        "\n"
        "  -c, --config FILE     the config file (default: $PMBUS_CONFIG, else ./pmbus.cfg)\n"
        "      --check           validate the config file and exit\n"
        "  -s, --runtime-dir DIR use DIR as the runtime directory\n"
        "  -f, --follow-logs     also print every service line on stdout as \"name | line\"\n"
        "  -d, --daemon          run in the background; return once the agent accepts\n"
        "                        commands (exit 0), or with its error\n"
        "  -l, --lease PID       shut down cleanly when PID (and every other leased\n"
        "                        process) has exited; may be given several times\n"
        "  -v, --verbose         log debug messages too\n"
        "  -h, --help            this text\n"
        "      --version         print the version\n"
        "\n"
        "Exit codes: 0 clean shutdown (or config valid with --check),\n"
        "1 runtime error (e.g. a socket cannot be bound), 2 usage error or\n"
        "invalid config, 3 an agent is already running for this config.\n");
}

static void
s_on_exit (void *arg, pid_t pid, int status)
{
    s_agent_t *agent = (s_agent_t *) arg;
    pm_supervisor_on_exit (agent->sup, pid, status);
}

static void
s_on_reaped (void *arg)
{
    s_agent_t *agent = (s_agent_t *) arg;
    pm_supervisor_reaped (agent->sup);
}

//  A client key taken out of the directory: its event subscriptions go
//  too (its requests are refused by the control socket's own check).
static void
s_on_keys_reloaded (void *arg, const pm_curve_t *curve)
{
    pm_publish_cut_revoked ((pm_publish_t *) arg, curve);
}

static void
s_on_signal (void *arg, int signum)
{
    s_agent_t *agent = (s_agent_t *) arg;
    if (signum == SIGHUP) {
        pm_log_info ("SIGHUP received: reloading the config");
        if (agent->curve)
            pm_curve_reload (agent->curve);
        pm_supervisor_reload (agent->sup, 0, NULL);
        return;
    }
    agent->signals++;
    pm_log_info ("%s received: %s", signum == SIGTERM ? "SIGTERM" : "SIGINT",
                 agent->signals == 1 ? "shutting down"
                 : "killing what is left");
    pm_supervisor_shutdown (agent->sup, agent->signals > 1, 0, NULL);
}

static void
s_on_reloaded (void *arg)
{
    s_agent_t *agent = (s_agent_t *) arg;
    if (agent->uplink)
        pm_uplink_services_changed (agent->uplink);
}

static void
s_on_leases_change (void *arg, size_t count)
{
    s_agent_t *agent = (s_agent_t *) arg;
    pm_supervisor_leases_changed (agent->sup);
    if (count == 0) {
        pm_log_info ("the last leased process exited: shutting down");
        pm_supervisor_shutdown (agent->sup, false, 0, NULL);
    }
}

//  A name for this run of the agent (PROTOCOL.md 5: "instance"): 32 hex
//  digits of randomness, so that a restarted agent, whose seqs start at 1
//  again, is never taken for the one before.
static void
s_make_instance (char *buf, size_t size)
{
    unsigned char bytes [16];
    if (getrandom (bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes) {
        //  No entropy yet (early boot): the pid and the clock tell runs
        //  apart as well.
        struct timespec now;
        clock_gettime (CLOCK_REALTIME, &now);
        snprintf (buf, size, "%08lx%016llx%08lx", (long) getpid (),
                  (unsigned long long) now.tv_sec, (long) now.tv_nsec);
        return;
    }
    for (size_t i = 0; i < sizeof bytes && 2 * i + 2 < size; i++)
        snprintf (buf + 2 * i, 3, "%02x", bytes [i]);
}

int
main (int argc, char *argv [])
{
    const char *config_path = getenv ("PMBUS_CONFIG");
    const char *rundir = NULL;
    bool check = false, follow = false, verbose = false, daemon = false;
    pid_t leases [64];
    size_t leases_count = 0;
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'C' },
        { "runtime-dir", required_argument, NULL, 's' },
        { "follow-logs", no_argument, NULL, 'f' },
        { "verbose", no_argument, NULL, 'v' },
        { "daemon", no_argument, NULL, 'd' },
        { "lease", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:s:fvdl:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': config_path = optarg; break;
            case 'C': check = true; break;
            case 's': rundir = optarg; break;
            case 'f': follow = true; break;
            case 'v': verbose = true; break;
            case 'd': daemon = true; break;
            case 'l': {
                char *end;
                long pid = strtol (optarg, &end, 10);
                if (*end || pid <= 0 || pid > 4194304) {
                    fprintf (stderr, "pmd: --lease: '%s' is not a pid\n",
                             optarg);
                    return EXIT_USAGE;
                }
                if (leases_count == sizeof leases / sizeof leases [0]) {
                    fprintf (stderr, "pmd: too many --lease options\n");
                    return EXIT_USAGE;
                }
                leases [leases_count++] = (pid_t) pid;
                break;
            }
            case 'h': s_usage (stdout); return EXIT_OK;
            case 'V': printf ("pmd %s\n", PM_VERSION); return EXIT_OK;
            default:
                fprintf (stderr, "pmd: see pmd --help\n");
                return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "pmd: unexpected argument '%s'; see pmd --help\n",
                 argv [optind]);
        return EXIT_USAGE;
    }
    if (!config_path || !*config_path)
        config_path = "pmbus.cfg";
    //  A daemon works from "/": a relative runtime directory must be made
    //  absolute while the current directory is still the caller's.
    char rundir_abs [PM_PATH_MAX];
    if (rundir && *rundir) {
        if (pm_daemon_absolute (rundir, rundir_abs, sizeof rundir_abs) == -1) {
            fprintf (stderr, "pmd: --runtime-dir %s: path too long\n", rundir);
            return EXIT_USAGE;
        }
        rundir = rundir_abs;
    }

    char err [PM_CONFIG_ERR_MAX];
    pm_config_t *config = pm_config_load (config_path, err, sizeof err);
    if (!config) {
        fprintf (stderr, "pmd: %s\n", err);
        return EXIT_USAGE;
    }
    //  The config made sure TCP comes with agent.curve; the keys must be
    //  there too before anything starts
    //  (and for --check).
    pm_curve_dir_t clients = { config->curve_clients, PM_CURVE_CLIENTS };
    if (config->tcp_control
    &&  pm_curve_check (config->curve_secret_key, &clients, 1, err,
                        sizeof err) == -1) {
        fprintf (stderr, "pmd: %s: %s\n", config_path, err);
        pm_config_destroy (&config);
        return EXIT_USAGE;
    }

    if (config->broker
    &&  pm_uplink_check (config->broker, config->broker_server_key,
                         config->broker_key, err, sizeof err) == -1) {
        fprintf (stderr, "pmd: %s: %s\n", config_path, err);
        pm_config_destroy (&config);
        return EXIT_USAGE;
    }
    if (check) {
        printf ("%s: ok, %zu service%s\n", config_path,
                config->services_count,
                config->services_count == 1 ? "" : "s");
        pm_config_destroy (&config);
        return EXIT_OK;
    }

    char name [PM_NAME_MAX];
    if (config->name)
        snprintf (name, sizeof name, "%s", config->name);
    else
        pm_agent_name_derive (config->path, name, sizeof name);
    pm_log_setup (name, config->log_format == PM_LOG_JSON,
                  verbose ? PM_LOG_DEBUG : PM_LOG_INFO);

    pm_paths_t paths;
    if (pm_paths_init (&paths, name, rundir, config->control, config->events,
                       err, sizeof err) == -1) {
        fprintf (stderr, "pmd: %s\n", err);
        pm_config_destroy (&config);
        return EXIT_USAGE;
    }

    //  Into the background before any thread exists (fork and threads do
    //  not mix); from here on, errors also go to the starting process.
    int notify_fd = -1;
    if (daemon) {
        follow = false;
        notify_fd = pm_daemon_start ("pmd");
        //  Errors reach the starting process through the pipe; the agent's
        //  log goes to its file.
        pm_log_quiet_stderr (true);
    }

    //  Before any thread exists: libzmq's I/O threads inherit this mask, so
    //  our signals only ever arrive through the signalfd.
    if (pm_reaper_block_signals () == -1) {
        perror ("pmd: sigprocmask");
        return EXIT_RUNTIME;
    }
    zsys_handler_set (NULL);
    //  Room for many services, and some always left for clients: libzmq
    //  aborts if an accept finds none (fdlimit.h).
    if (pm_fdlimit_init (PM_FDLIMIT_RESERVE) == -1)
        pm_log_warn ("cannot raise the descriptor limit: %s",
                     strerror (errno));

    long holder = 0;
    pm_lifecycle_t *lifecycle = pm_lifecycle_acquire (&paths, &holder, err,
                                                      sizeof err);
    if (!lifecycle) {
        if (notify_fd == -1)
            fprintf (stderr, "pmd: %s\n", err);
        int code = holder ? EXIT_RUNNING : EXIT_RUNTIME;
        pm_daemon_notify (&notify_fd, code, err);
        pm_config_destroy (&config);
        return code;
    }
    //  pmctl finds an agent whose config no longer parses by this file.
    //  Orphans of our services are reparented to us, so we reap them and
    //  can see their process groups die (and sweep what escaped them).
    bool claimed = false;
    const pm_file_id_t *file_id = config->has_file_id ? &config->file_id
                                                      : NULL;
    if (pm_lifecycle_write_config (lifecycle, config->path, file_id) == -1)
        //  (A path that long is cut in the message, not in the file.)
        snprintf (err, sizeof err, "cannot write %.900s: %s", paths.config,
                  strerror (errno));
    else
    if (prctl (PR_SET_CHILD_SUBREAPER, 1) == -1)
        snprintf (err, sizeof err, "prctl PR_SET_CHILD_SUBREAPER: %s",
                  strerror (errno));
    else
        claimed = true;
    if (!claimed) {
        if (notify_fd == -1)
            fprintf (stderr, "pmd: %s\n", err);
        pm_daemon_notify (&notify_fd, EXIT_RUNTIME, err);
        pm_lifecycle_release (&lifecycle);
        pm_config_destroy (&config);
        return EXIT_RUNTIME;
    }

    char agent_log [PM_PATH_MAX + 32];
    snprintf (agent_log, sizeof agent_log, "%s/pmd.agent.log",
              config->log_dir);
    //  The supervisor takes the config (a reload replaces it); keep its path.
    char config_path_abs [PM_PATH_MAX];
    snprintf (config_path_abs, sizeof config_path_abs, "%s", config->path);
    int rc = EXIT_RUNTIME;
    zloop_t *loop = NULL;
    pm_publish_t *pub = NULL;
    pm_supervisor_t *sup = NULL;
    pm_snapshot_t *snapshot = NULL;
    pm_control_t *control = NULL;
    pm_reaper_t *reaper = NULL;
    pm_leases_t *lease_set = NULL;
    pm_curve_t *curve = NULL;
    char *tcp_control = NULL, *tcp_events = NULL;
    char *broker [3] = { NULL, NULL, NULL };
    s_agent_t agent = { NULL, 0, NULL, NULL };

    char instance [PM_INSTANCE_MAX + 1];
    s_make_instance (instance, sizeof instance);
    loop = zloop_new ();
    zloop_set_nonstop (loop, true);
    pub = pm_publish_new (paths.events, name, instance,
                          config->subscriber_queue, err, sizeof err);
    if (!pub)
        goto fail;
    if (pm_publish_watch (pub, loop, err, sizeof err) == -1)
        goto fail;
    if (config->tcp_control) {
        curve = pm_curve_new (loop, config->curve_secret_key, &clients, 1,
                              err, sizeof err);
        if (!curve
        ||  pm_publish_bind_tcp (pub, config->tcp_events, curve, err,
                                 sizeof err) == -1)
            goto fail;
        pm_curve_set_on_reload (curve, s_on_keys_reloaded, pub);
    }
    //  Kept apart: the supervisor takes the config.
    if (config->tcp_control) {
        tcp_control = strdup (config->tcp_control);
        tcp_events = strdup (config->tcp_events);
    }
    if (config->broker) {
        broker [0] = strdup (config->broker);
        broker [1] = config->broker_server_key
                   ? strdup (config->broker_server_key) : NULL;
        broker [2] = config->broker_key ? strdup (config->broker_key) : NULL;
    }
    sup = pm_supervisor_new (loop, &config, name, pub, err, sizeof err);
    if (!sup)
        goto fail;
    if (pm_log_open_file (agent_log) == -1)
        pm_log_warn ("cannot open the agent log %s: %s", agent_log,
                     strerror (errno));
    //  Lines echoed on a stdout that stalls are dropped, not waited for.
    if (follow && pm_echo_open (loop, STDOUT_FILENO, PM_ECHO_BUFFER) == -1)
        pm_log_warn ("cannot echo service lines on stdout: %s",
                     strerror (errno));
    pm_supervisor_set_echo (sup, follow);
    char *service_env [3] = { NULL, NULL, NULL };
    if (asprintf (&service_env [0], "PMBUS_AGENT=%s", name) < 0
    ||  asprintf (&service_env [1], "PMBUS_RUNTIME_DIR=%s", paths.dir) < 0)
        abort ();
    pm_supervisor_set_env (sup, service_env);
    pm_supervisor_set_rundir (sup, paths.dir);
    double started_at = pm_wall_clock ();
    snapshot = pm_snapshot_new (paths.dir, name, started_at, instance);
    pm_supervisor_set_snapshot (sup, snapshot);
    free (service_env [0]);
    free (service_env [1]);
    agent.sup = sup;
    reaper = pm_reaper_new (loop, s_on_exit, s_on_reaped, s_on_signal,
                             &agent);
    if (!reaper) {
        snprintf (err, sizeof err, "cannot watch signals: %s",
                  strerror (errno));
        goto fail;
    }
    pm_control_info_t info = {
        name, config_path_abs, paths.control, paths.events, tcp_control,
        tcp_events, curve, started_at, instance
    };
    agent.curve = curve;
    control = pm_control_new (loop, sup, &info, err, sizeof err);
    if (!control)
        goto fail;
    if (broker [0]) {
        agent.uplink = pm_uplink_new (loop, broker [0], broker [1],
                                      broker [2], instance, control, sup,
                                      pub, err, sizeof err);
        if (!agent.uplink)
            goto fail;
        pm_supervisor_set_on_reloaded (sup, s_on_reloaded, &agent);
    }
    lease_set = pm_leases_new (loop, s_on_leases_change, &agent);
    pm_control_set_leases (control, lease_set);
    pm_supervisor_set_leases (sup, lease_set);
    pm_supervisor_set_lifecycle (sup, lifecycle);
    for (size_t i = 0; i < leases_count; i++)
        if (pm_leases_add (lease_set, leases [i], err, sizeof err) == -1)
            goto fail;

    pm_log_info ("agent %s started (pid %d), config %s, control %s, "
                 "events %s", name, (int) getpid (), config_path_abs,
                 paths.control, paths.events);
    pm_publish_agent (pub, "started", NULL);
    //  Bound and accepting: a daemon's starter may return now, and any
    //  command sent after that is served.
    pm_daemon_notify (&notify_fd, EXIT_OK, "ready");
    if (daemon)
        pm_daemon_detach_stdio ();
    pm_supervisor_autostart (sup);
    zloop_start (loop);
    rc = pm_supervisor_finished (sup) ? EXIT_OK : EXIT_RUNTIME;
    //  Every service is down; anything still carrying our marks escaped.
    int escaped = pm_lifecycle_kill_marked (paths.dir, NULL, 0, NULL, true,
                                            NULL, 0);
    if (escaped)
        pm_log_warn ("killed %d process%s left running by services",
                     escaped, escaped == 1 ? "" : "es");
    goto done;

fail:
    pm_log_error ("%s", err);
done:
    //  Teardown in the reverse of the wiring: the supervisor lets its
    //  parked requests go through the control socket's free function, so
    //  it goes before the control socket; both publish, so before pub.
    //  Both list the leases, so those go after them.
    pm_reaper_destroy (&reaper);
    pm_supervisor_destroy (&sup);
    pm_uplink_destroy (&agent.uplink);
    pm_snapshot_destroy (&snapshot);
    pm_control_destroy (&control);
    pm_leases_destroy (&lease_set);
    //  A stalled stdout holds the exit up for one second at most.
    pm_echo_close (1000);
    pm_publish_destroy (&pub);
    //  After the sockets it admitted clients to.
    pm_curve_destroy (&curve);
    free (tcp_control);
    free (tcp_events);
    for (int i = 0; i < 3; i++)
        free (broker [i]);
    zloop_destroy (&loop);
    pm_timer_shutdown ();
    //  Let the PUB socket's linger deliver the last events before the
    //  sockets' files go.
    zsys_shutdown ();
    pm_lifecycle_release (&lifecycle);
    //  A start that failed is told once everything is down and the lock
    //  is free: a starter that tries again is not refused by this one.
    pm_daemon_notify (&notify_fd, EXIT_RUNTIME, err);
    pm_log_close ();
    pm_config_destroy (&config);
    return rc;
}
