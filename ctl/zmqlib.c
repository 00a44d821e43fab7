/*  zmqlib.c - libzmq and czmq loaded on first use (see zmqlib.h) */
#include "zmqlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static pm_zmq_t s_zmq;
const pm_zmq_t *pm_zmq = NULL;
static pm_cert_lib_t s_cert;
const pm_cert_lib_t *pm_cert_lib = NULL;

//  Opens library and fills slots [i] with the address of prefix
//  names [i] (names [i] alone when prefix is NULL).  Never unloaded:
//  libzmq's threads live until the process ends.  Returns 0 or -1.
static int
s_load (const char *library, const char *prefix, const char *const *names,
        void **const *slots, size_t count, char *err, size_t errlen)
{
    void *handle = dlopen (library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf (err, errlen, "cannot load %s: %s", library, dlerror ());
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        char symbol [64];
        snprintf (symbol, sizeof symbol, "%s%s", prefix ? prefix : "",
                  names [i]);
        //  A function pointer from dlsym's void *: POSIX guarantees the
        //  conversion; C only through the object's bytes.
        void *address = dlsym (handle, symbol);
        if (!address) {
            snprintf (err, errlen, "cannot load %s: no %s in it", library,
                      symbol);
            dlclose (handle);
            return -1;
        }
        *slots [i] = address;
    }
    return 0;
}

#define S_NAME(type, name, params) #name,
#define S_ZMQ_SLOT(type, name, params) (void **) &s_zmq.name,
#define S_CERT_SLOT(type, name, params) (void **) &s_cert.name,

int
pm_zmq_load (char *err, size_t errlen)
{
    if (pm_zmq)
        return 0;
    static const char *const names [] = { PM_ZMQ_FUNCTIONS (S_NAME) };
    void **const slots [] = { PM_ZMQ_FUNCTIONS (S_ZMQ_SLOT) };
    size_t count = sizeof names / sizeof names [0];
    //  zmq_errno's field is `error` (errno is a macro of the C library).
    const char *symbols [sizeof names / sizeof names [0]];
    for (size_t i = 0; i < count; i++)
        symbols [i] = strcmp (names [i], "error") == 0 ? "errno" : names [i];
    if (s_load ("libzmq.so.5", "zmq_", symbols, slots, count, err,
                errlen) == -1)
        return -1;
    pm_zmq = &s_zmq;
    return 0;
}

int
pm_cert_lib_load (char *err, size_t errlen)
{
    if (pm_cert_lib)
        return 0;
    static const char *const names [] = { PM_CERT_FUNCTIONS (S_NAME) };
    void **const slots [] = { PM_CERT_FUNCTIONS (S_CERT_SLOT) };
    if (s_load ("libczmq.so.4", NULL, names, slots,
                sizeof names / sizeof names [0], err, errlen) == -1)
        return -1;
    pm_cert_lib = &s_cert;
    return 0;
}
