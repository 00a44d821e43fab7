/*  fuzz_driver.c - replays fuzz inputs where libFuzzer is not available

    main() for fuzz_decode.c when the compiler is not clang: every file
    named on the command line, or found in a directory named there, goes
    once through LLVMFuzzerTestOneInput.  No mutation: this keeps the
    target building and the seed corpus passing on every machine; the
    real fuzzing needs clang.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "fuzz_driver: cannot open %s\n", path);
        return -1;
    }
    size_t capacity = 4096, size = 0;
    uint8_t *data = malloc (capacity);
    size_t got;
    while (data && (got = fread (data + size, 1, capacity - size, file)) > 0) {
        size += got;
        if (size == capacity) {
            capacity *= 2;
            uint8_t *bigger = realloc (data, capacity);
            if (!bigger) {
                free (data);
                data = NULL;
            }
            else
                data = bigger;
        }
    }
    fclose (file);
    if (!data)
        return -1;
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

int
main (int argc, char *argv [])
{
    int replayed = 0;
    for (int i = 1; i < argc; i++) {
        if (argv [i][0] == '-')
            continue;               //  libFuzzer options: ignored here
        struct stat st;
        if (stat (argv [i], &st) != 0) {
            fprintf (stderr, "fuzz_driver: no such input %s\n", argv [i]);
            return 1;
        }
        if (!S_ISDIR (st.st_mode)) {
            if (s_replay_file (argv [i]))
                return 1;
            replayed++;
            continue;
        }
        DIR *dir = opendir (argv [i]);
        if (!dir)
            return 1;
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [4096];
            snprintf (path, sizeof path, "%s/%s", argv [i], entry->d_name);
            if (s_replay_file (path)) {
                closedir (dir);
                return 1;
            }
            replayed++;
        }
        closedir (dir);
    }
    printf ("fuzz_driver: replayed %d inputs\n", replayed);
    return replayed > 0 ? 0 : 1;
}
