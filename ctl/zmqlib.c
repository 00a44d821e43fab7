/*  zmqlib.c - libzmq loaded on first use (see zmqlib.h) */
#include "zmqlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define S_LIBRARY "libzmq.so.5"

static pm_zmq_t s_table;
const pm_zmq_t *pm_zmq = NULL;

//  The library's name for a field of the table.
static const char *
s_symbol (const char *field)
{
    static char name [64];
    snprintf (name, sizeof name, "zmq_%s",
              strcmp (field, "error") == 0 ? "errno" : field);
    return name;
}

int
pm_zmq_load (char *err, size_t errlen)
{
    if (pm_zmq)
        return 0;
    //  Never unloaded: libzmq's threads live until the process ends.
    void *library = dlopen (S_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf (err, errlen, "cannot load %s: %s", S_LIBRARY, dlerror ());
        return -1;
    }
    const char *missing = NULL;
    //  A function pointer from dlsym's void *: POSIX guarantees the
    //  conversion; C only through the object's bytes.
#define S_RESOLVE(type, name, params) \
    if (!missing) { \
        const char *symbol = s_symbol (#name); \
        void *address = dlsym (library, symbol); \
        if (address) \
            *(void **) (&s_table.name) = address; \
        else \
            missing = symbol; \
    }
    PM_ZMQ_FUNCTIONS (S_RESOLVE)
#undef S_RESOLVE
    if (missing) {
        snprintf (err, errlen, "cannot load %s: no %s in it", S_LIBRARY,
                  missing);
        dlclose (library);
        return -1;
    }
    pm_zmq = &s_table;
    return 0;
}
