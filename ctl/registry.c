/*  registry.c - pmctl's per-service state, found by name (registry.h)

    A linear search, once per event or line: an agent has a few services
    (at most PM_NAMES_MAX), so a hash table would cost more code than it
    saves.  The array holds pointers, not items, so growing it never
    moves an item a caller still points to.
*/
#include "registry.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct pm_registry_t {
    size_t item_size;             //  of the caller's struct
    pm_registry_clear_fn *clear;  //  or NULL
    void **items;                 //  owned, each with its name
    size_t count;
    size_t cap;
};

//  The name every item begins with.
typedef struct {
    const char *name;             //  owned by the registry
} s_head_t;

static void *
s_alloc (void *memory, size_t size)
{
    memory = realloc (memory, size);
    if (!memory)
        abort ();
    return memory;
}

pm_registry_t *
pm_registry_new (size_t item_size, pm_registry_clear_fn *clear)
{
    assert (item_size >= sizeof (s_head_t));
    pm_registry_t *self = s_alloc (NULL, sizeof *self);
    memset (self, 0, sizeof *self);
    self->item_size = item_size;
    self->clear = clear;
    return self;
}

void
pm_registry_destroy (pm_registry_t **self_p)
{
    pm_registry_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        s_head_t *head = self->items [i];
        if (self->clear)
            self->clear (head);
        free ((char *) head->name);
        free (head);
    }
    free (self->items);
    free (self);
    *self_p = NULL;
}

void *
pm_registry_find (const pm_registry_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++) {
        s_head_t *head = self->items [i];
        if (strcmp (head->name, name) == 0)
            return head;
    }
    return NULL;
}

void *
pm_registry_get (pm_registry_t *self, const char *name, bool *created)
{
    s_head_t *head = pm_registry_find (self, name);
    if (created)
        *created = !head;
    if (head)
        return head;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 8;
        self->items = s_alloc (self->items, self->cap * sizeof *self->items);
    }
    head = s_alloc (NULL, self->item_size);
    memset (head, 0, self->item_size);
    size_t size = strlen (name) + 1;
    head->name = memcpy (s_alloc (NULL, size), name, size);
    self->items [self->count++] = head;
    return head;
}

size_t
pm_registry_size (const pm_registry_t *self)
{
    return self->count;
}

void *
pm_registry_at (const pm_registry_t *self, size_t index)
{
    assert (index < self->count);
    return self->items [index];
}
