/*  pm_time.c - the protocol's clock (see pm_proto.h)

    Owns: the one wall-clock reading every `ts`, `started_at` and
    `state_since` on the wire comes from, in the agent and in clients,
    and what a record's uptime is at a given time.
*/
#include "pm_proto.h"

#include <time.h>

double
pm_wall_clock (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

double
pm_uptime (int64_t pid, double started_at, double now)
{
    if (pid <= 0)
        return -1;
    double uptime = started_at > 0 ? now - started_at : 0;
    return uptime < -0.5 ? 0 : uptime;
}
