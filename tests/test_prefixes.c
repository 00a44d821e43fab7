/*  test_prefixes.c - the subscription prefix set: bytes with NULs, matching
    by prefix, the cap and what happens past it */
#include "prefixes.h"
#include "pm_proto.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

//  A string literal's bytes without its final NUL (inner NULs kept).
#define S_BYTES(literal) literal, sizeof literal - 1

static bool
s_match (pm_prefixes_t *set, const char *topic)
{
    return pm_prefixes_match (set, topic, strlen (topic));
}

static void
test_empty (void)
{
    pm_prefixes_t *set = pm_prefixes_new (PM_PREFIXES_MAX);
    CHECK (pm_prefixes_count (set) == 0);
    CHECK (!s_match (set, "log/t/web/out/"));
    CHECK (!s_match (set, ""));
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/")) == 0);
    CHECK (!pm_prefixes_overflowed (set));
    pm_prefixes_destroy (&set);
    CHECK (set == NULL);
    pm_prefixes_destroy (&set);
}

static void
test_match (void)
{
    pm_prefixes_t *set = pm_prefixes_new (PM_PREFIXES_MAX);
    CHECK (pm_prefixes_add (set, S_BYTES ("log/t/web/")) == 1);
    CHECK (pm_prefixes_add (set, S_BYTES ("log/t/web/")) == 0);
    CHECK (pm_prefixes_count (set) == 1);
    CHECK (s_match (set, "log/t/web/out/"));
    CHECK (s_match (set, "log/t/web/"));
    CHECK (!s_match (set, "log/t/web"));
    CHECK (!s_match (set, "log/t/webx/out/"));
    CHECK (!s_match (set, "state/t/web/"));
    //  Two lengths held: either one matches.
    CHECK (pm_prefixes_add (set, S_BYTES ("state/")) == 1);
    CHECK (s_match (set, "state/t/web/"));
    CHECK (s_match (set, "log/t/web/err/"));
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/t/web/")) == 1);
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/t/web/")) == 0);
    CHECK (!s_match (set, "log/t/web/out/"));
    CHECK (s_match (set, "state/t/db/"));
    //  The empty prefix is everything.
    CHECK (pm_prefixes_add (set, "", 0) == 1);
    CHECK (s_match (set, "agent/t/"));
    CHECK (s_match (set, ""));
    CHECK (pm_prefixes_remove (set, "", 0) == 1);
    CHECK (!s_match (set, "agent/t/"));
    CHECK (pm_prefixes_count (set) == 1);
    pm_prefixes_destroy (&set);
}

//  A NUL is a byte: "log/\0x" is neither "log/" nor "log/\0y", is removed
//  by its own unsubscription, and starts no topic (topics hold no NUL).
static void
test_nul_bytes (void)
{
    pm_prefixes_t *set = pm_prefixes_new (PM_PREFIXES_MAX);
    for (int cycle = 0; cycle < 3000; cycle++) {
        CHECK (pm_prefixes_add (set, S_BYTES ("log/\0x")) == 1);
        CHECK (pm_prefixes_count (set) == 1);
        CHECK (pm_prefixes_remove (set, S_BYTES ("log/\0x")) == 1);
        CHECK (pm_prefixes_count (set) == 0);
    }
    CHECK (pm_prefixes_add (set, S_BYTES ("log/\0x")) == 1);
    CHECK (pm_prefixes_add (set, S_BYTES ("log/\0y")) == 1);
    CHECK (pm_prefixes_add (set, S_BYTES ("log/\0x")) == 0);
    CHECK (pm_prefixes_count (set) == 2);
    CHECK (!s_match (set, "log/t/web/out/"));
    CHECK (!s_match (set, "log/"));
    CHECK (pm_prefixes_match (set, S_BYTES ("log/\0x and more")));
    CHECK (!pm_prefixes_match (set, S_BYTES ("log/\0z")));
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/")) == 0);
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/\0")) == 0);
    CHECK (pm_prefixes_count (set) == 2);
    CHECK (pm_prefixes_add (set, S_BYTES ("log/")) == 1);
    CHECK (s_match (set, "log/t/web/out/"));
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/\0x")) == 1);
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/\0y")) == 1);
    CHECK (pm_prefixes_count (set) == 1);
    CHECK (s_match (set, "log/t/web/out/"));
    pm_prefixes_destroy (&set);
}

//  Longer than any topic: starts none, so it is neither held nor refused.
static void
test_too_long (void)
{
    pm_prefixes_t *set = pm_prefixes_new (1);
    char longest [PM_TOPIC_MAX + 1];
    memset (longest, 'a', sizeof longest);
    CHECK (pm_prefixes_add (set, longest, PM_TOPIC_MAX + 1) == 0);
    CHECK (pm_prefixes_count (set) == 0);
    CHECK (pm_prefixes_remove (set, longest, PM_TOPIC_MAX + 1) == 0);
    CHECK (pm_prefixes_add (set, longest, PM_TOPIC_MAX) == 1);
    CHECK (pm_prefixes_match (set, longest, PM_TOPIC_MAX));
    CHECK (!pm_prefixes_match (set, longest, PM_TOPIC_MAX - 1));
    //  A topic longer than any prefix is matched on its first bytes.
    CHECK (pm_prefixes_match (set, longest, PM_TOPIC_MAX + 1));
    CHECK (pm_prefixes_add (set, longest, PM_TOPIC_MAX + 1) == 0);
    CHECK (!pm_prefixes_overflowed (set));
    pm_prefixes_destroy (&set);
}

//  Past the cap a new prefix is refused and everything matches, for good:
//  the refused subscriber is still there even once others leave.
static void
test_cap (void)
{
    pm_prefixes_t *set = pm_prefixes_new (PM_PREFIXES_MAX);
    char prefix [32];
    for (int i = 0; i < PM_PREFIXES_MAX; i++) {
        int len = snprintf (prefix, sizeof prefix, "junk/%d/", i);
        CHECK (pm_prefixes_add (set, prefix, (size_t) len) == 1);
    }
    CHECK (pm_prefixes_count (set) == PM_PREFIXES_MAX);
    CHECK (!pm_prefixes_overflowed (set));
    CHECK (!s_match (set, "log/t/web/out/"));
    CHECK (s_match (set, "junk/9999/"));
    //  Already held: not a new prefix, not refused.
    CHECK (pm_prefixes_add (set, S_BYTES ("junk/0/")) == 0);
    CHECK (!pm_prefixes_overflowed (set));
    CHECK (pm_prefixes_add (set, S_BYTES ("log/t/web/")) == -1);
    CHECK (pm_prefixes_count (set) == PM_PREFIXES_MAX);
    CHECK (pm_prefixes_overflowed (set));
    CHECK (s_match (set, "log/t/web/out/"));
    CHECK (s_match (set, "agent/t/"));
    CHECK (pm_prefixes_remove (set, S_BYTES ("junk/0/")) == 1);
    CHECK (pm_prefixes_remove (set, S_BYTES ("log/t/web/")) == 0);
    CHECK (pm_prefixes_count (set) == PM_PREFIXES_MAX - 1);
    CHECK (s_match (set, "log/t/web/out/"));
    CHECK (pm_prefixes_add (set, S_BYTES ("state/")) == 1);
    CHECK (pm_prefixes_add (set, S_BYTES ("agent/")) == -1);
    pm_prefixes_destroy (&set);
}

int
main (void)
{
    test_empty ();
    test_match ();
    test_nul_bytes ();
    test_too_long ();
    test_cap ();
    return check_report ("test_prefixes");
}
