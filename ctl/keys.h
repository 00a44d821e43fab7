/*  keys.h - CURVE key pairs for pmctl: `keygen`, and the keys of --connect

    Owns: writing a new key pair in czmq's certificate format (what pmd's
    agent.curve and the broker read), and reading the two certificates a
    client over TCP needs: the server's public one and its own secret one.
    czmq is loaded only here (zmqlib.h), so no other command pays for it.

    Leaves to others: the sockets the keys go on (client.c, follow.c).
*/
#ifndef PM_KEYS_H
#define PM_KEYS_H

#include <stddef.h>

/*  Z85 text of a CURVE key: 40 characters. */
#define PM_KEY_Z85 41

typedef struct {
    char server [PM_KEY_Z85];     //  the server's public key
    char public [PM_KEY_Z85];     //  the client's
    char secret [PM_KEY_Z85];     //  the client's
} pm_keys_t;

/*  pmctl keygen PATH: writes PATH (public, mode 0644) and PATH_secret
    (secret, mode 0600), refusing to replace either; prints the public
    key.  Returns the exit code (2 when a file exists or cannot be made). */
int pm_keys_generate (const char *path);

/*  Reads the server's public certificate server_file and the client's
    secret certificate key_file.  Returns 0, or -1 with a message naming
    the file in err. */
int pm_keys_load (const char *server_file, const char *key_file,
                  pm_keys_t *keys, char *err, size_t errlen);

#endif
