/*  zmqlib.h - libzmq (and czmq's certificates), loaded when a command
    first needs them

    Owns: loading libzmq.so.5 at run time (dlopen) and the table of the
    few libzmq functions pmctl calls.  pmctl is not linked with libzmq:
    `--version`, `is-running`, `check` and `status` (read from the status
    snapshot) never load it, and start in the time of a program linked
    with the C library alone.  Only client.c and follow.c use the table;
    <zmq.h> is included for its types and constants.

    Leaves to others: what the sockets do (client.c, follow.c).
*/
#ifndef PM_ZMQLIB_H
#define PM_ZMQLIB_H

#include <stddef.h>
#include <zmq.h>

/*  The functions pmctl uses: X (return type, field, parameters); the
    field is the function's name without "zmq_", but for zmq_errno (whose
    name is a macro of the C library), which is `error`. */
#define PM_ZMQ_FUNCTIONS(X) \
    X (void *, ctx_new, (void)) \
    X (int, ctx_term, (void *context)) \
    X (void *, socket, (void *context, int type)) \
    X (int, close, (void *socket)) \
    X (int, setsockopt, (void *socket, int option, const void *value, \
                         size_t size)) \
    X (int, connect, (void *socket, const char *endpoint)) \
    X (int, socket_monitor, (void *socket, const char *endpoint, \
                             int events)) \
    X (int, send, (void *socket, const void *data, size_t size, int flags)) \
    X (int, msg_init, (zmq_msg_t *msg)) \
    X (int, msg_recv, (zmq_msg_t *msg, void *socket, int flags)) \
    X (int, msg_close, (zmq_msg_t *msg)) \
    X (int, msg_more, (const zmq_msg_t *msg)) \
    X (size_t, msg_size, (const zmq_msg_t *msg)) \
    X (void *, msg_data, (zmq_msg_t *msg)) \
    X (int, poll, (zmq_pollitem_t *items, int count, long timeout)) \
    X (int, error, (void)) \
    X (const char *, strerror, (int errnum))

typedef struct {
#define PM_ZMQ_FIELD(type, name, params) type (*name) params;
    PM_ZMQ_FUNCTIONS (PM_ZMQ_FIELD)
#undef PM_ZMQ_FIELD
} pm_zmq_t;

/*  The loaded table; NULL until pm_zmq_load succeeded. */
extern const pm_zmq_t *pm_zmq;

/*  Loads libzmq and fills pm_zmq, once (later calls return at once).
    Returns 0, or -1 with "cannot load libzmq.so.5: <reason>" in err. */
int pm_zmq_load (char *err, size_t errlen);

/*  czmq's certificates (its zcert format is what pmd and pmbroker read),
    for the commands that use CURVE keys only: keygen and --connect. */
typedef struct _zcert_t zcert_t;
#define PM_CERT_FUNCTIONS(X) \
    X (zcert_t *, zcert_new, (void)) \
    X (zcert_t *, zcert_load, (const char *filename)) \
    X (int, zcert_save, (zcert_t *self, const char *filename)) \
    X (char *, zcert_public_txt, (zcert_t *self)) \
    X (char *, zcert_secret_txt, (zcert_t *self)) \
    X (void, zcert_destroy, (zcert_t **self_p))

typedef struct {
#define PM_CERT_FIELD(type, name, params) type (*name) params;
    PM_CERT_FUNCTIONS (PM_CERT_FIELD)
#undef PM_CERT_FIELD
} pm_cert_lib_t;

/*  The loaded table; NULL until pm_cert_lib_load succeeded. */
extern const pm_cert_lib_t *pm_cert_lib;

/*  Loads libczmq.so.4 (and with it libzmq) and fills pm_cert_lib, once.
    Returns 0, or -1 with the reason in err. */
int pm_cert_lib_load (char *err, size_t errlen);

#endif
