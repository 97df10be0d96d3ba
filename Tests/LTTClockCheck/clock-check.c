// clock-check: CLOCK_MONOTONIC from the TSC (MonotonicFromTSC.c) where a
// test process cannot safely go: a fork in the middle of a re-anchoring,
// and a suspend. Built with MonotonicFromTSC.c by MonotonicFromTSCTests.
//
//   clock-check fork      the parent leaves what a re-anchoring thread
//                         leaves at a fork (`writing` held, the inactive
//                         slot's seq odd, the last pair half updated) and
//                         forks; the child's clock must go on: in order,
//                         within 2 us of clock_gettime, for 30 periods.
//   clock-check suspend   CLOCK_MONOTONIC stops for 1 s while the TSC runs
//                         on (this program's clock_gettime, which the
//                         library calls, subtracts the time "suspended"),
//                         3 ms into a period; afterwards the clock must be
//                         within 2 us of clock_gettime at once, in order,
//                         its first reading taken while another thread
//                         re-anchors.
//   clock-check leave     the kernel's clocksource (a file of this
//                         program's: PATH, the second argument) reads
//                         "tsc", then cannot be read, then says "hpet": the
//                         line must go on through the first two and retire
//                         within two seconds of the third, in order (even
//                         with CLOCK_MONOTONIC put 50 ms behind the line
//                         just before) and close to clock_gettime
//                         throughout, and be re-anchored no more, even by
//                         a reader that still had the last line's slot.
// Exit 0: all held; 2: the TSC cannot serve here (nothing checked); 3: a
// reading hung; 4: a reading went back; 5: a reading was too far off; 6:
// the line retired when it should not have, or did not when it should; 7:
// a reading changed errno.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "MonotonicFromTSC.h"

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static uint64_t suspended_ns;

