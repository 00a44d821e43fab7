/*  snapfile.c - `pmctl status` from the status snapshot (see snapfile.h)

    A torn read is impossible by construction: the agent renames each
    generation over the file, and the descriptor opened here keeps the
    generation it opened until it is read to the end.
*/
#include "snapfile.h"
#include "pm_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  A file larger than this is not a snapshot (1,000 services: 265 KB).
#define S_SIZE_MAX (64u * 1024 * 1024)

//  The whole file in a malloc'd buffer, or NULL.
static char *
s_read_all (const char *path, size_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    struct stat st;
    char *data = NULL;
    if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0
    &&  (size_t) st.st_size <= S_SIZE_MAX) {
        //  The agent never rewrites a file in place, so its size is final.
        size_t size = (size_t) st.st_size;
        size_t got = 0;
        data = malloc (size);
        while (data && got < size) {
            ssize_t n = read (fd, data + got, size - got);
            if (n == -1 && errno == EINTR)
                continue;
            if (n <= 0) {
                free (data);
                data = NULL;
                break;
            }
            got += (size_t) n;
        }
        *size_p = size;
    }
    close (fd);
    return data;
}

//  The record named name in snapshot, or NULL.
static const pm_record_t *
s_find (const pm_reply_t *snapshot, const char *name)
{
    for (size_t i = 0; i < snapshot->services_count; i++)
        if (strcmp (snapshot->services [i].name, name) == 0)
            return &snapshot->services [i];
    return NULL;
}

//  Adds record to reply with its uptime as of now.
static void
s_add (pm_reply_t *reply, const pm_record_t *record, double now)
{
    pm_reply_add_service (reply, record);
    pm_record_t *added = &reply->services [reply->services_count - 1];
    added->uptime = pm_uptime (added->pid, added->started_at, now);
}

//  A successful status reply lists the leases, taken from snapshot.
static void
s_succeed (pm_reply_t *reply, pm_reply_t *snapshot)
{
    reply->leases = snapshot->leases;
    reply->leases_count = snapshot->leases_count;
    snapshot->leases = NULL;
    snapshot->leases_count = 0;
    reply->instance = snapshot->instance;
    snapshot->instance = NULL;
    reply->ok = true;
}

//  The reply the agent gives to request, from the records of snapshot.
//  Names are answered in the order given, each once, as the agent does.
static pm_reply_t *
s_answer (pm_reply_t *snapshot, const pm_request_t *request, double now)
{
    pm_reply_t *reply = pm_reply_new (request->id);
    if (request->names_count == 0) {
        for (size_t i = 0; i < snapshot->services_count; i++)
            s_add (reply, &snapshot->services [i], now);
        s_succeed (reply, snapshot);
        return reply;
    }
    const pm_record_t **added = calloc (request->names_count,
                                        sizeof *added);
    if (!added)
        abort ();
    size_t count = 0;
    for (size_t k = 0; k < request->names_count; k++) {
        const pm_record_t *record = s_find (snapshot, request->names [k]);
        if (!record) {
            pm_reply_add_err_name (reply, request->names [k]);
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < count && !seen; j++)
            seen = added [j] == record;
        if (!seen) {
            added [count++] = record;
            s_add (reply, record, now);
        }
    }
    free (added);
    if (reply->err_names_count) {
        //  The agent answers an unknown name with the error alone.
        for (size_t i = 0; i < reply->services_count; i++)
            pm_record_clear (&reply->services [i]);
        free (reply->services);
        reply->services = NULL;
        reply->services_count = 0;
        pm_reply_set_unknown (reply);
    }
    else
        s_succeed (reply, snapshot);
    return reply;
}

//  True if the record obj (a map) is named one of request's names.
static bool
s_wanted (const msgpack_object *obj, const pm_request_t *request)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return true;            //  let the decoder say what is wrong
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr [i];
        if (!pm_key_is (&kv->key, "name"))
            continue;
        if (kv->val.type != MSGPACK_OBJECT_STR)
            return true;
        for (size_t k = 0; k < request->names_count; k++)
            if (strlen (request->names [k]) == kv->val.via.str.size
            &&  memcmp (request->names [k], kv->val.via.str.ptr,
                        kv->val.via.str.size) == 0)
                return true;
        return false;
    }
    return true;
}

