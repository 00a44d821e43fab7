/*  test_registry.c - pmctl's per-service registry (ctl/registry.c):
    find and get, the order of first sight, items that stay where they
    are while the registry grows, zeroed items, and clear at the end */
#include "registry.h"

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    uint64_t cursor;
    char *held;                   //  freed by s_clear
} s_item_t;

static int s_cleared;

static void
s_clear (void *item)
{
    s_item_t *self = (s_item_t *) item;
    free (self->held);
    s_cleared++;
}

static void
test_find_and_get (void)
{
    pm_registry_t *registry = pm_registry_new (sizeof (s_item_t), NULL);
    CHECK (pm_registry_size (registry) == 0);
    CHECK (pm_registry_find (registry, "web") == NULL);
    bool created = false;
    s_item_t *web = pm_registry_get (registry, "web", &created);
    CHECK (created);
    CHECK (web && strcmp (web->name, "web") == 0 && web->cursor == 0);
    web->cursor = 7;
    s_item_t *again = pm_registry_get (registry, "web", &created);
    CHECK (!created && again == web && again->cursor == 7);
    CHECK (pm_registry_find (registry, "web") == web);
    CHECK (pm_registry_find (registry, "we") == NULL);
    CHECK (pm_registry_get (registry, "db", NULL) != web);
    CHECK (pm_registry_size (registry) == 2);
    CHECK (pm_registry_at (registry, 0) == web);
    pm_registry_destroy (&registry);
    CHECK (registry == NULL);
    pm_registry_destroy (&registry);
}

//  Items made before the registry grew are where they were; each new one
//  is zeroed; the order is the order of first sight.
static void
test_growth (void)
{
    pm_registry_t *registry = pm_registry_new (sizeof (s_item_t), s_clear);
    s_item_t *first = pm_registry_get (registry, "s0", NULL);
    first->cursor = 42;
    for (int i = 1; i < 100; i++) {
        char name [16];
        snprintf (name, sizeof name, "s%d", i);
        s_item_t *item = pm_registry_get (registry, name, NULL);
        CHECK (item->cursor == 0 && item->held == NULL);
        item->cursor = (uint64_t) i;
        item->held = strdup (name);
    }
    CHECK (pm_registry_size (registry) == 100);
    CHECK (pm_registry_find (registry, "s0") == first && first->cursor == 42);
    for (size_t i = 1; i < 100; i++) {
        s_item_t *item = pm_registry_at (registry, i);
        CHECK (item->cursor == i && strcmp (item->held, item->name) == 0);
    }
    s_cleared = 0;
    pm_registry_destroy (&registry);
    CHECK (s_cleared == 100);
}

int
main (void)
{
    test_find_and_get ();
    test_growth ();
    return check_report ("test_registry");
}
