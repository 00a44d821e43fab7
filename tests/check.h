/*  check.h - the unit tests' one assertion

    CHECK (cond) reports file:line and the failed condition on stderr and
    counts it; the test's main ends with return check_report ("name"),
    which says how it went and gives the exit code.  Tests go on after a
    failed check so one run shows every failure.
*/
#ifndef PM_CHECK_H
#define PM_CHECK_H

#include <stdio.h>

static int s_check_failures = 0;

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        s_check_failures++; \
    } \
} while (0)

static inline int
check_report (const char *name)
{
    if (s_check_failures) {
        fprintf (stderr, "%s: %d check(s) failed\n", name, s_check_failures);
        return 1;
    }
    printf ("%s: all checks passed\n", name);
    return 0;
}

#endif
