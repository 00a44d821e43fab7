/*  pm_frame.c - structural scan and unpack of one msgpack frame, UTF-8
    checks (see pm_frame.h)

    Owns: the byte-level walk that runs before msgpack-c.  It reads only
    type bytes and length fields, never values, and never reads past size.
    Leaves the meaning of the object to pm_msg.c and pm_json.c.
*/
#include "pm_frame.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Reads a big-endian unsigned of width bytes at data [*off]; -1 if the
//  frame ends first.
static int
s_read_be (const unsigned char *data, size_t size, size_t *off,
           size_t width, uint64_t *value)
{
    if (width > size - *off)
        return -1;
    uint64_t result = 0;
    for (size_t i = 0; i < width; i++)
        result = (result << 8) | data [*off + i];
    *off += width;
    *value = result;
    return 0;
}

//  Walks one object from data [0].  On success sets *end to the offset
//  just after it.
static int
s_scan (const unsigned char *data, size_t size, size_t *end,
        char *err, size_t errlen)
{
    //  pending [d] = objects still to read in the container at level d;
    //  level 0 is the frame itself, which holds one object.
    uint64_t pending [PM_FRAME_DEPTH_MAX + 1];
    size_t depth = 0;
    size_t off = 0;
    pending [0] = 1;

    while (true) {
        while (depth > 0 && pending [depth] == 0)
            depth--;
        if (pending [depth] == 0)
            break;
        pending [depth]--;

        if (off >= size) {
            snprintf (err, errlen, "not a complete msgpack object: the "
                      "frame ends at byte %zu", size);
            return -1;
        }
        size_t at = off;
        unsigned type = data [off++];
        size_t width = 0;           //  bytes of the length field
        uint64_t skip = 0;          //  payload bytes after the length field
        uint64_t extra = 0;         //  fixed bytes added to a read length
        int kind = 0;               //  0 scalar, 1 array, 2 map

        if (type <= 0x7f || type >= 0xe0 || type == 0xc0
        ||  type == 0xc2 || type == 0xc3)
            ;                       //  fixint, nil, false, true
        else
        if (type <= 0x8f) {
            kind = 2;
            skip = type & 0x0f;
        }
        else
        if (type <= 0x9f) {
            kind = 1;
            skip = type & 0x0f;
        }
        else
        if (type <= 0xbf)
            skip = type & 0x1f;     //  fixstr
        else
        switch (type) {
            case 0xc4: case 0xd9: width = 1; break;       //  bin8, str8
            case 0xc5: case 0xda: width = 2; break;       //  bin16, str16
            case 0xc6: case 0xdb: width = 4; break;       //  bin32, str32
            case 0xc7: width = 1; extra = 1; break;       //  ext8 (+ type)
            case 0xc8: width = 2; extra = 1; break;       //  ext16
            case 0xc9: width = 4; extra = 1; break;       //  ext32
            case 0xca: skip = 4; break;                   //  float32
            case 0xcb: skip = 8; break;                   //  float64
            case 0xcc: case 0xd0: skip = 1; break;        //  (u)int8
            case 0xcd: case 0xd1: skip = 2; break;        //  (u)int16
            case 0xce: case 0xd2: skip = 4; break;        //  (u)int32
            case 0xcf: case 0xd3: skip = 8; break;        //  (u)int64
            case 0xd4: skip = 2; break;                   //  fixext1
            case 0xd5: skip = 3; break;                   //  fixext2
            case 0xd6: skip = 5; break;                   //  fixext4
            case 0xd7: skip = 9; break;                   //  fixext8
            case 0xd8: skip = 17; break;                  //  fixext16
            case 0xdc: kind = 1; width = 2; break;        //  array16
            case 0xdd: kind = 1; width = 4; break;        //  array32
            case 0xde: kind = 2; width = 2; break;        //  map16
            case 0xdf: kind = 2; width = 4; break;        //  map32
            default:
                snprintf (err, errlen, "not msgpack: invalid type byte "
                          "0x%02x at byte %zu", type, at);
                return -1;
        }
        if (width) {
            if (s_read_be (data, size, &off, width, &skip)) {
                snprintf (err, errlen, "not a complete msgpack object: "
                          "length at byte %zu cut off by the end of the "
                          "frame", at);
                return -1;
            }
            skip += extra;
        }
        if (kind == 0) {
            if (skip > size - off) {
                snprintf (err, errlen, "not a complete msgpack object: "
                          "value at byte %zu declares %llu bytes, %zu "
                          "remain", at, (unsigned long long) skip,
                          size - off);
                return -1;
            }
            off += (size_t) skip;
            continue;
        }
        //  A container: every element takes at least one byte, so its
        //  count can never exceed what is left.
        uint64_t children = kind == 2 ? skip * 2 : skip;
        if (children > size - off) {
            snprintf (err, errlen, "not a complete msgpack object: %s at "
                      "byte %zu declares %llu %s, %zu bytes remain",
                      kind == 2 ? "map" : "array", at,
                      (unsigned long long) skip,
                      kind == 2 ? "entries" : "elements", size - off);
            return -1;
        }
        if (depth + 1 > PM_FRAME_DEPTH_MAX) {
            snprintf (err, errlen, "containers nested deeper than %d "
                      "levels at byte %zu", PM_FRAME_DEPTH_MAX, at);
            return -1;
        }
        if (children > 0)
            pending [++depth] = children;
    }
    *end = off;
    return 0;
}

