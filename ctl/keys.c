/*  keys.c - CURVE key pairs in czmq's format (see keys.h) */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pmctl.h"
#include "zmqlib.h"

#define S_NO_SECRET "0000000000000000000000000000000000000000"

//  Creates path with mode, failing if it exists.  Returns 0 or -1.
static int
s_reserve (const char *path, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd == -1)
        return -1;
    //  The mode asked for, whatever the umask.
    int rc = fchmod (fd, mode);
    close (fd);
    return rc;
}

int
pm_keys_generate (const char *path)
{
    char err [512];
    char secret [4096];
    if (snprintf (secret, sizeof secret, "%s_secret", path)
        >= (int) sizeof secret) {
        fprintf (stderr, "pmctl: keygen: path too long\n");
        return PM_EXIT_USAGE;
    }
    if (pm_cert_lib_load (err, sizeof err) == -1) {
        fprintf (stderr, "pmctl: keygen: %s\n", err);
        return PM_EXIT_FAILED;
    }
    //  Both names are taken before anything is written: an existing key
    //  is never replaced, not even half of a pair.
    if (s_reserve (path, 0644) == -1) {
        fprintf (stderr, "pmctl: keygen: cannot create %s: %s\n", path,
                 errno == EEXIST ? "it exists (keys are never replaced)"
                                 : strerror (errno));
        return PM_EXIT_USAGE;
    }
    if (s_reserve (secret, 0600) == -1) {
        fprintf (stderr, "pmctl: keygen: cannot create %s: %s\n", secret,
                 errno == EEXIST ? "it exists (keys are never replaced)"
                                 : strerror (errno));
        unlink (path);
        return PM_EXIT_USAGE;
    }
    zcert_t *cert = pm_cert_lib->zcert_new ();
    if (!cert || pm_cert_lib->zcert_save (cert, path) == -1) {
        fprintf (stderr, "pmctl: keygen: cannot write %s and %s: %s\n", path,
                 secret, strerror (errno));
        pm_cert_lib->zcert_destroy (&cert);
        unlink (path);
        unlink (secret);
        return PM_EXIT_FAILED;
    }
    printf ("%s\n", pm_cert_lib->zcert_public_txt (cert));
    pm_cert_lib->zcert_destroy (&cert);
    return PM_EXIT_OK;
}

//  Reads a certificate file; want_secret: it must hold the secret key.
static zcert_t *
s_load (const char *path, const char *what, bool want_secret,
        char *err, size_t errlen)
{
    //  zcert_load says nothing of why it fails: the file is asked first.
    if (access (path, R_OK) == -1) {
        snprintf (err, errlen, "cannot read %s %s: %s", what, path,
                  strerror (errno));
        return NULL;
    }
    zcert_t *cert = pm_cert_lib->zcert_load (path);
    if (!cert) {
        snprintf (err, errlen, "%s %s is not a CURVE certificate", what,
                  path);
        return NULL;
    }
    if (want_secret
    &&  strcmp (pm_cert_lib->zcert_secret_txt (cert), S_NO_SECRET) == 0) {
        snprintf (err, errlen, "%s %s holds no secret key (give the "
                  "PATH_secret file `pmctl keygen PATH` wrote)", what, path);
        pm_cert_lib->zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

int
pm_keys_load (const char *server_file, const char *key_file,
              pm_keys_t *keys, char *err, size_t errlen)
{
    if (pm_cert_lib_load (err, errlen) == -1)
        return -1;
    zcert_t *server = s_load (server_file, "server key", false, err, errlen);
    if (!server)
        return -1;
    zcert_t *own = s_load (key_file, "client key", true, err, errlen);
    if (!own) {
        pm_cert_lib->zcert_destroy (&server);
        return -1;
    }
    snprintf (keys->server, sizeof keys->server, "%s",
              pm_cert_lib->zcert_public_txt (server));
    snprintf (keys->public, sizeof keys->public, "%s",
              pm_cert_lib->zcert_public_txt (own));
    snprintf (keys->secret, sizeof keys->secret, "%s",
              pm_cert_lib->zcert_secret_txt (own));
    pm_cert_lib->zcert_destroy (&server);
    pm_cert_lib->zcert_destroy (&own);
    return 0;
}
