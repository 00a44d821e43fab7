/*  pm_json.c - any msgpack frame as one line of JSON (see pm_proto.h)

    Owns: the JSON rendering that `pmctl --json` and the log files use, so
    tools in any language can read what the agent says without msgpack.

    The mapping (PROTOCOL.md "JSON rendering"): nil is null; booleans and
    integers as themselves; floats in the shortest form that reads back to
    the same value, always with a '.' or an exponent, NaN and infinities
    as null; strings and bin as JSON strings, each byte that is not part
    of valid UTF-8 shown as \uFFFD; ext as {"ext": type, "hex": "..."};
    map keys that are not strings rendered as JSON text, then quoted.

    Leaves to others: what the fields mean.  The frame goes through the
    same structural checks as the decoders (pm_frame.c), so a hostile
    frame costs memory in proportion to its size.
*/
#include "pm_proto.h"
#include "pm_frame.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
} s_buf_t;

static void
s_put (s_buf_t *buf, const char *bytes, size_t len)
{
    if (buf->size + len + 1 > buf->capacity) {
        size_t capacity = buf->capacity ? buf->capacity : 256;
        while (buf->size + len + 1 > capacity)
            capacity *= 2;
        char *data = realloc (buf->data, capacity);
        if (!data)
            abort ();
        buf->data = data;
        buf->capacity = capacity;
    }
    memcpy (buf->data + buf->size, bytes, len);
    buf->size += len;
    buf->data [buf->size] = 0;
}

static void
s_puts (s_buf_t *buf, const char *text)
{
    s_put (buf, text, strlen (text));
}

//  A JSON string from arbitrary bytes: escapes what JSON requires, keeps
//  valid UTF-8 as it is, and replaces each stray byte with U+FFFD.
static void
s_string (s_buf_t *buf, const char *bytes, size_t size)
{
    const unsigned char *text = (const unsigned char *) bytes;
    s_put (buf, "\"", 1);
    size_t off = 0;
    while (off < size) {
        unsigned char c = text [off];
        if (c >= 0x80) {
            size_t len = pm_utf8_next (text + off, size - off);
            if (len == 0) {
                s_puts (buf, "\\ufffd");
                off++;
            }
            else {
                s_put (buf, bytes + off, len);
                off += len;
            }
            continue;
        }
        //  Runs of plain ASCII go in one copy.
        size_t run = off;
        while (run < size && text [run] >= 0x20 && text [run] < 0x80
           && text [run] != '"' && text [run] != '\\')
            run++;
        if (run > off) {
            s_put (buf, bytes + off, run - off);
            off = run;
            continue;
        }
        char escape [8];
        switch (c) {
            case '"':  s_puts (buf, "\\\""); break;
            case '\\': s_puts (buf, "\\\\"); break;
            case '\n': s_puts (buf, "\\n"); break;
            case '\r': s_puts (buf, "\\r"); break;
            case '\t': s_puts (buf, "\\t"); break;
            case '\b': s_puts (buf, "\\b"); break;
            case '\f': s_puts (buf, "\\f"); break;
            default:
                snprintf (escape, sizeof escape, "\\u%04x", c);
                s_puts (buf, escape);
                break;
        }
        off++;
    }
    s_put (buf, "\"", 1);
}

//  The shortest %.*g that reads back as the same value (digits is 17 for
//  a double, 9 for a float), made to look like a float.
static void
s_float (s_buf_t *buf, double value, bool single)
{
    if (isnan (value) || isinf (value)) {
        s_puts (buf, "null");
        return;
    }
    char text [48];
    int most = single ? 9 : 17;
    int digits = 1;
    for (; digits <= most; digits++) {
        snprintf (text, sizeof text, "%.*g", digits, value);
        double back = strtod (text, NULL);
        if (single ? (float) back == (float) value : back == value)
            break;
    }
    //  %g turns to an exponent once the decimal exponent reaches the
    //  precision: 1700000000 would read "1.7e+09".  Below 1e17 (the
    //  timestamps and durations the protocol carries), ask for enough
    //  digits to write the integer part out.
    if (digits > most)
        digits = most;
    char exp [48];
    snprintf (exp, sizeof exp, "%.*e", digits - 1, value);
    const char *e = strchr (exp, 'e');
    int exponent = e ? atoi (e + 1) : 0;
    if (exponent >= digits && exponent < 17)
        snprintf (text, sizeof text, "%.*g", exponent + 1, value);
    if (!strpbrk (text, ".eE"))
        strcat (text, ".0");
    s_puts (buf, text);
}

