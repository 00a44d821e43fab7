/*  curve.c - CURVE certificates and the ZAP handler (curve.h)

    The handler answers ZAP 1.0 (ZeroMQ RFC 27) itself rather than run
    czmq's zauth actor: its decisions and their log lines are the agent's,
    in the agent's thread, and the key set it consults is the one
    pm_curve_allowed checks on every message.
*/
#include "curve.h"
#include "agentlog.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

//  ZMQ_ZAP_ENFORCE_DOMAIN is declared only for draft builds; libzmq 4.3
//  takes it in every build.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_HANDSHAKE_MS 5000
#define S_HEARTBEAT_MS 2000

typedef struct {
    char *dir;                /* certificates */
    char *domain;             /* the ZAP domain their keys may use */
    zhashx_t *keys;           /* Z85 public key -> file name */
} s_dir_t;

struct pm_curve_t {
    zloop_t *loop;            /* not owned */
    zcert_t *cert;            /* the server's, with its secret key */
    s_dir_t *dirs;
    size_t count;
    zsock_t *zap;             /* REP on S_ZAP_ENDPOINT */
    uint64_t refused;
    pm_curve_reloaded_fn *on_reload;
    void *on_reload_arg;
};

//  The directory whose keys may use domain, or NULL.
static const s_dir_t *
s_dir_of (const pm_curve_t *self, const char *domain)
{
    for (size_t i = 0; domain && i < self->count; i++)
        if (strcmp (self->dirs [i].domain, domain) == 0)
            return &self->dirs [i];
    return NULL;
}

//  Every certificate in dir: a new table, or NULL with errno set.
static zhashx_t *
s_read_keys (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return NULL;
    zhashx_t *keys = zhashx_new ();
    assert (keys);
    zhashx_set_destructor (keys, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (keys, (zhashx_duplicator_fn *) strdup);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *name = entry->d_name;
        size_t len = strlen (name);
        //  Secret files have no business here, and zcert_load would
        //  prefer NAME_secret to NAME anyway.
        if (name [0] == '.'
        ||  (len > 7 && strcmp (name + len - 7, "_secret") == 0))
            continue;
        char path [PATH_MAX];
        struct stat info;
        if (snprintf (path, sizeof path, "%s/%s", dir, name)
            >= (int) sizeof path
        ||  stat (path, &info) == -1 || !S_ISREG (info.st_mode))
            continue;
        zcert_t *cert = zcert_load (path);
        if (!cert) {
            pm_log_warn ("CURVE: %s is not a certificate: skipped", path);
            continue;
        }
        zhashx_update (keys, zcert_public_txt (cert), (void *) name);
        zcert_destroy (&cert);
    }
    closedir (handle);
    return keys;
}

