/*  main.c - pmbroker: options, signals, the runtime directory, the loop

    Usage: pmbroker -c FILE [--check] [--daemon] [-s DIR] [-v]

    Runs until SIGTERM or SIGINT; SIGHUP reads the key directories again.
    Like pmd, it claims a runtime directory before it binds anything
    (<base>/broker@<name>, README "Where things live"): its lock keeps a
    second broker of the same name from taking over the first one's ipc
    sockets, and --daemon returns only once the broker is bound.  Exit
    codes as pmd's: 0 clean shutdown (or a valid file with --check), 1
    runtime error (a bind failed), 2 usage error or invalid config (keys
    included), 3 a broker of this name is already running.
*/
#include "agentlog.h"
#include "bconfig.h"
#include "broker.h"
#include "curve.h"
#include "daemon.h"
#include "fdlimit.h"
#include "lifecycle.h"
#include "pm_proto.h"
#include "pm_rundir.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_RUNNING = 3 };

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: pmbroker -c FILE [options]\n"
        "\n"
        "Joins many pmd agents behind one control and one events endpoint.\n"
        "\n"
        "  -c, --config FILE     the broker's config file (broker = { ... })\n"
        "      --check           validate the file (and its keys) and exit\n"
        "  -d, --daemon          run in the background; return once it is bound\n"
        "  -s, --runtime-dir DIR the runtime directory (lock, pid file);\n"
        "                        default $XDG_RUNTIME_DIR/pmbus/broker@NAME\n"
        "  -v, --verbose         log debug messages too\n"
        "  -h, --help            this text\n"
        "      --version         print the version\n"
        "\n"
        "Exit codes: 0 clean shutdown (or a valid file with --check),\n"
        "1 runtime error (e.g. an endpoint cannot be bound), 2 usage error\n"
        "or invalid config, 3 a broker of this name is already running.\n");
}

typedef struct {
    pm_broker_t *broker;
    int fd;
} s_signals_t;

static int
s_on_signal (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_signals_t *signals = (s_signals_t *) arg;
    struct signalfd_siginfo info;
    while (read (signals->fd, &info, sizeof info) == (ssize_t) sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            pm_log_info ("SIGHUP received: reading the keys again");
            pm_broker_reload_keys (signals->broker);
        }
        else {
            pm_log_info ("%s received: shutting down",
                         info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            return -1;
        }
    }
    return 0;
}

//  Claims the runtime directory of the broker called name: its lock,
//  pid file and record (lifecycle.h), under names of the broker's own so
//  that nothing takes the directory for an agent's.  Returns NULL with
//  *code and err set.
static pm_lifecycle_t *
s_claim (const pm_bconfig_t *config, const char *rundir, pm_paths_t *paths,
         int *code, char *err, size_t errlen)
{
    char dir_name [PM_NAME_MAX + 8];
    snprintf (dir_name, sizeof dir_name, "broker@%s", config->name);
    *code = EXIT_USAGE;
    if (pm_paths_init (paths, dir_name, rundir, config->control,
                       config->events, err, errlen) == -1)
        return NULL;
    snprintf (paths->lock, sizeof paths->lock, "%s/pmbroker.lock",
              paths->dir);
    snprintf (paths->pidfile, sizeof paths->pidfile, "%s/pmbroker.pid",
              paths->dir);
    long holder = 0;
    pm_lifecycle_t *lifecycle = pm_lifecycle_acquire (paths, &holder, err,
                                                      errlen);
    *code = holder ? EXIT_RUNNING : EXIT_RUNTIME;
    if (lifecycle && pm_lifecycle_write_config (lifecycle, config->path,
                                                NULL) == -1) {
        snprintf (err, errlen, "cannot write %.900s: %s", paths->config,
                  strerror (errno));
        pm_lifecycle_release (&lifecycle);
    }
    if (lifecycle)
        pm_lifecycle_add_socket (lifecycle, config->agents);
    return lifecycle;
}

