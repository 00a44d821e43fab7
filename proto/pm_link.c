/*  pm_link.c - checking the words of the agent-broker link (pm_link.h)

    Both ends parse what they receive here, so a malformed message is
    refused by the same rules on either side, and the fuzz target
    (tests/fuzz_link.c) covers both.  Nothing here knows about sockets.
*/
#include "pm_link.h"
#include "pm_rundir.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *text;
    pm_link_word_t word;
    size_t min, max;              /* frames after the word */
} s_words [] = {
    { PM_LINK_REGISTER, PM_LINK_W_REGISTER, 2, 2 + PM_NAMES_MAX },
    { PM_LINK_HEARTBEAT, PM_LINK_W_HEARTBEAT, 0, 0 },
    { PM_LINK_REPLY, PM_LINK_W_REPLY, 2, 2 },
    { PM_LINK_PUBLISH, PM_LINK_W_PUBLISH, 2, 2 },
    { PM_LINK_REGISTERED, PM_LINK_W_REGISTERED, 1, 1 + 65536 },
    { PM_LINK_REFUSED, PM_LINK_W_REFUSED, 0, 1 },
    { PM_LINK_UNKNOWN, PM_LINK_W_UNKNOWN, 0, 0 },
    { PM_LINK_REQUEST, PM_LINK_W_REQUEST, 2, 2 },
    { PM_LINK_SUBSCRIBE, PM_LINK_W_SUBSCRIBE, 1, 1 },
    { PM_LINK_UNSUBSCRIBE, PM_LINK_W_UNSUBSCRIBE, 1, 1 }
};

static int
s_fail (pm_link_msg_t *msg, char *why, size_t whylen, const char *fmt, ...)
{
    pm_link_clear (msg);
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, whylen, fmt, args);
    va_end (args);
    return -1;
}

//  True if frame is 1..max bytes of text: no NUL, no control bytes.
static bool
s_text (const pm_link_frame_t *frame, size_t max)
{
    if (frame->size == 0 || frame->size > max)
        return false;
    const unsigned char *bytes = (const unsigned char *) frame->data;
    for (size_t i = 0; i < frame->size; i++)
        if (bytes [i] < 0x20 || bytes [i] == 0x7f)
            return false;
    return true;
}

static bool
s_word_is (const pm_link_frame_t *frame, const char *text)
{
    size_t len = strlen (text);
    return frame->size == len && memcmp (frame->data, text, len) == 0;
}

static int
s_register (const pm_link_frame_t *frames, size_t count, pm_link_msg_t *msg,
            char *why, size_t whylen)
{
    if (!s_text (&frames [0], PM_INSTANCE_MAX))
        return s_fail (msg, why, whylen, "REGISTER: the instance is not 1 "
                       "to %d bytes of text", PM_INSTANCE_MAX);
    memcpy (msg->instance, frames [0].data, frames [0].size);
    msg->instance [frames [0].size] = 0;
    char detail [256] = "";
    if (pm_reply_decode (frames [1].data, frames [1].size, &msg->hello,
                         detail, sizeof detail) != PM_OK)
        return s_fail (msg, why, whylen, "REGISTER: the hello reply does not "
                       "decode: %s", detail);
    if (!msg->hello->agent || !pm_agent_name_valid (msg->hello->agent))
        return s_fail (msg, why, whylen, "REGISTER: the hello reply names no "
                       "valid agent");
    size_t names = count - 2;
    msg->names = calloc (names + 1, sizeof *msg->names);
    if (!msg->names)
        abort ();
    for (size_t i = 0; i < names; i++) {
        const pm_link_frame_t *name = &frames [2 + i];
        if (!s_text (name, PM_NAME_MAX))
            return s_fail (msg, why, whylen, "REGISTER: service name %zu is "
                           "not 1 to %d bytes of text", i + 1, PM_NAME_MAX);
        msg->names [i] = strndup ((const char *) name->data, name->size);
        if (!msg->names [i])
            abort ();
        msg->names_count = i + 1;
    }
    return 0;
}

