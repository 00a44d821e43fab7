/*  pm_rundir.h - where an agent lives: its name, runtime directory and
    endpoints

    Owns: the one rule, shared by pmd and every client, that turns a config
    file into an agent name and a runtime directory, and the paths inside
    it.  Both sides call the same code, so a client always finds the agent
    exactly where the agent placed itself.

    The rule (README "Where things live"):
      base  = $XDG_RUNTIME_DIR/pmbus        if XDG_RUNTIME_DIR is set
              /tmp/pmbus-<uid>              otherwise
      name  = agent.name from the config, or derived from the config's
              absolute path: <stem>-<8 hex digits of a hash of the path>
      dir   = <base>/<name>                 (or --runtime-dir / -s DIR)
      dir holds control.sock, events.sock, pmd.pid, pmd.lock,
      status.snapshot, and `config`: the agent's record of what it
      loaded (pm_loaded_t below), by which a client finds the agent of
      a config file without parsing that file again
*/
#ifndef PM_RUNDIR_H
#define PM_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define PM_PATH_MAX 4096
/*  sun_path is 108 bytes on Linux, including the terminating NUL. */
#define PM_SUN_PATH_MAX 107

typedef struct {
    char dir[PM_PATH_MAX];        /* the runtime directory */
    char control[PM_PATH_MAX + 32];   /* "ipc://<dir>/control.sock" or the config's override */
    char events[PM_PATH_MAX + 32];    /* "ipc://<dir>/events.sock" or the config's override */
    char lock[PM_PATH_MAX + 32];      /* "<dir>/pmd.lock" */
    char pidfile[PM_PATH_MAX + 32];   /* "<dir>/pmd.pid" */
    char config[PM_PATH_MAX + 32];    /* "<dir>/config": the agent's record (pm_loaded_t) */
    char snapshot[PM_PATH_MAX + 32];  /* "<dir>/status.snapshot" (PROTOCOL.md 12) */
} pm_paths_t;

/*  A file's identity as the file system tells it: device, inode, size,
    modification and change times (ns).  Two equal identities of one path
    mean the same bytes (any write changes mtime and ctime, an editor's
    save-by-rename changes the inode). */
typedef struct {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} pm_file_id_t;

/*  The identity of st (from stat or fstat). */
void pm_file_id_of (const struct stat *st, pm_file_id_t *id);
bool pm_file_id_equal (const pm_file_id_t *a, const pm_file_id_t *b);

/*  The agent's record, <dir>/config, four lines: the absolute path of the
    config file it loaded; that file's identity when it was read
    ("DEV INO SIZE MTIME_NS CTIME_NS"), or "-" when unknown (a config with
    @includes: their changes would not show); its control endpoint; its
    events endpoint.  Rewritten (atomically) after every reload. */
typedef struct {
    char path[PM_PATH_MAX];
    bool has_id;
    pm_file_id_t id;
    char control[PM_PATH_MAX + 32];
    char events[PM_PATH_MAX + 32];
} pm_loaded_t;

/*  The record's text; returns its length, or -1 when it does not fit. */
int pm_loaded_format (const pm_loaded_t *self, char *buf, size_t size);

/*  Reads the record at file.  Returns 0, or -1 (missing, unreadable, or
    not a record: a record of an older agent holds the path alone, and
    reads with has_id false and no endpoints). */
int pm_loaded_read (const char *file, pm_loaded_t *self);

/*  Derives an agent name from an absolute config path: the file's stem
    (or, for a file called pmbus.cfg, its directory's name), reduced to
    [A-Za-z0-9._-] and at most 32 bytes, then "-" and 8 hex digits of a
    64-bit FNV-1a hash of the whole path.  Returns 0, or -1 if out is too
    small. */
int pm_agent_name_derive (const char *config_path, char *out, size_t size);

/*  True if name is a valid agent name: 1..64 bytes of [A-Za-z0-9._-],
    not starting with '.'. */
int pm_agent_name_valid (const char *name);

/*  Fills paths for the agent called name.  rundir, when not NULL, is the
    runtime directory to use instead of the derived one; control and
    events, when not NULL, override the endpoints.  An ipc endpoint whose
    path does not fit sun_path is refused.  Returns 0, or -1 with a message
    in err. */
int pm_paths_init (pm_paths_t *paths, const char *name, const char *rundir,
                   const char *control, const char *events,
                   char *err, size_t errlen);

/*  Creates the runtime directory (and its base) with mode 0700 if missing,
    and checks that it is a directory owned by us and not accessible by
    others.  Returns 0, or -1 with a message in err. */
int pm_rundir_make (const pm_paths_t *paths, char *err, size_t errlen);

/*  Tries a shared, non-blocking flock on the lock file.  Returns 1 if an
    agent holds it (running), 0 if not (no file, or the lock is free), -1
    on another error.  Sends nothing to the agent. */
int pm_rundir_agent_running (const pm_paths_t *paths);

/*  The base directory every agent's runtime directory sits in
    ($XDG_RUNTIME_DIR/pmbus or /tmp/pmbus-<uid>).  Returns 0 or -1. */
int pm_rundir_base (char *out, size_t size);

/*  Finds, among the runtime directories in the base, the live agent (its
    lock held) whose record names config_path (an absolute, real path),
    and writes that directory's name to name and, when loaded is not
    NULL, the record to loaded.  Returns 0 if found, -1 if not.  For a
    client: one whose config no longer parses (agent.name cannot be
    read), and one whose config is the very file the agent loaded (the
    identities equal), which need not parse it at all. */
int pm_rundir_find_by_config (const char *config_path, char *name,
                              size_t size, pm_loaded_t *loaded);

/*  Reads the pid file; returns the pid, or 0 if missing or unreadable. */
long pm_rundir_read_pid (const pm_paths_t *paths);

#endif