int
main (int argc, char **argv)
{
    const char *config_path = NULL;
    const char *rundir = NULL;
    bool check = false, verbose = false, daemon = false;
    static const struct option longs [] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'C' },
        { "daemon", no_argument, NULL, 'd' },
        { "runtime-dir", required_argument, NULL, 's' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long (argc, argv, "c:ds:vh", longs, NULL)) != -1) {
        switch (c) {
            case 'c': config_path = optarg; break;
            case 'C': check = true; break;
            case 'd': daemon = true; break;
            case 's': rundir = optarg; break;
            case 'v': verbose = true; break;
            case 'h': s_usage (stdout); return EXIT_OK;
            case 'V': printf ("pmbroker %s\n", PM_VERSION); return EXIT_OK;
            default:
                fprintf (stderr, "pmbroker: unknown option %s (see "
                         "pmbroker --help)\n", argv [optind - 1]);
                return EXIT_USAGE;
        }
    }
    if (!config_path || optind < argc) {
        fprintf (stderr, "pmbroker: %s (see pmbroker --help)\n",
                 config_path ? "unexpected operand" : "-c FILE is required");
        return EXIT_USAGE;
    }
    char rundir_abs [PM_PATH_MAX];
    if (rundir && pm_daemon_absolute (rundir, rundir_abs,
                                      sizeof rundir_abs) == -1) {
        fprintf (stderr, "pmbroker: --runtime-dir %s: path too long\n",
                 rundir);
        return EXIT_USAGE;
    }
    char err [1024];
    pm_bconfig_t *config = pm_bconfig_load (config_path, err, sizeof err);
    if (!config) {
        fprintf (stderr, "pmbroker: %s\n", err);
        return EXIT_USAGE;
    }
    pm_curve_dir_t dirs [2] = {
        { config->clients, PM_CURVE_CLIENTS },
        { config->agent_keys, PM_CURVE_AGENTS }
    };
    if (config->secret_key
    &&  pm_curve_check (config->secret_key, dirs, 2, err, sizeof err) == -1) {
        fprintf (stderr, "pmbroker: %s: %s\n", config_path, err);
        pm_bconfig_destroy (&config);
        return EXIT_USAGE;
    }
    if (check) {
        printf ("%s: ok\n", config_path);
        pm_bconfig_destroy (&config);
        return EXIT_OK;
    }
    pm_log_set_program ("pmbroker");
    pm_log_setup (config->name, false, verbose ? PM_LOG_DEBUG : PM_LOG_INFO);
    //  Into the background before any thread exists; from here on,
    //  errors also reach the starting process.
    int notify_fd = -1;
    if (daemon) {
        notify_fd = pm_daemon_start ("pmbroker");
        pm_log_quiet_stderr (true);
    }
    //  Before any thread: libzmq's inherit the mask.
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGTERM);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGHUP);
    sigprocmask (SIG_BLOCK, &set, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);
    //  Room for many agents and clients: libzmq aborts if an accept
    //  finds no descriptor (fdlimit.h).
    if (pm_fdlimit_init (PM_FDLIMIT_RESERVE) == -1)
        pm_log_warn ("cannot raise the descriptor limit: %s",
                     strerror (errno));
    pm_paths_t paths;
    int rc = EXIT_RUNTIME;
    pm_lifecycle_t *lifecycle = s_claim (config, rundir ? rundir_abs : NULL,
                                         &paths, &rc, err, sizeof err);
    if (!lifecycle) {
        if (notify_fd == -1)
            fprintf (stderr, "pmbroker: %s\n", err);
        pm_daemon_notify (&notify_fd, rc, err);
        pm_bconfig_destroy (&config);
        return rc;
    }
    char log_file [PM_PATH_MAX + 32];
    snprintf (log_file, sizeof log_file, "%s/pmbroker.log", paths.dir);
    if (config->log_file)
        snprintf (log_file, sizeof log_file, "%s", config->log_file);
    if ((config->log_file || daemon) && pm_log_open_file (log_file) == -1)
        pm_log_warn ("cannot open the log file %s: %s", log_file,
                     strerror (errno));

    s_signals_t signals = { NULL, signalfd (-1, &set, SFD_NONBLOCK | SFD_CLOEXEC) };
    zloop_t *loop = zloop_new ();
    rc = EXIT_RUNTIME;
    signals.broker = pm_broker_new (loop, config, err, sizeof err);
    if (!signals.broker)
        pm_log_error ("%s", err);
    else {
        pm_daemon_notify (&notify_fd, EXIT_OK, "ready");
        if (daemon)
            pm_daemon_detach_stdio ();
        zmq_pollitem_t item = { NULL, signals.fd, ZMQ_POLLIN, 0 };
        zloop_poller (loop, &item, s_on_signal, &signals);
        zloop_start (loop);
        rc = EXIT_OK;
    }
    pm_broker_destroy (&signals.broker);
    zloop_destroy (&loop);
    close (signals.fd);
    zsys_shutdown ();
    //  After the sockets are closed: their files go with the lock.
    pm_lifecycle_release (&lifecycle);
    //  A start that failed is told once the lock is free again.
    pm_daemon_notify (&notify_fd, EXIT_RUNTIME, err);
    pm_bconfig_destroy (&config);
    pm_log_close ();
    return rc;
}
