/*  prefixes.c - a capped set of topic prefixes (prefixes.h)

    A zhashx whose keys are (size, bytes), with our own hasher, comparator,
    duplicator and destructor, so a NUL is a byte like any other.  Matching
    a topic looks up the topic's first n bytes for each length n some held
    prefix has (a count per length says which), so a line costs a few
    lookups however many prefixes are held, not a scan of the set.
*/
#include "prefixes.h"
#include "pm_proto.h"

#include <assert.h>
#include <czmq.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A key: the lookup keys point into a topic; the held copies point just
//  past their own header.
typedef struct {
    size_t size;
    const unsigned char *data;
} s_key_t;

struct pm_prefixes_t {
    zhashx_t *held;           /* s_key_t copies, owned, mapping to s_held */
    size_t max;               /* prefixes held at most */
    size_t by_length [PM_TOPIC_MAX + 1];  /* prefixes held, per length */
    bool overflowed;          /* a prefix was refused: everything matches */
};

//  The item of every key: zhashx_lookup returns NULL for "absent".
static char s_held;

static size_t
s_key_hash (const void *key)
{
    //  FNV-1a.  The cap bounds what colliding prefixes can cost.
    const s_key_t *self = (const s_key_t *) key;
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < self->size; i++) {
        hash ^= self->data [i];
        hash *= 1099511628211ULL;
    }
    return (size_t) hash;
}

static int
s_key_compare (const void *key1, const void *key2)
{
    const s_key_t *a = (const s_key_t *) key1;
    const s_key_t *b = (const s_key_t *) key2;
    if (a->size != b->size)
        return a->size < b->size ? -1 : 1;
    return a->size ? memcmp (a->data, b->data, a->size) : 0;
}

static void *
s_key_copy (const void *key)
{
    const s_key_t *self = (const s_key_t *) key;
    s_key_t *copy = malloc (sizeof *copy + self->size);
    assert (copy);
    unsigned char *bytes = (unsigned char *) (copy + 1);
    if (self->size)
        memcpy (bytes, self->data, self->size);
    copy->size = self->size;
    copy->data = bytes;
    return copy;
}

static void
s_key_free (void **key_p)
{
    free (*key_p);
    *key_p = NULL;
}

pm_prefixes_t *
pm_prefixes_new (size_t max)
{
    pm_prefixes_t *self = calloc (1, sizeof *self);
    assert (self);
    self->held = zhashx_new ();
    assert (self->held);
    zhashx_set_key_hasher (self->held, s_key_hash);
    zhashx_set_key_comparator (self->held, s_key_compare);
    zhashx_set_key_duplicator (self->held, s_key_copy);
    zhashx_set_key_destructor (self->held, s_key_free);
    self->max = max;
    return self;
}

void
pm_prefixes_destroy (pm_prefixes_t **self_p)
{
    pm_prefixes_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->held);
    free (self);
    *self_p = NULL;
}

int
pm_prefixes_add (pm_prefixes_t *self, const void *data, size_t size)
{
    if (size > PM_TOPIC_MAX)
        return 0;
    s_key_t key = { size, (const unsigned char *) data };
    if (zhashx_lookup (self->held, &key))
        return 0;
    if (zhashx_size (self->held) >= self->max) {
        self->overflowed = true;
        return -1;
    }
    //  Absent, as just looked up: the insert cannot fail.
    zhashx_insert (self->held, &key, &s_held);
    self->by_length [size]++;
    return 1;
}

int
pm_prefixes_remove (pm_prefixes_t *self, const void *data, size_t size)
{
    if (size > PM_TOPIC_MAX)
        return 0;
    s_key_t key = { size, (const unsigned char *) data };
    if (!zhashx_lookup (self->held, &key))
        return 0;
    zhashx_delete (self->held, &key);
    self->by_length [size]--;
    return 1;
}

bool
pm_prefixes_match (pm_prefixes_t *self, const void *topic, size_t size)
{
    if (self->overflowed)
        return true;
    s_key_t key = { 0, (const unsigned char *) topic };
    for (; key.size <= size && key.size <= PM_TOPIC_MAX; key.size++)
        if (self->by_length [key.size] && zhashx_lookup (self->held, &key))
            return true;
    return false;
}

size_t
pm_prefixes_count (pm_prefixes_t *self)
{
    return zhashx_size (self->held);
}

bool
pm_prefixes_overflowed (const pm_prefixes_t *self)
{
    return self->overflowed;
}
