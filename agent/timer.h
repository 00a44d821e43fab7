/*  timer.h - one-shot timers whose cancellation is final

    Owns: the agent's timers on the loop.  czmq's zloop_timer_end only marks
    a timer for removal after the current pass over due timers, so a timer
    cancelled by another timer's handler in the same pass still fires, with
    an argument that handler may just have freed (a probe, a waiter).  Here
    every timer goes through one trampoline that looks its id up in a
    table: a cancelled id is not in the table, and nothing is called.

    One table per process: the agent has one thread and one loop.
*/
#ifndef PM_TIMER_H
#define PM_TIMER_H

#include <czmq.h>

/*  The handler, as zloop's: return -1 to end the loop. */
typedef int (pm_timer_fn) (zloop_t *loop, int timer_id, void *arg);

/*  Calls fn (loop, id, arg) once, after ms milliseconds (at least 1).
    Returns the timer's id, or -1. */
int pm_timer_add (zloop_t *loop, size_t ms, pm_timer_fn *fn, void *arg);

/*  Cancels the timer *timer_id (nothing if -1) and sets it to -1.  After
    this its handler is never called. */
void pm_timer_end (zloop_t *loop, int *timer_id);

/*  Timers armed and not yet fired or cancelled (for tests). */
size_t pm_timer_count (void);

/*  Frees the table (at exit, after the loop is gone). */
void pm_timer_shutdown (void);

#endif
