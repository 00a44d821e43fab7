/*  bconfig.h - the broker's configuration file

    broker: {
      name = "lab";
      control = "tcp://0.0.0.0:7700";   # clients: ROUTER
      events  = "tcp://0.0.0.0:7701";   # clients: XPUB
      agents  = "tcp://0.0.0.0:7702";   # where agents connect
      curve = { secret_key = "keys/broker_secret"; clients = "keys/clients";
                agents = "keys/agents"; };
      heartbeat = 1.0;                  # seconds
      subscriber_queue = 32768;         # messages, 1 to 1,000,000
      log_file = "pmbroker.log";        # default: stderr only in the
                                        # foreground, the runtime
                                        # directory's pmbroker.log with
                                        # --daemon
    };

    Every key is checked; an error names the file, the line and the key,
    as pmd's do.  Paths (ipc endpoints, keys) are relative to the file.
    Any TCP endpoint needs curve, whole; ipc endpoints need no keys.
*/
#ifndef PM_BCONFIG_H
#define PM_BCONFIG_H

#include <stddef.h>

/*  The broker's subscribers get every agent's messages: their queue is
    eight times an agent's default (each message at most 8 KiB). */
#define PM_BROKER_QUEUE 32768

typedef struct {
    char *path;               /* absolute path of the file */
    char *name;               /* broker.name (required) */
    char *control;            /* endpoints, ipc paths made absolute */
    char *events;
    char *agents;
    char *secret_key;         /* curve.*, absolute, or NULL without TCP */
    char *clients;
    char *agent_keys;
    double heartbeat;         /* seconds, default 1.0 */
    char *log_file;           /* broker.log_file, absolute, or NULL */
    size_t subscriber_queue;  /* messages queued per subscriber (and per
                                 agent's link) before some are dropped;
                                 default PM_BROKER_QUEUE */
} pm_bconfig_t;

/*  Reads and validates path.  Returns a new config or NULL with
    "FILE:LINE: KEY: what is wrong" in err. */
pm_bconfig_t *pm_bconfig_load (const char *path, char *err, size_t errlen);
void pm_bconfig_destroy (pm_bconfig_t **self_p);

#endif
