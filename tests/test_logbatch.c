/*  test_logbatch.c - log lines batched into messages: one message per run
    of consecutive lines of one stream, cut at the byte and line limits and
    when the owner sends; nothing kept for a topic nobody subscribed to.
    Through a real XPUB (pm_publish_t) and a SUB on inproc. */
#include "logbatch.h"
#include "pm_proto.h"

#include "check.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

static zsock_t *s_sub;

//  The next message on the SUB within a second (NULL if none), decoded.
static pm_event_t *
s_next (char *topic, size_t size)
{
    zpoller_t *poller = zpoller_new (s_sub, NULL);
    void *ready = zpoller_wait (poller, 1000);
    zpoller_destroy (&poller);
    if (!ready)
        return NULL;
    zmsg_t *msg = zmsg_recv (s_sub);
    if (!msg || zmsg_size (msg) != 2) {
        fprintf (stderr, "test_logbatch: a message of other than two "
                 "frames\n");
        exit (1);
    }
    char *head = zmsg_popstr (msg);
    snprintf (topic, size, "%s", head);
    free (head);
    zframe_t *body = zmsg_pop (msg);
    pm_event_t *event = NULL;
    char err [256];
    CHECK (pm_event_decode (zframe_data (body), zframe_size (body), &event,
                            err, sizeof err) == PM_OK);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return event;
}

//  Nothing more arrives within 100 ms.
static bool
s_quiet (void)
{
    zpoller_t *poller = zpoller_new (s_sub, NULL);
    void *ready = zpoller_wait (poller, 100);
    zpoller_destroy (&poller);
    return ready == NULL;
}

//  Expects a message of count lines from seq on stream.
static pm_event_t *
s_expect (uint64_t seq, size_t count, pm_stream_t stream)
{
    char topic [256];
    pm_event_t *event = s_next (topic, sizeof topic);
    if (!event) {
        fprintf (stderr, "test_logbatch: no message from seq %llu\n",
                 (unsigned long long) seq);
        exit (1);
    }
    CHECK (event->kind == PM_EVENT_LOG && event->seq == seq);
    CHECK (event->lines_count == count && event->stream == stream);
    CHECK (strcmp (topic, stream == PM_STREAM_OUT ? "log/t/web/out/"
                                                  : "log/t/web/err/") == 0);
    return event;
}

int
main (void)
{
    char err [256];
    pm_publish_t *pub = pm_publish_new ("inproc://logbatch", "t", "i1",
                                        100000, err, sizeof err);
    CHECK (pub);
    s_sub = zsock_new (ZMQ_SUB);
    CHECK (zsock_connect (s_sub, "inproc://logbatch") == 0);
    pm_logbatch_t *batch = pm_logbatch_new (pub, "web");

    //  Nobody listens yet: lines are counted past, nothing is sent.
    pm_logbatch_add (batch, 1, 1.0, PM_STREAM_OUT, "a", 1, false);
    pm_logbatch_send (batch);
    zsock_set_subscribe (s_sub, "log/t/web/");
    //  The XPUB learns of the subscription when it reads it.
    for (int i = 0; i < 100; i++) {
        pm_publish_refresh (pub);
        if (pm_publish_log_heard (pub, "web", PM_STREAM_OUT))
            break;
        zclock_sleep (10);
    }
    CHECK (pm_publish_log_heard (pub, "web", PM_STREAM_ERR));
    CHECK (s_quiet ());

    //  Consecutive lines of one stream and time: one message, in order,
    //  with the pieces of a cut line marked.
    pm_logbatch_add (batch, 2, 2.0, PM_STREAM_OUT, "one", 3, false);
    pm_logbatch_add (batch, 3, 2.0, PM_STREAM_OUT, "tw", 2, true);
    pm_logbatch_add (batch, 4, 2.0, PM_STREAM_OUT, "o", 1, false);
    pm_logbatch_add (batch, 5, 2.0, PM_STREAM_OUT, "", 0, false);
    CHECK (s_quiet ());         //  held until sent
    pm_logbatch_send (batch);
    pm_event_t *event = s_expect (2, 4, PM_STREAM_OUT);
    CHECK (event->ts == 2.0);
    CHECK (strcmp (event->lines [0].line, "one") == 0);
    CHECK (strcmp (event->lines [1].line, "tw") == 0);
    CHECK (!event->lines [0].partial && event->lines [1].partial);
    CHECK (event->lines [3].line_size == 0 && event->lines [3].seq == 5);
    pm_event_destroy (&event);
    pm_logbatch_send (batch);   //  nothing held: nothing sent
    CHECK (s_quiet ());

    //  Another stream, another time, a seq that does not follow: each
    //  starts a new message.
    pm_logbatch_add (batch, 6, 3.0, PM_STREAM_OUT, "o6", 2, false);
    pm_logbatch_add (batch, 7, 3.0, PM_STREAM_ERR, "e7", 2, false);
    pm_logbatch_add (batch, 8, 4.0, PM_STREAM_ERR, "e8", 2, false);
    pm_logbatch_add (batch, 10, 4.0, PM_STREAM_ERR, "e10", 3, false);
    pm_logbatch_send (batch);
    uint64_t seqs [] = { 6, 7, 8, 10 };
    for (int i = 0; i < 4; i++) {
        event = s_expect (seqs [i], 1, i == 0 ? PM_STREAM_OUT
                                              : PM_STREAM_ERR);
        pm_event_destroy (&event);
    }

    //  The limits: 1024 lines, 8 KiB of lines; a longer line goes alone.
    uint64_t seq = 11;
    for (int i = 0; i < PM_LOGBATCH_LINES + 1; i++, seq++)
        pm_logbatch_add (batch, seq, 5.0, PM_STREAM_OUT, "x", 1, false);
    pm_logbatch_send (batch);
    event = s_expect (11, PM_LOGBATCH_LINES, PM_STREAM_OUT);
    pm_event_destroy (&event);
    event = s_expect (11 + PM_LOGBATCH_LINES, 1, PM_STREAM_OUT);
    pm_event_destroy (&event);
    char line [PM_LOGBATCH_BYTES / 4];
    memset (line, 'y', sizeof line);
    uint64_t from = seq;
    for (int i = 0; i < 5; i++, seq++)
        pm_logbatch_add (batch, seq, 6.0, PM_STREAM_OUT, line, sizeof line,
                         false);
    char big [PM_LOGBATCH_BYTES * 2];
    memset (big, 'z', sizeof big);
    pm_logbatch_add (batch, seq++, 6.0, PM_STREAM_OUT, big, sizeof big,
                     false);
    pm_logbatch_send (batch);
    event = s_expect (from, 4, PM_STREAM_OUT);
    pm_event_destroy (&event);
    event = s_expect (from + 4, 1, PM_STREAM_OUT);
    pm_event_destroy (&event);
    event = s_expect (from + 5, 1, PM_STREAM_OUT);
    CHECK (event->lines [0].line_size == sizeof big);
    CHECK (memcmp (event->lines [0].line, big, sizeof big) == 0);
    pm_event_destroy (&event);

    //  Destroying sends what is held.
    pm_logbatch_add (batch, seq, 7.0, PM_STREAM_ERR, "last", 4, false);
    pm_logbatch_destroy (&batch);
    CHECK (batch == NULL);
    event = s_expect (seq, 1, PM_STREAM_ERR);
    pm_event_destroy (&event);
    pm_logbatch_destroy (&batch);

    zsock_destroy (&s_sub);
    pm_publish_destroy (&pub);
    return check_report ("test_logbatch");
}