// Every clock_gettime of this process, the library's included.
int clock_gettime(clockid_t clock, struct timespec *ts)
{
    if (!real_clock_gettime)
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real_clock_gettime(clock, ts);
    uint64_t off = __atomic_load_n(&suspended_ns, __ATOMIC_RELAXED);
    if (r == 0 && clock == CLOCK_MONOTONIC && off) {
        uint64_t ns = (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec - off;
        ts->tv_sec = (time_t)(ns / 1000000000ull);
        ts->tv_nsec = (long)(ns % 1000000000ull);
    }
    return r;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// The TSC's rate over 2 ms, from the closest (tsc, ns) pairs of a few tries.
static uint64_t measure_rate(void)
{
    uint64_t tsc[2], ns[2];
    for (int end = 0; end < 2; end++) {
        uint64_t window = UINT64_MAX;
        for (int i = 0; i < 16; i++) {
            uint64_t before = lttfs_rdtsc(), n = now_ns(), after = lttfs_rdtsc();
            if (after - before < window) { window = after - before; tsc[end] = before + window / 2; ns[end] = n; }
        }
        if (end == 0)
            usleep(2000);
    }
    return (uint64_t)((double)(tsc[1] - tsc[0]) * 1e9 / (double)(ns[1] - ns[0]) + 0.5);
}

static void hung(int sig)
{
    (void)sig;
    static const char m[] = "clock-check: a reading hung\n";
    write(2, m, sizeof m - 1);
    _exit(3);
}

// The last reading of read_for: readings stay in order from one call to
// the next.
static uint64_t prev;

// How far a reading may be from the clock_gettime readings around it.
static uint64_t tolerance = 2000;

// Reads for `ns`: each reading after the previous one and within
// `tolerance` of the clock_gettime readings around it. Returns the exit
// status.
static int read_for(uint64_t ns, const char *who)
{
    uint64_t end = now_ns() + ns;
    for (;;) {
        errno = EXDEV;
        uint64_t before = now_ns(), reading = lttfs_mono_now(), after = now_ns();
        if (errno != EXDEV) {
            fprintf(stderr, "clock-check %s: a reading changed errno to %d\n", who, errno);
            return 7;
        }
        if (reading < prev) {
            fprintf(stderr, "clock-check %s: went back %llu ns\n", who, (unsigned long long)(prev - reading));
            return 4;
        }
        if (reading + tolerance < before || reading > after + tolerance) {
            fprintf(stderr, "clock-check %s: %lld ns off clock_gettime\n", who,
                    (long long)(reading < before ? -(long long)(before - reading) : (long long)(reading - after)));
            return 5;
        }
        prev = reading;
        if (after > end)
            return 0;
    }
}

// Writes `text` as the whole of the file at `path`.
static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

// Reads for 1.5 s, past the next read of the clocksource (at most a second
// away); the line must still run (`retired` clear, re-anchored meanwhile).
static int still_tracks(const char *who)
{
    uint64_t anchors = lttfs_mono_anchors();
    int status = read_for(1500000000, who);
    if (status)
        return status;
    if (__atomic_load_n(&lttfs_mono.retired, __ATOMIC_ACQUIRE) || lttfs_mono_anchors() < anchors + 50) {
        fprintf(stderr, "clock-check %s: the line stopped\n", who);
        return 6;
    }
    return 0;
}

static int leave(const char *path)
{
    int status = still_tracks("on the TSC");
    if (status)
        return status;
    unlink(path);
    if ((status = still_tracks("clocksource unreadable")))
        return status;
    if (write_file(path, "hpet\n") != 0)
        return 1;
    // The next re-anchoring reads the clocksource (the count is a multiple
    // of LTTFS_MONO_SOURCE_CHECK): CLOCK_MONOTONIC now falls 50 ms behind
    // the line, far more than that read takes. Readings after the retirement
    // must not go back below the line's last ones.
    while (lttfs_mono_anchors() % LTTFS_MONO_SOURCE_CHECK != 0)
        prev = lttfs_mono_now();
    // The line the retirement ends, as a reader that read it just before
    // and was held up past the retirement has it.
    struct lttfs_mono_slot last = lttfs_mono.slot[__atomic_load_n(&lttfs_mono.active, __ATOMIC_ACQUIRE) & 1];
    tolerance = 60000000;
    __atomic_store_n(&suspended_ns, 50000000, __ATOMIC_RELAXED);
    // Retired within two seconds (a check is at most a second away), every
    // reading in order and within 2 us of clock_gettime on the way.
    uint64_t deadline = now_ns() + 2000000000;
    while (!__atomic_load_n(&lttfs_mono.retired, __ATOMIC_ACQUIRE)) {
        if ((status = read_for(10000000, "leaving the TSC")))
            return status;
        if (now_ns() > deadline) {
            fprintf(stderr, "clock-check: the line did not retire\n");
            return 6;
        }
    }
    uint64_t anchors = lttfs_mono_anchors();
    // That held-up reader: the old line's period is over, and it finds the
    // zero slot once it has the re-anchoring lock. It must not re-anchor it.
    uint64_t late = lttfs_mono_slow(lttfs_rdtsc(), last.anchor_tsc, last.anchor_ns, last.mult, last.due_tsc);
    if (late < prev) {
        fprintf(stderr, "clock-check: a reader of the retired line went back %llu ns\n",
                (unsigned long long)(prev - late));
        return 4;
    }
    prev = late;
    if ((status = read_for(50000000, "retired")))
        return status;
    if (lttfs_mono_anchors() != anchors) {
        fprintf(stderr, "clock-check: a retired line was re-anchored\n");
        return 6;
    }
    return 0;
}

// The kernel keeps its time with the TSC (as TSCCalibration requires
// before the library is turned on).
static int kernel_on_tsc(void)
{
    char name[32] = { 0 };
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, name, sizeof name - 1);
    close(fd);
    return n >= 3 && strncmp(name, "tsc", 3) == 0 && (n == 3 || name[3] == '\n');
}

int main(int argc, char **argv)
{
    if (argc < 2 || !kernel_on_tsc())
        return 2;
    if (strcmp(argv[1], "leave") == 0) {
        if (argc < 3 || write_file(argv[2], "tsc\n") != 0)
            return 1;
        lttfs_mono_clocksource = argv[2];
    }
    if (!lttfs_mono_enable(measure_rate()))
        return 2;
    signal(SIGALRM, hung);
    alarm(20);
    int status = read_for(30000000, "warm-up");
    if (status)
        return status;
    if (strcmp(argv[1], "fork") == 0) {
        while (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE))
            ;
        struct lttfs_mono_slot *inactive = &lttfs_mono.slot[(lttfs_mono.active ^ 1) & 1];
        uint32_t seq = inactive->seq;
        uint64_t last_tsc = lttfs_mono.last_tsc;
        __atomic_store_n(&inactive->seq, seq | 1, __ATOMIC_RELAXED);
        lttfs_mono.last_tsc += lttfs_mono.last_tsc / 1000;   // last_ns not updated yet
        pid_t child = fork();
        if (child == 0) {
            alarm(5);
            _exit(read_for(300000000, "child"));
        }
        __atomic_store_n(&inactive->seq, seq, __ATOMIC_RELAXED);
        lttfs_mono.last_tsc = last_tsc;
        __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
        int child_status = 0;
        if (child < 0 || waitpid(child, &child_status, 0) != child)
            return 1;
        if (!WIFEXITED(child_status))
            return 3;
        return WEXITSTATUS(child_status) ? WEXITSTATUS(child_status) : read_for(30000000, "parent");
    }
    if (strcmp(argv[1], "suspend") == 0) {
        uint64_t anchors = lttfs_mono_anchors();
        while (lttfs_mono_anchors() == anchors)
            lttfs_mono_now();
        uint64_t end = now_ns() + 3000000;
        while (now_ns() < end)
            lttfs_mono_now();
        uint64_t before = now_ns();
        usleep(1000000);
        __atomic_store_n(&suspended_ns, now_ns() - before, __ATOMIC_RELAXED);
        // The first reading after it, while another thread re-anchors (the
        // lock held): the old line's end leads the clock by most of a
        // period now, and must not be that reading's floor.
        while (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE))
            ;
        status = read_for(0, "while another thread re-anchors after the suspend");
        __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
        return status ? status : read_for(100000000, "after the suspend");
    }
    if (strcmp(argv[1], "leave") == 0) {
        alarm(20);
        status = leave(argv[2]);
        unlink(argv[2]);
        return status;
    }
    return 1;
}
