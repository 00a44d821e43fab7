/*  snapfile.h - `pmctl status` from the agent's status snapshot file

    Owns: reading <runtime dir>/status.snapshot (PROTOCOL.md 12) and
    turning it into the reply the agent would give to a status request:
    the records asked for, in the order asked, each uptime recomputed for
    now, an unknown name answered with the agent's own error.  So status
    costs a file read instead of a ZeroMQ connection and a round trip,
    and pmctl does not even load libzmq for it.

    Leaves to others: deciding when the file may be used (remote.c: only
    while the agent's lock is held, never with --live), rendering
    (render.c), the wire format (libpmproto).
*/
#ifndef PM_SNAPFILE_H
#define PM_SNAPFILE_H

#include <stddef.h>

#include "pm_proto.h"
#include "pm_rundir.h"

/*  Answers request (a status request, its id already set) from the
    snapshot in paths, written by the agent whose pid is agent_pid (from
    its pid file).  Returns 0 with *reply_p the decoded reply and *frame_p,
    *size_p its encoding (malloc'd), exactly as the agent would have sent
    them; or -1 when the file cannot answer (missing, unreadable, not a
    snapshot, or written by another process than agent_pid), and the
    caller asks the agent instead. */
int pm_snapfile_status (const pm_paths_t *paths, long agent_pid,
                        const pm_request_t *request, double now,
                        pm_reply_t **reply_p, char **frame_p, size_t *size_p);

#endif
