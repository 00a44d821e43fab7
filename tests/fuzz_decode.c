/*  fuzz_decode.c - libFuzzer target for libpmproto's decoders

    Feeds one input to pm_request_decode, pm_reply_decode,
    pm_event_decode and pm_json_from_msgpack, and frees everything.  What
    a decoder accepts must also survive its encoder and decode again: a
    message the agent took in must be one it can send back out.

    Built with clang -fsanitize=fuzzer,address,undefined when clang is
    there, else linked with fuzz_driver.c, which replays the seed corpus
    (tests/fuzz_corpus) through the same function.
*/
#include "pm_proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  A broken invariant must crash, so the fuzzer reports it.
static void
s_require (int cond, const char *what, const char *err)
{
    if (!cond) {
        fprintf (stderr, "fuzz_decode: %s (%s)\n", what, err);
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [256];
    char *out;
    size_t out_size;

    uint64_t id = 0;
    pm_request_t *req = NULL;
    if (pm_request_decode (data, size, &req, &id, err, sizeof err) == PM_OK) {
        s_require (req != NULL && req->id == id, "request without id", "");
        s_require (pm_request_encode (req, &out, &out_size) == 0,
                   "accepted request does not encode", "");
        pm_request_t *again = NULL;
        s_require (pm_request_decode (out, out_size, &again, NULL, err,
                                      sizeof err) == PM_OK,
                   "re-encoded request does not decode", err);
        s_require (again->cmd == req->cmd && again->id == req->id
                   && again->names_count == req->names_count,
                   "request changed on the way round", "");
        pm_request_destroy (&again);
        free (out);
    }
    else
        s_require (req == NULL, "failed request decode left a request", err);
    pm_request_destroy (&req);

    pm_reply_t *reply = NULL;
    if (pm_reply_decode (data, size, &reply, err, sizeof err) == PM_OK) {
        s_require (pm_reply_encode (reply, &out, &out_size) == 0,
                   "accepted reply does not encode", "");
        pm_reply_t *again = NULL;
        s_require (pm_reply_decode (out, out_size, &again, err, sizeof err)
                   == PM_OK, "re-encoded reply does not decode", err);
        s_require (again->ok == reply->ok && again->err == reply->err
                   && again->services_count == reply->services_count
                   && again->results_count == reply->results_count,
                   "reply changed on the way round", "");
        pm_reply_destroy (&again);
        free (out);
    }
    else
        s_require (reply == NULL, "failed reply decode left a reply", err);
    pm_reply_destroy (&reply);

    pm_event_t *event = NULL;
    if (pm_event_decode (data, size, &event, err, sizeof err) == PM_OK) {
        s_require (pm_event_encode (event, &out, &out_size) == 0,
                   "accepted event does not encode", "");
        pm_event_t *again = NULL;
        s_require (pm_event_decode (out, out_size, &again, err, sizeof err)
                   == PM_OK, "re-encoded event does not decode", err);
        bool same = again->kind == event->kind && again->seq == event->seq
                 && again->lines_count == event->lines_count;
        for (size_t i = 0; same && i < event->lines_count; i++)
            same = again->lines [i].line_size == event->lines [i].line_size
                && again->lines [i].partial == event->lines [i].partial
                && again->lines [i].seq == event->lines [i].seq;
        s_require (same, "event changed on the way round", "");
        pm_event_destroy (&again);
        free (out);
    }
    else
        s_require (event == NULL, "failed event decode left an event", err);
    pm_event_destroy (&event);

    free (pm_json_from_msgpack (data, size));
    return 0;
}
