/*  zmqlib.h - libzmq, loaded when a command first needs a socket

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

#endif