int
pm_frame_unpack (const void *data, size_t size, msgpack_unpacked *result,
                 char *err, size_t errlen)
{
    msgpack_unpacked_init (result);
    if (size == 0 || !data) {
        snprintf (err, errlen, "empty frame");
        return -1;
    }
    size_t end = 0;
    if (s_scan ((const unsigned char *) data, size, &end, err, errlen))
        return -1;
    if (end != size) {
        snprintf (err, errlen, "trailing bytes after the message (%zu of "
                  "%zu bytes used)", end, size);
        return -1;
    }
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (result, data, size, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != size) {
        //  The scan accepted it, so only memory can be missing here.
        snprintf (err, errlen, "cannot unpack the frame (%s)",
                  rc == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory"
                                                   : "msgpack error");
        return -1;
    }
    return 0;
}

size_t
pm_utf8_next (const unsigned char *text, size_t size)
{
    if (size == 0)
        return 0;
    unsigned lead = text [0];
    if (lead < 0x80)
        return 1;
    size_t len;
    uint32_t code, min;
    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2; code = lead & 0x1f; min = 0x80;
    }
    else
    if ((lead & 0xf0) == 0xe0) {
        len = 3; code = lead & 0x0f; min = 0x800;
    }
    else
    if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4; code = lead & 0x07; min = 0x10000;
    }
    else
        return 0;
    if (size < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((text [i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (text [i] & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return len;
}

bool
pm_utf8_valid (const void *text, size_t size)
{
    const unsigned char *bytes = (const unsigned char *) text;
    size_t off = 0;
    //  Most lines are ASCII: check eight bytes at a time for a high bit.
    while (off + 8 <= size) {
        uint64_t word;
        memcpy (&word, bytes + off, 8);
        if (word & 0x8080808080808080ULL)
            break;
        off += 8;
    }
    while (off < size) {
        if (bytes [off] < 0x80) {
            off++;
            continue;
        }
        size_t len = pm_utf8_next (bytes + off, size - off);
        if (len == 0)
            return false;
        off += len;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/*  Memory                                                             */
/* ------------------------------------------------------------------ */

void *
pm_alloc (size_t count, size_t size)
{
    void *ptr = calloc (count ? count : 1, size);
    if (!ptr)
        abort ();
    return ptr;
}

char *
pm_strdup (const char *text)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    if (!copy)
        abort ();
    return copy;
}

void *
pm_grow (void *array, size_t count, size_t elem)
{
    //  Capacity is the next power of two: grow when count reaches one.
    if (count == 0 || (count & (count - 1)) == 0) {
        size_t capacity = count ? count * 2 : 1;
        array = realloc (array, capacity * elem);
        if (!array)
            abort ();
    }
    return array;
}

/* ------------------------------------------------------------------ */
/*  Field decoding                                                     */
/* ------------------------------------------------------------------ */

int
pm_decoder_fail (pm_decoder_t *dec, pm_err_t code, const char *fmt, ...)
{
    if (dec->code == PM_OK) {
        dec->code = code;
        va_list args;
        va_start (args, fmt);
        vsnprintf (dec->err, dec->errlen, fmt, args);
        va_end (args);
    }
    return -1;
}

bool
pm_key_is (const msgpack_object *key, const char *name)
{
    size_t len = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == len
        && memcmp (key->via.str.ptr, name, len) == 0;
}

void
pm_key_text (const msgpack_object *key, char *buf, size_t size)
{
    //  Only printable ASCII reaches a message (and so a log line); the
    //  rest shows as '?', and long keys are cut.
    if (size == 0)
        return;
    if (key->type != MSGPACK_OBJECT_STR) {
        snprintf (buf, size, "(not a string)");
        return;
    }
    size_t limit = size - 1 < 40 ? size - 1 : 40;
    size_t n = 0;
    for (uint32_t i = 0; i < key->via.str.size && n < limit; i++) {
        unsigned char c = (unsigned char) key->via.str.ptr [i];
        buf [n++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
    }
    buf [n] = 0;
    if (key->via.str.size > limit && size > n + 3)
        snprintf (buf + n, size - n, "...");
}

int
pm_decode_string (pm_decoder_t *dec, const msgpack_object *obj,
                  const char *path, size_t min, size_t max, bool nullable,
                  char **out)
{
    *out = NULL;
    if (nullable && obj->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (obj->type != MSGPACK_OBJECT_STR)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a string%s", path,
                                nullable ? " or nil" : "");
    size_t len = obj->via.str.size;
    if (len < min)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a non-empty string", path);
    if (len > max)
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "%s: %zu bytes, over the limit of %zu",
                                path, len, max);
    if (len && memchr (obj->via.str.ptr, 0, len))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: contains a NUL byte", path);
    *out = strndup (len ? obj->via.str.ptr : "", len);
    if (!*out)
        abort ();
    return 0;
}

int
pm_decode_uint (pm_decoder_t *dec, const msgpack_object *obj,
                const char *path, uint64_t *out)
{
    if (obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected an unsigned integer", path);
    *out = obj->via.u64;
    return 0;
}

int
pm_decode_int (pm_decoder_t *dec, const msgpack_object *obj,
               const char *path, int64_t min, int64_t max,
               const char *what, int64_t *out)
{
    int64_t value;
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
    &&  obj->via.u64 <= (uint64_t) INT64_MAX)
        value = (int64_t) obj->via.u64;
    else
    if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        value = obj->via.i64;
    else
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected %s", path, what);
    if (value < min || value > max)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected %s", path, what);
    *out = value;
    return 0;
}

int
pm_decode_number (pm_decoder_t *dec, const msgpack_object *obj,
                  const char *path, double min, double *out)
{
    double value;
    switch (obj->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            value = (double) obj->via.u64;
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            value = (double) obj->via.i64;
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            value = obj->via.f64;
            break;
        default:
            value = NAN;
            break;
    }
    //  NaN fails both comparisons; infinities are not durations or times.
    if (!(value >= min) || isinf (value)) {
        if (min > -INFINITY)
            return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                    "%s: expected a number >= %g", path, min);
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a finite number", path);
    }
    *out = value;
    return 0;
}

int
pm_decode_bool (pm_decoder_t *dec, const msgpack_object *obj,
                const char *path, bool *out)
{
    if (obj->type != MSGPACK_OBJECT_BOOLEAN)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a boolean", path);
    *out = obj->via.boolean;
    return 0;
}

int
pm_decode_names (pm_decoder_t *dec, const msgpack_object *obj,
                 const char *path, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    if (obj->type != MSGPACK_OBJECT_ARRAY)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected an array of strings", path);
    size_t size = obj->via.array.size;
    if (size > PM_NAMES_MAX)
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "%s: %zu names, over the limit of %d",
                                path, size, PM_NAMES_MAX);
    if (size == 0)
        return 0;
    char **list = calloc (size, sizeof *list);
    if (!list)
        abort ();
    for (size_t i = 0; i < size; i++) {
        char where [160];
        snprintf (where, sizeof where, "%s[%zu]", path, i);
        if (pm_decode_string (dec, &obj->via.array.ptr [i], where, 1,
                              PM_TARGET_MAX, false, &list [i])) {
            for (size_t j = 0; j < i; j++)
                free (list [j]);
            free (list);
            return -1;
        }
    }
    *names = list;
    *count = size;
    return 0;
}

int
pm_decode_frame (pm_decoder_t *dec, const void *data, size_t size,
                 msgpack_unpacked *result)
{
    if (size > PM_FRAME_MAX) {
        msgpack_unpacked_init (result);
        return pm_decoder_fail (dec, PM_ERR_TOO_LARGE,
                                "frame is %zu bytes, over the limit of %d",
                                size, PM_FRAME_MAX);
    }
    char why [200];
    if (pm_frame_unpack (data, size, result, why, sizeof why))
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "%s", why);
    if (result->data.type != MSGPACK_OBJECT_MAP)
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "expected a map at the top level");
    return 0;
}

int
pm_decode_version (pm_decoder_t *dec, const msgpack_object *map)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (!pm_key_is (&kv->key, "v"))
            continue;
        uint64_t version = 0;
        if (pm_decode_uint (dec, &kv->val, "v", &version))
            return -1;
        if (version != PM_PROTOCOL_VERSION)
            return pm_decoder_fail (dec, PM_ERR_BAD_VERSION,
                                    "v: protocol version %llu is not "
                                    "supported (this side speaks %d)",
                                    (unsigned long long) version,
                                    PM_PROTOCOL_VERSION);
        return 0;
    }
    return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST, "v: required");
}

