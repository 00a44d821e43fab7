/*  pm_logs.c - the `logs` reply's blocks and the `reload` reply's lists
    (see pm_proto.h, PROTOCOL.md)

    Owns: pm_logblock_t and pm_line_t, their helpers, and their msgpack
    form inside a reply:
      "logs": [ {"service", "first", "last", "gone": [from, to] | nil,
                 "more": bool,
                 "lines": [ {"seq", "ts", "stream", "line", "partial"?} ]} ]
    A line is a str when it is valid UTF-8 and a bin otherwise, as in log
    events.  Leaves the rest of the reply to pm_reply.c.
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pm_logblock_t *
pm_reply_add_logblock (pm_reply_t *self, const char *service)
{
    self->logs = pm_grow (self->logs, self->logs_count, sizeof (pm_logblock_t));
    pm_logblock_t *block = &self->logs [self->logs_count++];
    memset (block, 0, sizeof *block);
    block->service = pm_strdup (service);
    return block;
}

void
pm_logblock_add_line (pm_logblock_t *block, uint64_t seq, double ts,
                      pm_stream_t stream, bool partial, const char *line,
                      size_t size)
{
    block->lines = pm_grow (block->lines, block->lines_count,
                            sizeof (pm_line_t));
    pm_line_t *copy = &block->lines [block->lines_count++];
    copy->seq = seq;
    copy->ts = ts;
    copy->stream = stream;
    copy->partial = partial;
    copy->line = malloc (size + 1);
    if (!copy->line)
        abort ();
    if (size)
        memcpy (copy->line, line, size);
    copy->line [size] = 0;
    copy->line_size = size;
}

size_t
pm_line_encoded_size (size_t line_size)
{
    //  The map and its keys, seq, ts, stream and partial take under 64
    //  bytes; the line's own header at most 5.
    return line_size + 64;
}

void
pm_logblocks_free (pm_logblock_t *blocks, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < blocks [i].lines_count; j++)
            free (blocks [i].lines [j].line);
        free (blocks [i].lines);
        free (blocks [i].service);
        free (blocks [i].instance);
    }
    free (blocks);
}

void
pm_logblocks_pack (msgpack_packer *pk, const pm_logblock_t *blocks,
                   size_t count)
{
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++) {
        const pm_logblock_t *block = &blocks [i];
        msgpack_pack_map (pk, 6 + (block->instance != NULL));
        pm_pack_str (pk, "service");
        pm_pack_str (pk, block->service);
        if (block->instance) {
            pm_pack_str (pk, "instance");
            pm_pack_str (pk, block->instance);
        }
        pm_pack_str (pk, "first");
        msgpack_pack_uint64 (pk, block->first);
        pm_pack_str (pk, "last");
        msgpack_pack_uint64 (pk, block->last);
        pm_pack_str (pk, "gone");
        if (block->gone_from) {
            msgpack_pack_array (pk, 2);
            msgpack_pack_uint64 (pk, block->gone_from);
            msgpack_pack_uint64 (pk, block->gone_to);
        }
        else
            msgpack_pack_nil (pk);
        pm_pack_str (pk, "more");
        if (block->more)
            msgpack_pack_true (pk);
        else
            msgpack_pack_false (pk);
        pm_pack_str (pk, "lines");
        msgpack_pack_array (pk, block->lines_count);
        for (size_t j = 0; j < block->lines_count; j++) {
            const pm_line_t *line = &block->lines [j];
            msgpack_pack_map (pk, 4 + line->partial);
            pm_pack_str (pk, "seq");
            msgpack_pack_uint64 (pk, line->seq);
            pm_pack_str (pk, "ts");
            msgpack_pack_double (pk, line->ts);
            pm_pack_str (pk, "stream");
            pm_pack_str (pk, pm_stream_name (line->stream));
            pm_pack_str (pk, "line");
            pm_pack_line (pk, line->line, line->line_size);
            if (line->partial) {
                pm_pack_str (pk, "partial");
                msgpack_pack_true (pk);
            }
        }
    }
}

static int
s_unpack_line (pm_decoder_t *dec, const msgpack_object *obj, const char *path,
               pm_line_t *line)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s: expected a map",
                                path);
    bool have_seq = false, have_line = false;
    char where [128];
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        if (pm_key_is (key, "seq")) {
            snprintf (where, sizeof where, "%s.seq", path);
            if (pm_decode_uint (dec, val, where, &line->seq))
                return -1;
            have_seq = true;
        }
        else
        if (pm_key_is (key, "ts")) {
            snprintf (where, sizeof where, "%s.ts", path);
            if (pm_decode_number (dec, val, where, 0, &line->ts))
                return -1;
        }
        else
        if (pm_key_is (key, "stream")) {
            char *text = NULL;
            snprintf (where, sizeof where, "%s.stream", path);
            if (pm_decode_string (dec, val, where, 1, 8, false, &text))
                return -1;
            int rc = pm_stream_parse (text, &line->stream);
            free (text);
            if (rc)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s: expected \"out\" or \"err\"",
                                        where);
        }
        else
        if (pm_key_is (key, "partial")) {
            snprintf (where, sizeof where, "%s.partial", path);
            if (pm_decode_bool (dec, val, where, &line->partial))
                return -1;
        }
        else
        if (pm_key_is (key, "line")) {
            if (line->line)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s.line: given twice", path);
            snprintf (where, sizeof where, "%s.line", path);
            if (pm_decode_bytes (dec, val, where, &line->line,
                                 &line->line_size))
                return -1;
            have_line = true;
        }
    }
    if (!have_seq || !have_line)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s.%s: required",
                                path, have_seq ? "line" : "seq");
    return 0;
}

static int
s_unpack_block (pm_decoder_t *dec, const msgpack_object *obj, const char *path,
                pm_logblock_t *block)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s: expected a map",
                                path);
    char where [96];
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        if (pm_key_is (key, "service")) {
            snprintf (where, sizeof where, "%s.service", path);
            free (block->service);
            block->service = NULL;
            if (pm_decode_string (dec, val, where, 1, PM_TARGET_MAX, false,
                                  &block->service))
                return -1;
        }
        else
        if (pm_key_is (key, "instance")) {
            snprintf (where, sizeof where, "%s.instance", path);
            free (block->instance);
            block->instance = NULL;
            if (pm_decode_string (dec, val, where, 1, PM_INSTANCE_MAX, false,
                                  &block->instance))
                return -1;
        }
        else
        if (pm_key_is (key, "first")) {
            snprintf (where, sizeof where, "%s.first", path);
            if (pm_decode_uint (dec, val, where, &block->first))
                return -1;
        }
        else
        if (pm_key_is (key, "last")) {
            snprintf (where, sizeof where, "%s.last", path);
            if (pm_decode_uint (dec, val, where, &block->last))
                return -1;
        }
        else
        if (pm_key_is (key, "more")) {
            snprintf (where, sizeof where, "%s.more", path);
            if (pm_decode_bool (dec, val, where, &block->more))
                return -1;
        }
        else
        if (pm_key_is (key, "gone")) {
            if (val->type == MSGPACK_OBJECT_NIL)
                continue;
            if (val->type != MSGPACK_OBJECT_ARRAY || val->via.array.size != 2)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s.gone: expected [from, to] or nil",
                                        path);
            snprintf (where, sizeof where, "%s.gone[0]", path);
            if (pm_decode_uint (dec, &val->via.array.ptr [0], where,
                                &block->gone_from))
                return -1;
            snprintf (where, sizeof where, "%s.gone[1]", path);
            if (pm_decode_uint (dec, &val->via.array.ptr [1], where,
                                &block->gone_to))
                return -1;
        }
        else
        if (pm_key_is (key, "lines")) {
            if (val->type != MSGPACK_OBJECT_ARRAY)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s.lines: expected an array", path);
            if (block->lines)
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s.lines: given twice", path);
            if (val->via.array.size > PM_NAMES_MAX)
                return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                        "%s.lines: %u elements, over the "
                                        "limit of %d", path,
                                        (unsigned) val->via.array.size,
                                        PM_NAMES_MAX);
            block->lines = pm_alloc (val->via.array.size + 1,
                                     sizeof (pm_line_t));
            for (uint32_t j = 0; j < val->via.array.size; j++) {
                snprintf (where, sizeof where, "%s.lines[%u]", path,
                          (unsigned) j);
                block->lines_count++;
                if (s_unpack_line (dec, &val->via.array.ptr [j], where,
                                   &block->lines [j]))
                    return -1;
            }
        }
    }
    if (!block->service)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s.service: required", path);
    return 0;
}

int
pm_logblocks_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                     pm_logblock_t **blocks, size_t *count)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "logs: expected an array");
    if (obj->via.array.size > PM_NAMES_MAX)
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "logs: %u blocks, over the limit of %d",
                                (unsigned) obj->via.array.size, PM_NAMES_MAX);
    *blocks = pm_alloc (obj->via.array.size + 1, sizeof (pm_logblock_t));
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        char where [32];
        snprintf (where, sizeof where, "logs[%u]", (unsigned) i);
        (*count)++;
        if (s_unpack_block (dec, &obj->via.array.ptr [i], where,
                            &(*blocks) [i]))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/*  reload lists: "reload": {"added": [...], "removed": [...], ...}    */
