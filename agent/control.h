/*  control.h - the ROUTER socket: requests in, replies out

    Owns: the control socket, the envelope of each request (echoed on the
    reply, so DEALER and REQ clients both work), decoding and validating
    requests (names checked before anything is done), dispatching them to
    the supervisor, and sending the replies, parked ones included.

    A malformed frame gets an error reply and one line in the agent's log,
    and changes nothing.
*/
#ifndef PM_CONTROL_H
#define PM_CONTROL_H

#include <czmq.h>

#include "curve.h"
#include "lease.h"
#include "supervisor.h"

/*  What `hello` reports; strings are copied. */
typedef struct {
    const char *agent;
    const char *config;
    const char *control;      /* the local (ipc) endpoints */
    const char *events;
    const char *tcp_control;  /* also bound with curve's keys, or NULL */
    const char *tcp_events;   /* what hello tells clients over TCP */
    pm_curve_t *curve;        /* not owned, outlives the control socket */
    double started_at;
    const char *instance;     /* this run of the agent: in the replies to
                                 hello, status and logs */
} pm_control_info_t;

typedef struct pm_control_t pm_control_t;

/*  Binds a ROUTER socket to info->control (and info->tcp_control, as a
    CURVE server; a request whose client key is no longer authorised is
    answered "unauthorised" and does nothing) and serves sup.  Returns NULL
    with a message in err. */
pm_control_t *pm_control_new (zloop_t *loop, pm_supervisor_t *sup,
                              const pm_control_info_t *info,
                              char *err, size_t errlen);
void pm_control_destroy (pm_control_t **self_p);

/*  A reply to a relayed request: token as the relay gave it, and the
    encoded reply. */
typedef void (pm_control_relay_fn) (void *arg, const void *token,
                                    size_t token_size, const void *reply,
                                    size_t size);

/*  A request that came another way (a broker, through the uplink), to be
    handled as if it came on the control socket; its reply goes to the
    relay function with token.  Takes the body frame. */
void pm_control_relayed (pm_control_t *self, const void *token,
                         size_t token_size, zframe_t **body_p);
void pm_control_set_relay (pm_control_t *self, pm_control_relay_fn *relay,
                           void *arg);

/*  The agent's hello reply, encoded (for registering with a broker).
    Returns 0 with a malloc'd buffer, or -1. */
int pm_control_hello (pm_control_t *self, char **data, size_t *size);

/*  Serve `lease` with leases, and report them in hello and status. */
void pm_control_set_leases (pm_control_t *self, pm_leases_t *leases);

/*  Requests handled, and frames refused as malformed. */
uint64_t pm_control_handled (const pm_control_t *self);
uint64_t pm_control_refused (const pm_control_t *self);

#endif
