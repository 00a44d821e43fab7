/*  main.c - pmbroker: options, signals, the loop

    Usage: pmbroker -c FILE [--check] [-v]

    Runs in the foreground until SIGTERM or SIGINT; SIGHUP reads the key
    directories again.  Exit codes as pmd's: 0 clean shutdown (or a valid
    file with --check), 1 runtime error (a bind failed), 2 usage error or
    invalid config (keys included).
*/
#include "agentlog.h"
#include "bconfig.h"
#include "broker.h"
#include "curve.h"

#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

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
        "  -v, --verbose         log debug messages too\n"
        "  -h, --help            this text\n"
        "      --version         print the version\n"
        "\n"
        "Exit codes: 0 clean shutdown (or a valid file with --check),\n"
        "1 runtime error (e.g. an endpoint cannot be bound), 2 usage error\n"
        "or invalid config.\n");
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

int
main (int argc, char **argv)
{
    const char *config_path = NULL;
    bool check = false, verbose = false;
    static const struct option longs [] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'C' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long (argc, argv, "c:vh", longs, NULL)) != -1) {
        switch (c) {
            case 'c': config_path = optarg; break;
            case 'C': check = true; break;
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
    //  Before any thread: libzmq's inherit the mask.
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGTERM);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGHUP);
    sigprocmask (SIG_BLOCK, &set, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);
    s_signals_t signals = { NULL, signalfd (-1, &set, SFD_NONBLOCK | SFD_CLOEXEC) };
    zloop_t *loop = zloop_new ();
    int rc = EXIT_RUNTIME;
    signals.broker = pm_broker_new (loop, config, err, sizeof err);
    if (!signals.broker)
        pm_log_error ("%s", err);
    else {
        zmq_pollitem_t item = { NULL, signals.fd, ZMQ_POLLIN, 0 };
        zloop_poller (loop, &item, s_on_signal, &signals);
        zloop_start (loop);
        rc = EXIT_OK;
    }
    pm_broker_destroy (&signals.broker);
    zloop_destroy (&loop);
    close (signals.fd);
    pm_bconfig_destroy (&config);
    zsys_shutdown ();
    pm_log_close ();
    return rc;
}
