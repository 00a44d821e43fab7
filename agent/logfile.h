/*  logfile.h - a service's log file: writing, rotation, failed writes

    Owns: the descriptor of one service's log file and the names of its
    backups (name.log.1 .. name.log.N): opening it (its directory is
    created), size-based rotation, and what happens when the disk is full
    or a write fails otherwise.  Then the lines that cannot be written are
    counted, the error is logged once and published once as the agent
    event "log-write-failed"; each later write tries again (no timer), and
    the first one that works is preceded by a marker line saying how many
    lines are missing there (then "log-write-resumed").  A rotation that
    fails (a backup name that cannot be renamed) keeps writing to the
    current file, logged once, and is tried again after another
    log_max_size bytes.

    Leaves to others: what an entry looks like (logcap formats text or
    JSON entries, each ended by a newline, and hands over whole entries),
    keeping and publishing the lines themselves (logcap, logring).  Talks
    to agentlog and publish.
*/
#ifndef PM_LOGFILE_H
#define PM_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "publish.h"

typedef struct pm_logfile_t pm_logfile_t;

/*  Opens path for appending (created 0600, its directory 0755) for the
    service's lines, with settings' format, log_max_size and log_backups
    (copied); failures are published through pub (may be NULL).  Returns
    NULL with a message in err if the file cannot be opened. */
pm_logfile_t *pm_logfile_new (const char *service, const char *path,
                              const pm_config_log_t *settings,
                              pm_publish_t *pub, char *err, size_t errlen);

/*  Closes the file. */
void pm_logfile_destroy (pm_logfile_t **self_p);

/*  Goes on in the file at path (opened as by pm_logfile_new) if it is not
    the current one.  Returns 0, or -1 with a message in err (the current
    file is kept). */
int pm_logfile_reopen (pm_logfile_t *self, const char *path, char *err,
                       size_t errlen);

/*  New format and rotation settings (copied). */
void pm_logfile_set_settings (pm_logfile_t *self,
                              const pm_config_log_t *settings);

/*  True when an entry of size bytes, after pending bytes not yet written,
    would take the file past log_max_size: write the pending bytes, then
    rotate. */
bool pm_logfile_is_full (const pm_logfile_t *self, uint64_t pending,
                         size_t size);

/*  Appends size bytes of whole entries, each ended by a newline.  Never
    blocks for long and never fails: what cannot be written is counted,
    and the file keeps whole entries only. */
void pm_logfile_write (pm_logfile_t *self, const char *data, size_t size);

/*  name.log.(k) -> name.log.(k+1), name.log -> name.log.1, a new name.log.
    If a rename fails, the current file stays and is written on. */
void pm_logfile_rotate (pm_logfile_t *self);

/*  Lines not written to the file since writing last failed; 0 while
    writing works. */
uint64_t pm_logfile_missing (const pm_logfile_t *self);

/*  Writes size bytes of text at dst as a JSON string, with quotes; bytes
    that are not valid UTF-8 become \ufffd, as in the protocol's JSON.
    dst has room for 6 * size + 2 bytes.  Returns the bytes written. */
size_t pm_logfile_json_string (char *dst, const char *text, size_t size);

#endif