int
pm_link_parse (const pm_link_frame_t *frames, size_t count,
               pm_link_msg_t *msg, char *why, size_t whylen)
{
    memset (msg, 0, sizeof *msg);
    if (count == 0)
        return s_fail (msg, why, whylen, "an empty message");
    size_t k = 0;
    size_t words = sizeof s_words / sizeof s_words [0];
    while (k < words && !s_word_is (&frames [0], s_words [k].text))
        k++;
    if (k == words)
        return s_fail (msg, why, whylen, "an unknown word ('%.*s')",
                       (int) (frames [0].size < 32 ? frames [0].size : 32),
                       (const char *) frames [0].data);
    const char *word = s_words [k].text;
    const pm_link_frame_t *args = frames + 1;
    size_t argc = count - 1;
    if (argc < s_words [k].min || argc > s_words [k].max)
        return s_fail (msg, why, whylen, "%s with %zu frame%s after the word "
                       "(expected %zu to %zu)", word, argc,
                       argc == 1 ? "" : "s", s_words [k].min,
                       s_words [k].max);
    switch (s_words [k].word) {
        case PM_LINK_W_REGISTER:
            if (s_register (args, argc, msg, why, whylen) == -1)
                return -1;
            break;
        case PM_LINK_W_REPLY:
        case PM_LINK_W_REQUEST:
            if (args [0].size != PM_LINK_TOKEN_SIZE)
                return s_fail (msg, why, whylen, "%s: a token of %zu bytes "
                               "(expected %d)", word, args [0].size,
                               PM_LINK_TOKEN_SIZE);
            memcpy (&msg->token, args [0].data, PM_LINK_TOKEN_SIZE);
            if (args [1].size > PM_FRAME_MAX)
                return s_fail (msg, why, whylen, "%s: a body of %zu bytes "
                               "(at most %d)", word, args [1].size,
                               PM_FRAME_MAX);
            msg->body = args [1];
            break;
        case PM_LINK_W_PUBLISH:
            if (args [0].size == 0 || args [0].size > PM_TOPIC_MAX
            ||  memchr (args [0].data, 0, args [0].size))
                return s_fail (msg, why, whylen, "PUBLISH: a topic of %zu "
                               "bytes (1 to %d, no NUL)", args [0].size,
                               PM_TOPIC_MAX);
            if (args [1].size > PM_FRAME_MAX)
                return s_fail (msg, why, whylen, "PUBLISH: a body of %zu "
                               "bytes (at most %d)", args [1].size,
                               PM_FRAME_MAX);
            msg->topic = args [0];
            msg->body = args [1];
            break;
        case PM_LINK_W_REGISTERED: {
            char digits [16];
            size_t size = args [0].size;
            char *end = NULL;
            unsigned long long ms = 0;
            if (size > 0 && size < sizeof digits) {
                memcpy (digits, args [0].data, size);
                digits [size] = 0;
                ms = strtoull (digits, &end, 10);
            }
            if (!end || *end || digits [0] < '0' || digits [0] > '9'
            ||  ms == 0 || ms > PM_LINK_HEARTBEAT_MAX_MS)
                return s_fail (msg, why, whylen, "REGISTERED: the heartbeat "
                               "is not 1 to %d ms in digits",
                               PM_LINK_HEARTBEAT_MAX_MS);
            msg->heartbeat_ms = ms;
            msg->prefixes = args + 1;
            msg->prefixes_count = argc - 1;
            break;
        }
        case PM_LINK_W_SUBSCRIBE:
        case PM_LINK_W_UNSUBSCRIBE:
            msg->prefixes = args;
            msg->prefixes_count = 1;
            break;
        case PM_LINK_W_REFUSED:
            if (argc == 1) {
                if (args [0].size > PM_TEXT_MAX)
                    return s_fail (msg, why, whylen, "REFUSED: a reason of "
                                   "%zu bytes (at most %d)", args [0].size,
                                   PM_TEXT_MAX);
                msg->body = args [0];
            }
            break;
        default:
            break;
    }
    for (size_t i = 0; i < msg->prefixes_count; i++)
        if (msg->prefixes [i].size > PM_TOPIC_MAX
        ||  memchr (msg->prefixes [i].data, 0, msg->prefixes [i].size))
            return s_fail (msg, why, whylen, "%s: prefix %zu of %zu bytes "
                           "(at most %d, no NUL)", word, i + 1,
                           msg->prefixes [i].size, PM_TOPIC_MAX);
    msg->word = s_words [k].word;
    return 0;
}

void
pm_link_clear (pm_link_msg_t *msg)
{
    pm_reply_destroy (&msg->hello);
    for (size_t i = 0; i < msg->names_count; i++)
        free (msg->names [i]);
    free (msg->names);
    memset (msg, 0, sizeof *msg);
}
