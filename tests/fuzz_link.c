/*  fuzz_link.c - libFuzzer target for the link words (pm_link_parse)

    The input is a sequence of frames, each a 2-byte big-endian length
    then that many bytes (a last frame shorter than its length takes what
    is left), given to pm_link_parse as one message.  What the parser
    accepts must hold its documented limits, whatever the input; what it
    refuses must leave nothing owned.  Built and run like fuzz_decode.c
    (tests/CMakeLists.txt), seeds in tests/fuzz_corpus_link.
*/
#include "pm_link.h"
#include "pm_rundir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_require (int cond, const char *what)
{
    if (!cond) {
        fprintf (stderr, "fuzz_link: %s\n", what);
        abort ();
    }
}

//  True if frame lies inside [data, data + size).
static int
s_inside (const pm_link_frame_t *frame, const uint8_t *data, size_t size)
{
    const uint8_t *at = (const uint8_t *) frame->data;
    return frame->size == 0
        || (at >= data && at + frame->size <= data + size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    enum { MAX_FRAMES = 5000 };
    static pm_link_frame_t frames [MAX_FRAMES];
    size_t count = 0, at = 0;
    while (at + 2 <= size && count < MAX_FRAMES) {
        size_t length = ((size_t) data [at] << 8) | data [at + 1];
        at += 2;
        if (length > size - at)
            length = size - at;
        frames [count].data = data + at;
        frames [count].size = length;
        count++;
        at += length;
    }
    pm_link_msg_t msg;
    char why [320];
    if (pm_link_parse (frames, count, &msg, why, sizeof why) == 0) {
        s_require (msg.word != PM_LINK_W_NONE, "accepted without a word");
        if (msg.word == PM_LINK_W_REGISTER) {
            size_t len = strlen (msg.instance);
            s_require (len >= 1 && len <= PM_INSTANCE_MAX, "instance length");
            s_require (msg.hello && msg.hello->agent
                       && pm_agent_name_valid (msg.hello->agent),
                       "registration without a valid agent");
            s_require (msg.names_count <= PM_NAMES_MAX, "too many names");
            for (size_t i = 0; i < msg.names_count; i++) {
                size_t n = strlen (msg.names [i]);
                s_require (n >= 1 && n <= PM_NAME_MAX, "name length");
            }
        }
        else
            s_require (!msg.hello && !msg.names, "owned fields set");
        s_require (s_inside (&msg.topic, data, size)
                   && s_inside (&msg.body, data, size), "frame outside");
        for (size_t i = 0; i < msg.prefixes_count; i++)
            s_require (msg.prefixes [i].size <= PM_TOPIC_MAX
                       && s_inside (&msg.prefixes [i], data, size),
                       "prefix outside or too long");
        if (msg.word == PM_LINK_W_PUBLISH)
            s_require (msg.topic.size >= 1 && msg.topic.size <= PM_TOPIC_MAX,
                       "topic length");
        if (msg.word == PM_LINK_W_REGISTERED)
            s_require (msg.heartbeat_ms >= 1
                       && msg.heartbeat_ms <= PM_LINK_HEARTBEAT_MAX_MS,
                       "heartbeat out of range");
    }
    else {
        s_require (msg.word == PM_LINK_W_NONE && !msg.hello && !msg.names,
                   "a refusal left something");
        s_require (memchr (why, 0, sizeof why) && why [0], "refused without "
                   "a reason");
    }
    pm_link_clear (&msg);
    return 0;
}