//  One ZAP request: admits CURVE clients whose key is in the set, NULL
//  clients of sockets with no ZAP domain (ipc), nothing else.
static int
s_on_zap (zloop_t *loop, zsock_t *zap, void *arg)
{
    pm_curve_t *self = (pm_curve_t *) arg;
    zmsg_t *request = zmsg_recv (zap);
    if (!request)
        return 0;
    char *version = zmsg_popstr (request);
    zframe_t *id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credential = zmsg_pop (request);
    const char *status = "400";
    const char *text = "refused";
    char key [41] = "";
    if (version && strcmp (version, "1.0") == 0 && mechanism) {
        const s_dir_t *dir = s_dir_of (self, domain);
        if (strcmp (mechanism, "CURVE") == 0 && credential
        &&  zframe_size (credential) == 32 && dir) {
            zmq_z85_encode (key, zframe_data (credential), 32);
            if (zhashx_lookup (dir->keys, key)) {
                status = "200";
                text = "OK";
            }
            else {
                self->refused++;
                pm_log_warn ("CURVE: refused key %s from %s: not in %s",
                             key, address ? address : "?", dir->dir);
            }
        }
        else
        if (strcmp (mechanism, "NULL") == 0 && domain && *domain == 0) {
            status = "200";
            text = "OK";
        }
        else {
            self->refused++;
            pm_log_warn ("CURVE: refused a %s handshake from %s (domain "
                         "'%s')", mechanism, address ? address : "?",
                         domain ? domain : "");
        }
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (id)
        zmsg_append (reply, &id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    //  The User-Id every message of the session carries.
    zmsg_addstr (reply, *status == '2' ? key : "");
    zmsg_addstr (reply, "");
    zmsg_send (&reply, zap);
    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&mechanism);
    zframe_destroy (&identity);
    zframe_destroy (&credential);
    zframe_destroy (&id);
    zmsg_destroy (&request);
    return 0;
}

zcert_t *
pm_curve_load_cert (const char *path, const char *what, bool secret,
                    const char *hint, char *err, size_t errlen)
{
    //  zcert_load says nothing about why: ask the file first.
    FILE *probe = fopen (path, "r");
    if (!probe) {
        snprintf (err, errlen, "cannot read the %s %s: %s", what, path,
                  strerror (errno));
        return NULL;
    }
    fclose (probe);
    zcert_t *cert = zcert_load (path);
    static const char *no_secret = "0000000000000000000000000000000000000000";
    if (!cert || (secret && strcmp (zcert_secret_txt (cert), no_secret) == 0)) {
        snprintf (err, errlen, "%s is not a CURVE %scertificate (%s)", path,
                  secret ? "secret " : "", hint);
        zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

//  The server's certificate from secret_file, or NULL with err.
static zcert_t *
s_load_secret (const char *secret_file, char *err, size_t errlen)
{
    return pm_curve_load_cert (secret_file, "CURVE secret key", true,
                               "make one with `pmctl keygen PATH`, then name "
                               "PATH_secret", err, errlen);
}

int
pm_curve_check (const char *secret_file, const pm_curve_dir_t *dirs,
                size_t count, char *err, size_t errlen)
{
    zcert_t *cert = s_load_secret (secret_file, err, errlen);
    if (!cert)
        return -1;
    zcert_destroy (&cert);
    for (size_t i = 0; i < count; i++) {
        DIR *dir = opendir (dirs [i].dir);
        if (!dir) {
            snprintf (err, errlen, "cannot read the CURVE keys directory "
                      "%s: %s", dirs [i].dir, strerror (errno));
            return -1;
        }
        closedir (dir);
    }
    return 0;
}

pm_curve_t *
pm_curve_new (zloop_t *loop, const char *secret_file,
              const pm_curve_dir_t *dirs, size_t count,
              char *err, size_t errlen)
{
    zcert_t *cert = s_load_secret (secret_file, err, errlen);
    if (!cert)
        return NULL;
    pm_curve_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->cert = cert;
    self->dirs = calloc (count + 1, sizeof *self->dirs);
    assert (self->dirs);
    for (size_t i = 0; i < count; i++) {
        s_dir_t *dir = &self->dirs [self->count++];
        dir->dir = strdup (dirs [i].dir);
        dir->domain = strdup (dirs [i].domain);
        dir->keys = s_read_keys (dirs [i].dir);
        if (!dir->keys) {
            snprintf (err, errlen, "cannot read the CURVE keys directory "
                      "%s: %s", dirs [i].dir, strerror (errno));
            pm_curve_destroy (&self);
            return NULL;
        }
        pm_log_info ("CURVE: %zu key%s in %s", zhashx_size (dir->keys),
                     zhashx_size (dir->keys) == 1 ? "" : "s", dir->dir);
    }
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, S_ZAP_ENDPOINT) == -1
    ||  zloop_reader (loop, self->zap, s_on_zap, self) == -1) {
        snprintf (err, errlen, "cannot start the ZAP handler: %s",
                  zmq_strerror (zmq_errno ()));
        pm_curve_destroy (&self);
        return NULL;
    }
    pm_log_info ("CURVE: server key %s", zcert_public_txt (cert));
    return self;
}

void
pm_curve_destroy (pm_curve_t **self_p)
{
    pm_curve_t *self = *self_p;
    if (!self)
        return;
    if (self->zap) {
        zloop_reader_end (self->loop, self->zap);
        zsock_destroy (&self->zap);
    }
    for (size_t i = 0; i < self->count; i++) {
        zhashx_destroy (&self->dirs [i].keys);
        free (self->dirs [i].dir);
        free (self->dirs [i].domain);
    }
    free (self->dirs);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

//  One directory read again.
static void
s_reload_dir (s_dir_t *dir)
{
    zhashx_t *keys = s_read_keys (dir->dir);
    if (!keys) {
        pm_log_warn ("CURVE: cannot read %s (%s): keeping the %zu keys "
                     "read before", dir->dir, strerror (errno),
                     zhashx_size (dir->keys));
        return;
    }
    size_t added = 0, removed = 0;
    for (void *item = zhashx_first (keys); item; item = zhashx_next (keys))
        if (!zhashx_lookup (dir->keys, zhashx_cursor (keys)))
            added++;
    for (void *item = zhashx_first (dir->keys); item;
         item = zhashx_next (dir->keys))
        if (!zhashx_lookup (keys, zhashx_cursor (dir->keys)))
            removed++;
    zhashx_destroy (&dir->keys);
    dir->keys = keys;
    pm_log_info ("CURVE: %zu key%s in %s (%zu added, %zu removed)",
                 zhashx_size (keys), zhashx_size (keys) == 1 ? "" : "s",
                 dir->dir, added, removed);
}

void
pm_curve_reload (pm_curve_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        s_reload_dir (&self->dirs [i]);
    if (self->on_reload)
        self->on_reload (self->on_reload_arg, self);
}

void
pm_curve_set_on_reload (pm_curve_t *self, pm_curve_reloaded_fn *fn,
                        void *arg)
{
    self->on_reload = fn;
    self->on_reload_arg = arg;
}

void
pm_curve_server (const pm_curve_t *self, zsock_t *sock, const char *domain)
{
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, domain);
    //  czmq's setter does nothing in Debian's (non-draft) build.
    int enforce = 1;
    zmq_setsockopt (zsock_resolve (sock), ZMQ_ZAP_ENFORCE_DOMAIN, &enforce,
                    sizeof enforce);
    zsock_set_handshake_ivl (sock, S_HANDSHAKE_MS);
    zsock_set_heartbeat_ivl (sock, S_HEARTBEAT_MS);
    zsock_set_heartbeat_timeout (sock, 3 * S_HEARTBEAT_MS);
}

bool
pm_curve_allowed (const pm_curve_t *self, const char *key, const char *domain)
{
    const s_dir_t *dir = s_dir_of (self, domain);
    return key && dir && zhashx_lookup (dir->keys, key) != NULL;
}

bool
pm_curve_client_allowed (void *curve, const char *key)
{
    return pm_curve_allowed ((const pm_curve_t *) curve, key,
                             PM_CURVE_CLIENTS);
}

const char *
pm_curve_public (const pm_curve_t *self)
{
    return zcert_public_txt (self->cert);
}

uint64_t
pm_curve_refused (const pm_curve_t *self)
{
    return self->refused;
}
