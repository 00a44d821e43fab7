/*  prefixes.h - a capped set of topic prefixes, and whether one starts a
    topic

    Owns: the subscription prefixes the events socket reported, each kept
    with its length (a prefix is bytes: it may hold NULs), and the answer
    to "does any of them start this topic?".  Leaves to others: reading
    the socket (publish.c) and logging.

    Bounded: past max prefixes, a new one is refused, and from then on
    every topic matches.  The set no longer knows what a refused
    subscriber wants, and cannot learn when it leaves (an unsubscription
    of a prefix we never held looks the same as a stray one), so it stops
    filtering for good: nothing is lost, publishing costs what it costs
    without a filter.

    A prefix longer than PM_TOPIC_MAX starts no topic; it is not held, and
    neither counts nor refuses.
*/
#ifndef PM_PREFIXES_H
#define PM_PREFIXES_H

#include <stdbool.h>
#include <stddef.h>

/*  Distinct prefixes held before new ones are refused. */
#define PM_PREFIXES_MAX 10000

typedef struct pm_prefixes_t pm_prefixes_t;

/*  An empty set holding at most max prefixes. */
pm_prefixes_t *pm_prefixes_new (size_t max);
void pm_prefixes_destroy (pm_prefixes_t **self_p);

/*  Adds the size bytes at data.  Returns 1 if added, 0 if already held
    (or too long to start a topic), -1 if refused because the set is full
    (every topic matches from now on). */
int pm_prefixes_add (pm_prefixes_t *self, const void *data, size_t size);

/*  Removes the prefix; returns 1 if it was held, else 0. */
int pm_prefixes_remove (pm_prefixes_t *self, const void *data, size_t size);

/*  True if a held prefix starts the size bytes of topic, or if the set
    ever refused a prefix. */
bool pm_prefixes_match (pm_prefixes_t *self, const void *topic, size_t size);

/*  Prefixes held now. */
size_t pm_prefixes_count (pm_prefixes_t *self);

/*  True once a prefix was refused. */
bool pm_prefixes_overflowed (const pm_prefixes_t *self);

#endif