/* ------------------------------------------------------------------ */

static const char *const s_reload_names [PM_RELOAD_COUNT_] = {
    "added", "removed", "changed", "restarted", "updated_in_place",
    "unchanged"
};

const char *
pm_reload_list_name (pm_reload_list_t list)
{
    return (unsigned) list < PM_RELOAD_COUNT_ ? s_reload_names [list] : "?";
}

void
pm_reply_add_reload (pm_reply_t *self, pm_reload_list_t list,
                     const char *name)
{
    if ((unsigned) list >= PM_RELOAD_COUNT_)
        return;
    self->has_reload = true;
    self->reload [list] = pm_grow (self->reload [list],
                                   self->reload_count [list], sizeof (char *));
    self->reload [list][self->reload_count [list]++] = pm_strdup (name);
}

void
pm_reload_free (pm_reply_t *self)
{
    for (int list = 0; list < PM_RELOAD_COUNT_; list++) {
        for (size_t i = 0; i < self->reload_count [list]; i++)
            free (self->reload [list][i]);
        free (self->reload [list]);
    }
}

void
pm_reload_pack (msgpack_packer *pk, const pm_reply_t *self)
{
    msgpack_pack_map (pk, PM_RELOAD_COUNT_);
    for (int list = 0; list < PM_RELOAD_COUNT_; list++) {
        pm_pack_str (pk, s_reload_names [list]);
        msgpack_pack_array (pk, self->reload_count [list]);
        for (size_t i = 0; i < self->reload_count [list]; i++)
            pm_pack_str (pk, self->reload [list][i]);
    }
}

int
pm_reload_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                  pm_reply_t *reply)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "reload: expected a map");
    reply->has_reload = true;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        for (int list = 0; list < PM_RELOAD_COUNT_; list++) {
            if (!pm_key_is (key, s_reload_names [list]))
                continue;
            char where [48];
            snprintf (where, sizeof where, "reload.%s", s_reload_names [list]);
            if (reply->reload [list])
                return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                        "%s: given twice", where);
            if (val->type == MSGPACK_OBJECT_ARRAY && val->via.array.size == 0) {
                reply->reload [list] = pm_alloc (1, sizeof (char *));
                break;
            }
            if (pm_decode_names (dec, val, where, &reply->reload [list],
                                 &reply->reload_count [list]))
                return -1;
        }
    }
    return 0;
}