/* ------------------------------------------------------------------ */
/*  Encoding                                                           */
/* ------------------------------------------------------------------ */

static int
s_sbuffer_write (void *data, const char *buf, size_t len)
{
    if (msgpack_sbuffer_write (data, buf, len) != 0)
        abort ();
    return 0;
}

void
pm_packer_init (msgpack_packer *pk, msgpack_sbuffer *sbuf)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (pk, sbuf, s_sbuffer_write);
}

void
pm_pack_str (msgpack_packer *pk, const char *text)
{
    size_t len = text ? strlen (text) : 0;
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text ? text : "", len);
}

void
pm_pack_line (msgpack_packer *pk, const char *line, size_t size)
{
    const char *text = line ? line : "";
    if (pm_utf8_valid (text, size)) {
        msgpack_pack_str (pk, size);
        msgpack_pack_str_body (pk, text, size);
    }
    else {
        msgpack_pack_bin (pk, size);
        msgpack_pack_bin_body (pk, text, size);
    }
}

void
pm_pack_nstr (msgpack_packer *pk, const char *text)
{
    if (text)
        pm_pack_str (pk, text);
    else
        msgpack_pack_nil (pk);
}

int
pm_pack_finish (msgpack_sbuffer *sbuf, char **data, size_t *size)
{
    if (sbuf->size > PM_FRAME_MAX) {
        msgpack_sbuffer_destroy (sbuf);
        return -1;
    }
    *size = sbuf->size;
    *data = msgpack_sbuffer_release (sbuf);
    return 0;
}

int
pm_decode_bytes (pm_decoder_t *dec, const msgpack_object *obj,
                 const char *path, char **out, size_t *size)
{
    const char *bytes;
    size_t len;
    if (obj->type == MSGPACK_OBJECT_STR) {
        bytes = obj->via.str.ptr;
        len = obj->via.str.size;
    }
    else
    if (obj->type == MSGPACK_OBJECT_BIN) {
        bytes = obj->via.bin.ptr;
        len = obj->via.bin.size;
    }
    else
        return pm_decoder_fail (dec, PM_ERR_BAD_REQUEST,
                                "%s: expected a string or bin", path);
    *out = malloc (len + 1);
    if (!*out)
        abort ();
    if (len)
        memcpy (*out, bytes, len);
    (*out) [len] = 0;
    *size = len;
    return 0;
}

pm_decoder_t
pm_decoder_start (char *err, size_t errlen, char *spare)
{
    if (!err || errlen == 0) {
        err = spare;
        errlen = 1;
    }
    err [0] = 0;
    pm_decoder_t dec = { err, errlen, PM_OK };
    return dec;
}
