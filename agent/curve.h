/*  curve.h - CURVE security for a server's TCP endpoints

    Owns: the server's certificate (its secret key file), the set of
    client public keys read from a directory of certificates, and the ZAP
    handler that admits a CURVE client only when its key is in that set.
    The handler is a REP socket in the process's czmq context, served by
    the event loop: every refusal is one line in the agent's own log,
    with the refused key in Z85.

    libzmq takes a socket's security options at each bind, so one socket
    serves both: its ipc endpoints are bound first, with no security,
    then pm_curve_server, then its TCP endpoints.  (Nothing goes back:
    libzmq refuses an empty ZAP domain, and a plain bind after the TCP
    ones would be refused by the handler, which admits NULL clients only
    of sockets with no domain.)  The ZAP domain is enforced, so a handler
    that is not there refuses every client instead of admitting any key.

    A key removed from the directory does not cut a session that is
    already open (libzmq asks the handler only at the handshake): whoever
    acts on a message checks its User-Id with pm_curve_allowed.

    Leaves to others: which endpoints exist (main.c), what a client may
    do once admitted (control.c).
*/
#ifndef PM_CURVE_H
#define PM_CURVE_H

#include <czmq.h>
#include <stdbool.h>

typedef struct pm_curve_t pm_curve_t;

/*  ZAP domains: what a key may connect to.  Clients use an agent's or a
    broker's control and events endpoints; agents a broker's agents
    endpoint.  A key is admitted to an endpoint only when it is in the
    directory given for that endpoint's domain. */
#define PM_CURVE_CLIENTS "pmbus"
#define PM_CURVE_AGENTS "pmbus-agents"

/*  A directory of public certificates and the domain its keys may use. */
typedef struct {
    const char *dir;
    const char *domain;
} pm_curve_dir_t;

/*  Loads the secret certificate secret_file (czmq's format, as
    `pmctl keygen` writes it) and the public certificates in each of the
    count dirs, and serves ZAP requests in loop.  Returns NULL with a
    message naming the file or directory in err. */
pm_curve_t *pm_curve_new (zloop_t *loop, const char *secret_file,
                          const pm_curve_dir_t *dirs, size_t count,
                          char *err, size_t errlen);
void pm_curve_destroy (pm_curve_t **self_p);

/*  Loads the certificate at path (secret: it must hold the secret key).
    Returns it, or NULL with "cannot read the WHAT PATH: reason" or "PATH
    is not a CURVE [secret ]certificate (HINT)" in err. */
zcert_t *pm_curve_load_cert (const char *path, const char *what, bool secret,
                             const char *hint, char *err, size_t errlen);

/*  What pm_curve_new would say of the files, without an event loop
    (before a server daemonizes).  Returns 0, or -1 with the message in
    err. */
int pm_curve_check (const char *secret_file, const pm_curve_dir_t *dirs,
                    size_t count, char *err, size_t errlen);

/*  Reads every directory again (on SIGHUP and `reload`): keys added are
    admitted from the next handshake on, keys removed are refused and no
    longer pm_curve_allowed.  A directory that cannot be read keeps the
    keys it had (with a warning). */
void pm_curve_reload (pm_curve_t *self);

/*  Called after every pm_curve_reload: what holds sessions open (an
    events socket) drops those whose key is gone. */
typedef void (pm_curve_reloaded_fn) (void *arg, const pm_curve_t *curve);
void pm_curve_set_on_reload (pm_curve_t *self, pm_curve_reloaded_fn *fn,
                             void *arg);

/*  The socket's next binds (TCP, after every ipc one) are CURVE servers with this certificate, the
    ZAP domain enforced, a handshake bounded by handshake_ms and ZMTP
    heartbeats every heartbeat_ms (a silent peer is dropped after three),
    admitting the keys of domain's directory. */
void pm_curve_server (const pm_curve_t *self, zsock_t *sock,
                      const char *domain);

/*  Whether key (a Z85 public key, as libzmq gives it in a message's
    User-Id) may use domain now. */
bool pm_curve_allowed (const pm_curve_t *self, const char *key,
                       const char *domain);

/*  pm_curve_allowed (curve, key, PM_CURVE_CLIENTS), as a predicate
    taking the curve as its argument (peers.h). */
bool pm_curve_client_allowed (void *curve, const char *key);

/*  The server's public key in Z85. */
const char *pm_curve_public (const pm_curve_t *self);

/*  Number of handshakes refused since start. */
uint64_t pm_curve_refused (const pm_curve_t *self);

#endif
