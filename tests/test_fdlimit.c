/*  test_fdlimit.c - the clients' reserve of descriptors: a descriptor the
    agent opens for itself is refused (EMFILE) once fewer than the reserve
    would be left under the soft limit, and accepted up to there; a
    descriptor low in the table is accepted at once. */
#include "fdlimit.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#define S_LIMIT 64
#define S_RESERVE 16

int
main (void)
{
    CHECK (pm_fdlimit_check (3) == 0);          //  no reserve before init
    CHECK (pm_fdlimit_init (S_RESERVE) == 0);
    CHECK (pm_fdlimit_reserve () == S_RESERVE);
    struct rlimit limit;
    CHECK (getrlimit (RLIMIT_NOFILE, &limit) == 0);
    limit.rlim_cur = S_LIMIT;
    CHECK (setrlimit (RLIMIT_NOFILE, &limit) == 0);

    //  Open descriptors one by one, as the agent would, each checked.
    int fds [S_LIMIT];
    int count = 0, refused_at = -1;
    for (;;) {
        int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd == -1)
            break;
        fds [count++] = fd;
        errno = 0;
        if (pm_fdlimit_check (fd) == -1) {
            CHECK (errno == EMFILE);
            refused_at = fd;
            break;
        }
    }
    //  The first refused one leaves fewer than the reserve free: it is
    //  the one that takes the table to limit - reserve + 1 in use.
    CHECK (refused_at == S_LIMIT - S_RESERVE);
    //  Closing it, the last accepted one is still accepted.
    close (fds [--count]);
    CHECK (pm_fdlimit_check (fds [count - 1]) == 0);
    //  Low in the table: accepted without counting.
    CHECK (pm_fdlimit_check (3) == 0);
    for (int i = 0; i < count; i++)
        close (fds [i]);
    return check_report ("test_fdlimit");
}
