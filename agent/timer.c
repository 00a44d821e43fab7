/*  timer.c - one-shot timers whose cancellation is final (timer.h)

    The table is a small array searched linearly: an agent has a few
    timers per service and per parked request, and each lookup happens
    once per timer.
*/
#include "timer.h"

#include <stdlib.h>

typedef struct {
    int id;
    pm_timer_fn *fn;
    void *arg;
} s_timer_t;

static s_timer_t *s_timers;
static size_t s_count;
static size_t s_cap;

static s_timer_t *
s_find (int id)
{
    for (size_t i = 0; i < s_count; i++)
        if (s_timers [i].id == id)
            return &s_timers [i];
    return NULL;
}

static void
s_remove (s_timer_t *timer)
{
    *timer = s_timers [--s_count];
}

static int
s_trampoline (zloop_t *loop, int timer_id, void *unused)
{
    s_timer_t *timer = s_find (timer_id);
    if (!timer)
        return 0;               //  cancelled in this very pass
    pm_timer_fn *fn = timer->fn;
    void *arg = timer->arg;
    s_remove (timer);
    return fn (loop, timer_id, arg);
}

int
pm_timer_add (zloop_t *loop, size_t ms, pm_timer_fn *fn, void *arg)
{
    int id = zloop_timer (loop, ms ? ms : 1, 1, s_trampoline, NULL);
    if (id == -1)
        return -1;
    if (s_count == s_cap) {
        s_cap = s_cap ? s_cap * 2 : 64;
        s_timers = realloc (s_timers, s_cap * sizeof *s_timers);
        assert (s_timers);
    }
    s_timers [s_count].id = id;
    s_timers [s_count].fn = fn;
    s_timers [s_count].arg = arg;
    s_count++;
    return id;
}

void
pm_timer_end (zloop_t *loop, int *timer_id)
{
    if (*timer_id == -1)
        return;
    s_timer_t *timer = s_find (*timer_id);
    if (timer)
        s_remove (timer);
    zloop_timer_end (loop, *timer_id);
    *timer_id = -1;
}

size_t
pm_timer_count (void)
{
    return s_count;
}

void
pm_timer_shutdown (void)
{
    free (s_timers);
    s_timers = NULL;
    s_count = s_cap = 0;
}
