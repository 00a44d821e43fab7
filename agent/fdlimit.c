/*  fdlimit.c - the descriptor limit and the clients' reserve (fdlimit.h)

    The check counts rather than probes: opening the reserve to see that
    it exists would, for that moment, take from a libzmq I/O thread
    accepting at the same time exactly what the reserve is for.
*/
#include "fdlimit.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

static struct {
    bool set;                 /* pm_fdlimit_init was called */
    int reserve;              /* descriptors kept free */
    rlim_t service_soft;      /* the soft limit the agent started with */
    bool crowded;             /* the last count found half the table used */
} s_fdlimit;

//  Tables up to this size are always counted.
#define S_SMALL_TABLE 1024

int
pm_fdlimit_init (int reserve)
{
    s_fdlimit.reserve = reserve > 0 ? reserve : 0;
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == -1)
        return -1;
    s_fdlimit.set = true;
    s_fdlimit.service_soft = limit.rlim_cur;
    if (limit.rlim_cur == limit.rlim_max)
        return 0;
    limit.rlim_cur = limit.rlim_max;
    return setrlimit (RLIMIT_NOFILE, &limit);
}

int
pm_fdlimit_reserve (void)
{
    return s_fdlimit.reserve;
}

int
pm_fdlimit_for_services (struct rlimit *limit)
{
    if (!s_fdlimit.set || getrlimit (RLIMIT_NOFILE, limit) == -1)
        return -1;
    if (s_fdlimit.service_soft < limit->rlim_max)
        limit->rlim_cur = s_fdlimit.service_soft;
    else
        limit->rlim_cur = limit->rlim_max;
    return 0;
}

int
pm_fdlimit_check (int fd)
{
    if (s_fdlimit.reserve == 0)
        return 0;
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == -1)
        return 0;
    //  Descriptors above the lowest free one are in use only if the table
    //  was that full once.  So the count is skipped only for a large table
    //  (a small one costs little to count, and is where the reserve is in
    //  reach), a new descriptor in its lower half, and no count since the
    //  table was last seen half full.
    if (fd >= 0 && limit.rlim_cur != RLIM_INFINITY
    &&  limit.rlim_cur > S_SMALL_TABLE && !s_fdlimit.crowded
    &&  (rlim_t) fd < limit.rlim_cur / 2)
        return 0;
    //  opendir takes a descriptor: none free at all is EMFILE already.
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir)
        return errno == EMFILE || errno == ENFILE ? -1 : 0;
    int own = dirfd (dir);
    rlim_t used = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        char *end;
        long open_fd = strtol (entry->d_name, &end, 10);
        if (*end || end == entry->d_name || open_fd == own)
            continue;
        if ((rlim_t) open_fd < limit.rlim_cur)
            used++;
    }
    closedir (dir);
    s_fdlimit.crowded = limit.rlim_cur != RLIM_INFINITY
                     && used >= limit.rlim_cur / 2;
    if (limit.rlim_cur == RLIM_INFINITY
    ||  limit.rlim_cur - used >= (rlim_t) s_fdlimit.reserve)
        return 0;
    errno = EMFILE;
    return -1;
}