static void s_value (s_buf_t *buf, const msgpack_object *obj);

static void
s_key (s_buf_t *buf, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR) {
        s_string (buf, key->via.str.ptr, key->via.str.size);
        return;
    }
    if (key->type == MSGPACK_OBJECT_BIN) {
        s_string (buf, key->via.bin.ptr, key->via.bin.size);
        return;
    }
    //  JSON keys are strings: render the key as JSON, then quote that.
    s_buf_t inner = { NULL, 0, 0 };
    s_value (&inner, key);
    s_string (buf, inner.data, inner.size);
    free (inner.data);
}

static void
s_value (s_buf_t *buf, const msgpack_object *obj)
{
    char text [48];
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            s_puts (buf, "null");
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            s_puts (buf, obj->via.boolean ? "true" : "false");
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf (text, sizeof text, "%llu",
                      (unsigned long long) obj->via.u64);
            s_puts (buf, text);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (text, sizeof text, "%lld", (long long) obj->via.i64);
            s_puts (buf, text);
            break;
        case MSGPACK_OBJECT_FLOAT32:
            s_float (buf, obj->via.f64, true);
            break;
        case MSGPACK_OBJECT_FLOAT64:
            s_float (buf, obj->via.f64, false);
            break;
        case MSGPACK_OBJECT_STR:
            s_string (buf, obj->via.str.ptr, obj->via.str.size);
            break;
        case MSGPACK_OBJECT_BIN:
            s_string (buf, obj->via.bin.ptr, obj->via.bin.size);
            break;
        case MSGPACK_OBJECT_EXT: {
            snprintf (text, sizeof text, "{\"ext\":%d,\"hex\":\"",
                      (int) obj->via.ext.type);
            s_puts (buf, text);
            static const char digits [] = "0123456789abcdef";
            for (uint32_t i = 0; i < obj->via.ext.size; i++) {
                unsigned char c = (unsigned char) obj->via.ext.ptr [i];
                char pair [2] = { digits [c >> 4], digits [c & 15] };
                s_put (buf, pair, 2);
            }
            s_puts (buf, "\"}");
            break;
        }
        case MSGPACK_OBJECT_ARRAY:
            s_put (buf, "[", 1);
            for (uint32_t i = 0; i < obj->via.array.size; i++) {
                if (i)
                    s_put (buf, ",", 1);
                s_value (buf, &obj->via.array.ptr [i]);
            }
            s_put (buf, "]", 1);
            break;
        case MSGPACK_OBJECT_MAP:
            s_put (buf, "{", 1);
            for (uint32_t i = 0; i < obj->via.map.size; i++) {
                if (i)
                    s_put (buf, ",", 1);
                s_key (buf, &obj->via.map.ptr [i].key);
                s_put (buf, ":", 1);
                s_value (buf, &obj->via.map.ptr [i].val);
            }
            s_put (buf, "}", 1);
            break;
        default:
            s_puts (buf, "null");
            break;
    }
}

char *
pm_json_from_msgpack (const void *data, size_t size)
{
    //  The frame checks bound nesting (so the recursion) and allocation.
    msgpack_unpacked unpacked;
    char why [200];
    if (pm_frame_unpack (data, size, &unpacked, why, sizeof why)) {
        msgpack_unpacked_destroy (&unpacked);
        return NULL;
    }
    s_buf_t buf = { NULL, 0, 0 };
    s_value (&buf, &unpacked.data);
    msgpack_unpacked_destroy (&unpacked);
    return buf.data;
}
