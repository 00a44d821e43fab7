/*  test_timer.c - timers whose cancellation is final

    The case that matters: two timers due in the same pass of the loop,
    the first cancelling the second.  With bare zloop timers the second
    still fires; here it must not.
*/
#include "timer.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>


typedef struct {
    int fired;
    int *victim;              /* a timer this one cancels when it fires */
    int ends_loop;
} s_probe_t;

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    s_probe_t *probe = (s_probe_t *) arg;
    probe->fired++;
    if (probe->victim)
        pm_timer_end (loop, probe->victim);
    return probe->ends_loop ? -1 : 0;
}

static void
test_cancel_in_the_same_pass (void)
{
    zloop_t *loop = zloop_new ();
    s_probe_t first = { 0, NULL, 0 }, second = { 0, NULL, 0 };
    s_probe_t last = { 0, NULL, 1 };
    //  Both due after 10 ms: they fire in one pass, first first.
    int second_id = -1;
    first.victim = &second_id;
    int first_id = pm_timer_add (loop, 10, s_on_timer, &first);
    second_id = pm_timer_add (loop, 10, s_on_timer, &second);
    int last_id = pm_timer_add (loop, 50, s_on_timer, &last);
    CHECK (first_id != -1 && second_id != -1 && last_id != -1);
    CHECK (pm_timer_count () == 3);
    zloop_start (loop);
    CHECK (first.fired == 1);
    CHECK (second.fired == 0);          //  cancelled, never called
    CHECK (second_id == -1);
    CHECK (last.fired == 1);
    CHECK (pm_timer_count () == 0);
    zloop_destroy (&loop);
}

static void
test_end_before_and_twice (void)
{
    zloop_t *loop = zloop_new ();
    s_probe_t never = { 0, NULL, 0 }, last = { 0, NULL, 1 };
    int id = pm_timer_add (loop, 5, s_on_timer, &never);
    pm_timer_end (loop, &id);
    CHECK (id == -1);
    pm_timer_end (loop, &id);           //  -1: nothing
    int last_id = pm_timer_add (loop, 20, s_on_timer, &last);
    CHECK (last_id != -1);
    zloop_start (loop);
    CHECK (never.fired == 0);
    CHECK (last.fired == 1);
    CHECK (pm_timer_count () == 0);
    zloop_destroy (&loop);
    pm_timer_shutdown ();
    CHECK (pm_timer_count () == 0);
}

int
main (void)
{
    zsys_handler_set (NULL);
    test_cancel_in_the_same_pass ();
    test_end_before_and_twice ();
    return check_report ("test_timer");
}
