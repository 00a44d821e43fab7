/*  pm_frame.h - private to libpmproto: the checks every decoder runs on
    raw bytes before msgpack-c sees them, and the helpers the message
    modules share

    Owns: the structural scan of a frame (one object, every declared
    length checked against the bytes actually left, nesting bounded), the
    unpack that follows it, UTF-8 validation, field decoders and packing
    helpers.  Used by pm_msg.c, pm_reply.c, pm_record.c and pm_json.c;
    not for the agent or the clients.

    Why a scan first: msgpack-c allocates an array's or map's element
    table from its declared count before it has read one element, so a
    five-byte frame declaring 2^32 elements would make it ask for tens of
    gigabytes.  After the scan, every container's count is bounded by the
    bytes that follow it, so unpacking costs memory in proportion to the
    frame.
*/
#ifndef PM_FRAME_H
#define PM_FRAME_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pm_proto.h"

/*  Containers nested deeper than this are refused.  The protocol needs 4
    (reply, services, record, depends_on). */
#define PM_FRAME_DEPTH_MAX 16

/*  Checks that data holds exactly one well-formed msgpack object, then
    unpacks it into *result, which the caller must always release with
    msgpack_unpacked_destroy (it is initialised here, even on failure).
    Returns 0, or -1 with a message in err. */
int pm_frame_unpack (const void *data, size_t size, msgpack_unpacked *result,
                     char *err, size_t errlen);


/*  True if all size bytes are valid UTF-8 (NUL is valid). */
bool pm_utf8_valid (const void *text, size_t size);

/* ------------------------------------------------------------------ */
/*  Memory: running out is not a reason to fail a message; these abort */
/* ------------------------------------------------------------------ */

/*  calloc of count elements (at least one, so never NULL). */
void *pm_alloc (size_t count, size_t size);
/*  strdup; NULL gives NULL. */
char *pm_strdup (const char *text);
/*  Makes room in array (count elements of elem bytes) for one more,
    growing capacity in powers of two; returns the (moved) array. */
void *pm_grow (void *array, size_t count, size_t elem);

/* ------------------------------------------------------------------ */
/*  Field decoding, shared by pm_msg.c, pm_reply.c and pm_record.c      */
/* ------------------------------------------------------------------ */

/*  Each helper checks one value, copies it out, and on failure writes
    "<path>: <what was expected>" into the decoder's buffer and returns
    -1; the decoder keeps the first failure's code. */
typedef struct {
    char *err;                /* message buffer, always NUL-terminated */
    size_t errlen;
    pm_err_t code;            /* PM_OK until something fails */
} pm_decoder_t;

/*  A decoder writing to err (errlen bytes), or to spare (one byte, the
    caller's) when the caller gave no buffer; the message starts empty. */
pm_decoder_t pm_decoder_start (char *err, size_t errlen, char *spare);

/*  Records a failure (the first one wins) and returns -1. */
int pm_decoder_fail (pm_decoder_t *dec, pm_err_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  True if key is the string name. */
bool pm_key_is (const msgpack_object *key, const char *name);
/*  A printable, bounded rendering of a string key for messages. */
void pm_key_text (const msgpack_object *key, char *buf, size_t size);

/*  A string of min..max bytes without NUL, copied into *out.  With
    nullable, nil gives *out = NULL. */
int pm_decode_string (pm_decoder_t *dec, const msgpack_object *obj,
                      const char *path, size_t min, size_t max,
                      bool nullable, char **out);
int pm_decode_uint (pm_decoder_t *dec, const msgpack_object *obj,
                    const char *path, uint64_t *out);
/*  An integer in min..max; "expected <what>" names the range. */
int pm_decode_int (pm_decoder_t *dec, const msgpack_object *obj,
                   const char *path, int64_t min, int64_t max,
                   const char *what, int64_t *out);
/*  A finite number (integer or float) >= min. */
int pm_decode_number (pm_decoder_t *dec, const msgpack_object *obj,
                      const char *path, double min, double *out);
int pm_decode_bool (pm_decoder_t *dec, const msgpack_object *obj,
                    const char *path, bool *out);
/*  A str or bin of any size (a log line), copied into *out (NUL-terminated,
    the size in *size). */
int pm_decode_bytes (pm_decoder_t *dec, const msgpack_object *obj,
                     const char *path, char **out, size_t *size);
/*  An array of 1..PM_TARGET_MAX-byte names (targets: service or
    service@agent), at most PM_NAMES_MAX. */
int pm_decode_names (pm_decoder_t *dec, const msgpack_object *obj,
                     const char *path, char ***names, size_t *count);
/*  Checks the frame size and unpacks it as a map; -1 on failure. */
int pm_decode_frame (pm_decoder_t *dec, const void *data, size_t size,
                     msgpack_unpacked *result);
/*  Checks "v" of a reply or event map: required, == 1. */
int pm_decode_version (pm_decoder_t *dec, const msgpack_object *map);

/* ------------------------------------------------------------------ */
/*  Encoding                                                           */
/* ------------------------------------------------------------------ */

/*  A packer writing to an sbuffer; running out of memory aborts. */
void pm_packer_init (msgpack_packer *pk, msgpack_sbuffer *sbuf);
/*  Packs text as a str; NULL packs "". */
void pm_pack_str (msgpack_packer *pk, const char *text);
/*  A log line: a str when its bytes are valid UTF-8 (so JSON tools see a
    string), a bin otherwise (so nothing the service wrote is lost). */
void pm_pack_line (msgpack_packer *pk, const char *line, size_t size);
/*  Packs text as a str; NULL packs nil. */
void pm_pack_nstr (msgpack_packer *pk, const char *text);
/*  Hands the buffer to the caller; -1 (and frees it) if the message is
    over PM_FRAME_MAX. */
int pm_pack_finish (msgpack_sbuffer *sbuf, char **data, size_t *size);

/*  In pm_record.c: one status record as a map, and back.  The unpack
    fills record (zeroed first); on failure what it holds must still be
    released with pm_record_clear. */
void pm_record_pack (msgpack_packer *pk, const pm_record_t *record);
int pm_record_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                      const char *path, pm_record_t *record);

/*  In pm_logs.c: the `logs` reply's blocks. */
void pm_logblocks_pack (msgpack_packer *pk, const pm_logblock_t *blocks,
                        size_t count);
int pm_logblocks_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                         pm_logblock_t **blocks, size_t *count);
void pm_logblocks_free (pm_logblock_t *blocks, size_t count);
/*  In pm_logs.c: the `reload` reply's lists. */
void pm_reload_pack (msgpack_packer *pk, const pm_reply_t *reply);
int pm_reload_unpack (pm_decoder_t *dec, const msgpack_object *obj,
                      pm_reply_t *reply);
void pm_reload_free (pm_reply_t *reply);

#endif
