// lttfs-shm-fuzz PID NAME ROUNDS SEED
//
// A hostile producer process for the tests: it reopens the shared buffers
// of process PID whose memfd name contains NAME (through /proc/PID/fd, as
// root may), and writes random bytes at random places of their control
// blocks and counts (the lock word, positions, commit counts, flags) and
// some into the ring's bytes, ROUNDS times, with short pauses, then exits.
// The server must neither crash nor hang, and no other trace may suffer.
// Last, it leaves the first buffer with a read position no ring can have
// (consumed far past the writer), which the server must find.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../../Sources/CRelayABI/include/lttfs_relay_abi.h"

static uint64_t state;

static uint64_t next(void)
{
    // SplitMix64: a seed replays a run.
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: lttfs-shm-fuzz PID NAME ROUNDS SEED\n");
        return 2;
    }
    const char *pid = argv[1], *name = argv[2];
    long rounds = atol(argv[3]);
    state = strtoull(argv[4], NULL, 10);
    char directory[64];
    snprintf(directory, sizeof directory, "/proc/%s/fd", pid);
    DIR *fds = opendir(directory);
    if (!fds) {
        perror(directory);
        return 1;
    }
    unsigned char *maps[256];
    size_t sizes[256];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(fds)) && count < 256) {
        char path[320], target[512];
        snprintf(path, sizeof path, "%s/%s", directory, entry->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (!strstr(target, "memfd:") || !strstr(target, name))
            continue;
        int fd = open(path, O_RDWR);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
            continue;
        maps[count] = map;
        sizes[count] = (size_t)st.st_size;
        count++;
    }
    closedir(fds);
    if (count == 0) {
        fprintf(stderr, "lttfs-shm-fuzz: no shared buffer named *%s* in process %s\n", name, pid);
        return 1;
    }
    long writes = 0;
    for (long round = 0; round < rounds; round++) {
        int which = (int)(next() % (uint64_t)count);
        unsigned char *base = maps[which];
        // Mostly the control block and counts (the first pages), some
        // ring bytes; whole words or single bytes.
        size_t limit = next() % 8 == 0 ? sizes[which] : (sizes[which] < 4096 ? sizes[which] : 4096);
        size_t at = (size_t)(next() % limit) & ~(size_t)7;
        if (at + 8 > sizes[which])
            continue;
        uint64_t value = next();
        switch (next() % 4) {
        case 0: value &= 0xFF; break;                 // small numbers
        case 1: value = 0; break;
        case 2: value |= 1ull << 63; break;           // huge
        default: break;
        }
        memcpy(base + at, &value, next() % 2 ? 8 : 1);
        writes++;
        if (round % 64 == 0) {
            struct timespec pause = { 0, 200000 };
            nanosleep(&pause, NULL);
        }
    }
    struct lttfs_ring_control *first = (struct lttfs_ring_control *)maps[0];
    __atomic_store_n(&first->consumed, (uint64_t)1 << 62, __ATOMIC_RELEASE);
    printf("%d buffers, %ld writes\n", count, writes);
    return 0;
}
