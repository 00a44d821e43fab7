/*  test_logring.c - the ring of recent lines: bounds, lookup, eviction */
#include "logring.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void
s_push_text (pm_logring_t *ring, uint64_t seq, const char *text)
{
    pm_logring_push (ring, seq, (double) seq, (int) (seq % 2), false, text,
                     strlen (text));
}

static void
test_empty (void)
{
    pm_logring_t *ring = pm_logring_new (4, 1024);
    CHECK (pm_logring_first (ring) == 0);
    CHECK (pm_logring_last (ring) == 0);
    CHECK (pm_logring_count (ring) == 0);
    CHECK (pm_logring_get (ring, 1) == NULL);
    pm_logring_destroy (&ring);
    CHECK (ring == NULL);
    pm_logring_destroy (&ring);
}

static void
test_line_bound (void)
{
    pm_logring_t *ring = pm_logring_new (3, 1024);
    char text [32];
    for (uint64_t seq = 1; seq <= 10; seq++) {
        snprintf (text, sizeof text, "line %llu", (unsigned long long) seq);
        s_push_text (ring, seq, text);
        CHECK (pm_logring_count (ring) == (seq < 3 ? seq : 3));
        CHECK (pm_logring_last (ring) == seq);
    }
    CHECK (pm_logring_first (ring) == 8);
    CHECK (pm_logring_get (ring, 7) == NULL);
    CHECK (pm_logring_get (ring, 11) == NULL);
    for (uint64_t seq = 8; seq <= 10; seq++) {
        const pm_logline_t *line = pm_logring_get (ring, seq);
        CHECK (line && line->seq == seq);
        snprintf (text, sizeof text, "line %llu", (unsigned long long) seq);
        CHECK (line && line->size == strlen (text)
               && memcmp (line->data, text, line->size) == 0);
        CHECK (line && line->ts == (double) seq);
        CHECK (line && line->stream == (int) (seq % 2));
    }
    CHECK (pm_logring_bytes (ring) == strlen ("line 8line 9line 10"));
    pm_logring_destroy (&ring);
}

static void
test_byte_bound (void)
{
    //  16 bytes of data at most: lines of 6 bytes -> two fit.
    pm_logring_t *ring = pm_logring_new (100, 16);
    s_push_text (ring, 1, "aaaaaa");
    s_push_text (ring, 2, "bbbbbb");
    CHECK (pm_logring_count (ring) == 2);
    s_push_text (ring, 3, "cccccc");
    CHECK (pm_logring_count (ring) == 2);
    CHECK (pm_logring_first (ring) == 2);
    CHECK (pm_logring_bytes (ring) == 12);
    //  A line bigger than the whole budget empties the ring: what was held
    //  would not be contiguous with what follows.
    char big [32];
    memset (big, 'x', sizeof big);
    pm_logring_push (ring, 4, 4.0, 0, true, big, sizeof big);
    CHECK (pm_logring_count (ring) == 0);
    s_push_text (ring, 5, "dd");
    CHECK (pm_logring_first (ring) == 5);
    CHECK (pm_logring_get (ring, 5)->size == 2);
    pm_logring_destroy (&ring);
}

static void
test_disabled_and_binary (void)
{
    pm_logring_t *ring = pm_logring_new (0, 1024);
    s_push_text (ring, 1, "x");
    CHECK (pm_logring_count (ring) == 0);
    pm_logring_destroy (&ring);

    ring = pm_logring_new (2, 1024);
    const char binary [] = { 'a', 0, (char) 0xff, '\n' };
    pm_logring_push (ring, 41, 1.5, 1, true, binary, sizeof binary);
    pm_logring_push (ring, 42, 1.6, 0, false, "", 0);
    const pm_logline_t *line = pm_logring_get (ring, 41);
    CHECK (line && line->size == 4 && memcmp (line->data, binary, 4) == 0);
    CHECK (line && line->partial && line->stream == 1);
    line = pm_logring_get (ring, 42);
    CHECK (line && line->size == 0 && !line->partial);
    pm_logring_destroy (&ring);
}

int
main (void)
{
    test_empty ();
    test_line_bound ();
    test_byte_bound ();
    test_disabled_and_binary ();
    return check_report ("test_logring");
}