//  The snapshot with only the records request names, decoded: a status of
//  one service does not decode a thousand.  NULL if it is not one.
static pm_reply_t *
s_decode_named (const char *data, size_t size, const pm_request_t *request)
{
    char err [256];
    char spare [1];
    pm_decoder_t dec = pm_decoder_start (err, sizeof err, spare);
    msgpack_unpacked unpacked;
    pm_reply_t *snapshot = pm_reply_new (0);
    bool ok = false, services = false;
    int rc = pm_decode_frame (&dec, data, size, &unpacked);
    const msgpack_object *root = &unpacked.data;
    for (uint32_t i = 0; rc == 0 && i < root->via.map.size; i++) {
        const msgpack_object *key = &root->via.map.ptr [i].key;
        const msgpack_object *val = &root->via.map.ptr [i].val;
        if (pm_key_is (key, "ok"))
            rc = pm_decode_bool (&dec, val, "ok", &ok);
        else
        if (pm_key_is (key, "generation"))
            rc = pm_decode_uint (&dec, val, "generation",
                                 &snapshot->generation);
        else
        if (pm_key_is (key, "pid"))
            rc = pm_decode_int (&dec, val, "pid", 1, INT32_MAX, "a pid",
                                &snapshot->agent_pid);
        else
        if (pm_key_is (key, "instance"))
            rc = pm_decode_string (&dec, val, "instance", 1, PM_INSTANCE_MAX,
                                   false, &snapshot->instance);
        else
        if (pm_key_is (key, "leases") && val->type == MSGPACK_OBJECT_ARRAY) {
            snapshot->leases = calloc (val->via.array.size + 1,
                                       sizeof *snapshot->leases);
            if (!snapshot->leases)
                abort ();
            for (uint32_t j = 0; rc == 0 && j < val->via.array.size; j++)
                rc = pm_decode_int (&dec, &val->via.array.ptr [j], "leases",
                                    1, INT32_MAX, "a pid",
                                    &snapshot->leases [snapshot->leases_count++]);
        }
        else
        if (pm_key_is (key, "services") && val->type == MSGPACK_OBJECT_ARRAY) {
            services = true;
            for (uint32_t j = 0; rc == 0 && j < val->via.array.size; j++) {
                const msgpack_object *obj = &val->via.array.ptr [j];
                if (!s_wanted (obj, request))
                    continue;
                pm_record_t record;
                rc = pm_record_unpack (&dec, obj, "services", &record);
                if (rc == 0)
                    pm_reply_add_service (snapshot, &record);
                pm_record_clear (&record);
            }
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    if (rc != 0 || !services) {
        pm_reply_destroy (&snapshot);
        return NULL;
    }
    snapshot->ok = ok;
    return snapshot;
}

int
pm_snapfile_status (const pm_paths_t *paths, long agent_pid,
                    const pm_request_t *request, double now,
                    pm_reply_t **reply_p, char **frame_p, size_t *size_p)
{
    size_t size = 0;
    char *data = s_read_all (paths->snapshot, &size);
    if (!data)
        return -1;
    pm_reply_t *snapshot = NULL;
    char err [256];
    pm_err_t rc = PM_OK;
    if (request->names_count)
        snapshot = s_decode_named (data, size, request);
    else
        rc = pm_reply_decode (data, size, &snapshot, err, sizeof err);
    if (!snapshot)
        rc = PM_ERR_BAD_REQUEST;
    free (data);
    //  A file left by an agent killed with SIGKILL, before the agent that
    //  holds the lock now has written its first: not this agent's truth.
    if (rc != PM_OK || !snapshot->ok || snapshot->generation == 0
    ||  agent_pid <= 0 || snapshot->agent_pid != agent_pid) {
        pm_reply_destroy (&snapshot);
        return -1;
    }
    pm_reply_t *reply = s_answer (snapshot, request, now);
    pm_reply_destroy (&snapshot);
    if (pm_reply_encode (reply, frame_p, size_p) == -1) {
        pm_reply_destroy (&reply);
        return -1;
    }
    *reply_p = reply;
    return 0;
}
