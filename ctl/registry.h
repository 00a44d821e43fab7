/*  registry.h - pmctl's per-service state, found by name

    Owns: one item per service name, of a struct the caller defines, in
    the order the names were first seen.  Each item is allocated on its
    own and zeroed when made, so a pointer to it stays valid until the
    registry is destroyed, whatever is added after.  The item's first
    member is its name, which the registry copies, sets and frees.

    Leaves to others: what an item holds and means (events.c: the seq of
    the state last shown; logs.c: the seq of the line last printed, and
    lines waiting for a merge), and which names deserve an item.
    Running out of memory aborts, as elsewhere in pmctl.
*/
#ifndef PM_REGISTRY_H
#define PM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pm_registry_t pm_registry_t;

/*  Frees what item holds (not the item, nor its name). */
typedef void (pm_registry_clear_fn) (void *item);

/*  A registry of items of item_size bytes, each a struct whose first
    member is `const char *name`.  clear, if not NULL, is called on every
    item when the registry is destroyed. */
pm_registry_t *pm_registry_new (size_t item_size, pm_registry_clear_fn *clear);

/*  Clears and frees every item; NULL does nothing. */
void pm_registry_destroy (pm_registry_t **self_p);

/*  The item called name, or NULL; borrowed. */
void *pm_registry_find (const pm_registry_t *self, const char *name);

/*  The item called name, made (zeroed but for its name) if new; *created
    (if created is not NULL) says which.  Borrowed. */
void *pm_registry_get (pm_registry_t *self, const char *name, bool *created);

/*  How many items, and the index-th of them in the order they were made
    (index below the count); borrowed. */
size_t pm_registry_size (const pm_registry_t *self);
void *pm_registry_at (const pm_registry_t *self, size_t index);

#endif
