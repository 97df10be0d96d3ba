// The writer's side of MonotonicFromTSC.h: enabling, and re-anchoring the
// line on CLOCK_MONOTONIC once a period.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "MonotonicFromTSC.h"

struct lttfs_mono_state lttfs_mono;

const char *lttfs_mono_clocksource = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// TSC ticks in `ns` nanoseconds at `mult` (ns per tick, 32.32).
static uint64_t ticks_in(uint64_t ns, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)ns << 32) / mult);
}

// How far a measured rate may be from the rate so far (1/32: 3%) and still
// replace it.
#define LTTFS_MONO_RATE_SPREAD 32

// The widest (tsc, CLOCK_MONOTONIC) pair that sets the slope: its error is
// half of it (here the best of three tries is under 0.3 us).
#define LTTFS_MONO_PAIR_LIMIT_NS 1000ull

struct true_pair { uint64_t tsc, ns; bool tight; };

// A CLOCK_MONOTONIC reading and the TSC at its middle: the closest of three
// tries (a preemption inside one widens only that one), up to four rounds
// while none is within LTTFS_MONO_PAIR_LIMIT_NS at `rate`. `tight`: one was.
static struct true_pair read_true_pair(uint64_t rate)
{
    struct true_pair best = { 0, 0, false };
    uint64_t window = UINT64_MAX;
    for (int i = 0; i < 12; i++) {
        uint64_t before = lttfs_rdtsc();
        uint64_t ns = monotonic_ns();
        uint64_t after = lttfs_rdtsc();
        if (after - before < window) {
            window = after - before;
            best.tsc = before + window / 2;
            best.ns = ns;
        }
        if (i % 3 == 2 && lttfs_mono_line(0, window, rate) <= LTTFS_MONO_PAIR_LIMIT_NS) {
            best.tight = true;
            break;
        }
    }
    return best;
}

// Writes the inactive slot and makes it the active one (seqlock write:
// readers that raced with two flips see `seq` move and read again).
static void publish(uint64_t anchor_tsc, uint64_t anchor_ns, uint64_t mult, uint64_t due_tsc)
{
    uint32_t next = (__atomic_load_n(&lttfs_mono.active, __ATOMIC_RELAXED) ^ 1) & 1;
    struct lttfs_mono_slot *s = &lttfs_mono.slot[next];
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&s->anchor_tsc, anchor_tsc, __ATOMIC_RELAXED);
    __atomic_store_n(&s->anchor_ns, anchor_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mult, mult, __ATOMIC_RELAXED);
    __atomic_store_n(&s->due_tsc, due_tsc, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
    __atomic_store_n(&lttfs_mono.active, next, __ATOMIC_RELEASE);
    __atomic_store_n(&lttfs_mono.anchors, lttfs_mono.anchors + 1, __ATOMIC_RELAXED);
}

// The kernel's clocksource is readable and is not the TSC. A file that
// cannot be read now (a process out of descriptors, no /sys in its
// sandbox, a signal) says nothing: the line goes on, and the next check
// reads again. This runs inside whichever clock read re-anchors (in a
// signal handler, say), so it leaves errno as it found it and makes raw
// system calls: async-signal-safe, and not cancellation points (libc's
// open and read are: a cancel there would leave `writing` held for ever).
static bool kernel_left_tsc(void)
{
    int saved_errno = errno;
    bool left = false;
    long fd = syscall(SYS_openat, AT_FDCWD, lttfs_mono_clocksource, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char name[32];
        long n = syscall(SYS_read, fd, name, sizeof name);
        syscall(SYS_close, fd);
        left = n > 0 && !((n == 3 || (n > 3 && name[3] == '\n')) && memcmp(name, "tsc", 3) == 0);
    }
    errno = saved_errno;
    return left;
}

// A reading at `tsc`, outside its line's period [at, due) and not just
// before it, is long past the line: more than a period after its end (an
// idle time, or a suspend, which CLOCK_MONOTONIC does not count), or before
// its anchor (the TSC restarted). The line's end then bounds nothing: every
// reading of it came before the clock's value now, give or take its error,
// and after a suspend that end may lead the clock by up to a period.
static bool long_past(uint64_t tsc, uint64_t at, uint64_t due)
{
    return (int64_t)(tsc - at) < 0 || tsc - due > due - at;
}

// The kernel left the TSC: the line stops for good. Readings from then on
// are clock_gettime's, raised to the last line's end (`end`), which readings
// of that line may have reached. Called under `writing`.
static uint64_t retire(uint64_t end)
{
    __atomic_store_n(&lttfs_mono.retired_end, end, __ATOMIC_RELAXED);
    __atomic_store_n(&lttfs_mono.retired, 1, __ATOMIC_RELEASE);
    publish(0, 0, 0, 0);
    uint64_t ns = monotonic_ns();
    return ns > end ? ns : end;
}

// A new line from the end of the current one (anchor `at`/`an`, slope `m`,
// period end `due`), for a reading at `tsc` past `due`, or far before `at`
// (`went_back`: the TSC restarted, as after some suspends). Called under
// `writing`. Returns the reading's value on the new line.
static uint64_t reanchor(uint64_t at, uint64_t an, uint64_t m, uint64_t due, uint64_t tsc, bool went_back)
{
    bool left = lttfs_mono.anchors % LTTFS_MONO_SOURCE_CHECK == 0 && kernel_left_tsc();
    struct true_pair now = read_true_pair(lttfs_mono.rate);
    // The rate over the time since the last true pair, once that is long
    // enough to measure (a tenth of a period, the first one's length), from
    // a tight pair only, and only near the rate so far: CLOCK_MONOTONIC
    // runs at the TSC's rate give or take NTP's slewing (at most 500 ppm),
    // so a measure far from it spans a suspend (the TSC counted on, the
    // clock did not) or a TSC that restarted, and would bend the slope for
    // as long as it lasted. The measure then starts again from here.
    if (now.tight && now.ns > lttfs_mono.last_ns + LTTFS_MONO_PERIOD_NS / 10 && now.tsc > lttfs_mono.last_tsc) {
        uint64_t rate = (uint64_t)(((unsigned __int128)(now.ns - lttfs_mono.last_ns) << 32)
                                   / (now.tsc - lttfs_mono.last_tsc));
        uint64_t old = lttfs_mono.rate;
        if (rate > old - old / LTTFS_MONO_RATE_SPREAD && rate < old + old / LTTFS_MONO_RATE_SPREAD)
            lttfs_mono.rate = rate;
        lttfs_mono.last_tsc = now.tsc;
        lttfs_mono.last_ns = now.ns;
    } else if (now.tight && (now.tsc < lttfs_mono.last_tsc || now.ns < lttfs_mono.last_ns)) {
        lttfs_mono.last_tsc = now.tsc;
        lttfs_mono.last_ns = now.ns;
    }
    uint64_t rate = lttfs_mono.rate;
    // Every value the old line gave is at most its value at `due` (a reading
    // past `due` re-anchors, or reads clock_gettime raised to that value,
    // which the truth below covers), so the new line starts at
    // or above it, no earlier than `due` (unless the TSC went back: then at
    // the pair, above every value given so far). Past `due` the old line
    // says nothing: after a long idle time the new one starts at the
    // truth, not at the old slope's extrapolation.
    uint64_t anchor_tsc = went_back || now.tsc > due ? now.tsc : due;
    uint64_t old_end = lttfs_mono_line(an, due - at, m);
    uint64_t truth = now.ns + (uint64_t)(((unsigned __int128)(anchor_tsc - now.tsc) * rate) >> 32);
    // Long past the period's end (more than a period: an idle time, or a
    // suspend, which CLOCK_MONOTONIC does not count), or the TSC went back:
    // the last readings came before then, from a line at most its error
    // ahead of the truth, and the truth has not gone back since. The line's
    // end, which nobody may have reached, does not hold the new one above
    // the truth (after a suspend it would run ahead of clock_gettime for a
    // period).
    if ((went_back || anchor_tsc - due > due - at) && old_end > truth + LTTFS_MONO_PAIR_LIMIT_NS)
        old_end = truth + LTTFS_MONO_PAIR_LIMIT_NS;
    if (left)
        return retire(old_end);
    // Behind the truth: jump to it (forward). Ahead (the old line ran fast):
    // start at its end and run slower this period, so as to meet the truth
    // at the period's end (at half speed at most).
    uint64_t anchor_ns = old_end > truth ? old_end : truth;
    uint64_t ahead = anchor_ns - truth;
    uint64_t mult = ahead >= LTTFS_MONO_PERIOD_NS / 2
        ? rate / 2
        : (uint64_t)((unsigned __int128)rate * (LTTFS_MONO_PERIOD_NS - ahead) / LTTFS_MONO_PERIOD_NS);
    publish(anchor_tsc, anchor_ns, mult, anchor_tsc + ticks_in(LTTFS_MONO_PERIOD_NS, rate));
    return tsc > anchor_tsc ? lttfs_mono_line(anchor_ns, tsc - anchor_tsc, mult) : anchor_ns;
}

uint64_t lttfs_mono_slow(uint64_t tsc, uint64_t anchor_tsc, uint64_t anchor_ns, uint64_t mult, uint64_t due_tsc)
{
    if (mult == 0) {    // not enabled (or read before it was), or retired
        uint64_t ns = monotonic_ns();
        uint64_t end = __atomic_load_n(&lttfs_mono.retired_end, __ATOMIC_RELAXED);
        return ns > end ? ns : end;
    }
    // A little before the anchor: the anchor's time. Further before it,
    // the TSC restarted: re-anchor (below).
    if (lttfs_mono_just_before(tsc, anchor_tsc, due_tsc))
        return anchor_ns;
    // Past the period's end (or the TSC went back), while another thread
    // re-anchors (which may be descheduled in the middle): clock_gettime,
    // never below the line's value at its end (this thread may have had
    // values up to that).
    if (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE)) {
        uint64_t ns = monotonic_ns();
        if (long_past(tsc, anchor_tsc, due_tsc))
            return ns;
        uint64_t end = lttfs_mono_line(anchor_ns, due_tsc - anchor_tsc, mult);
        return ns > end ? ns : end;
    }
    // The active slot may have moved since the caller read it.
    const struct lttfs_mono_slot *s = &lttfs_mono.slot[__atomic_load_n(&lttfs_mono.active, __ATOMIC_RELAXED) & 1];
    uint64_t at = __atomic_load_n(&s->anchor_tsc, __ATOMIC_RELAXED);
    uint64_t an = __atomic_load_n(&s->anchor_ns, __ATOMIC_RELAXED);
    uint64_t m = __atomic_load_n(&s->mult, __ATOMIC_RELAXED);
    uint64_t due = __atomic_load_n(&s->due_tsc, __ATOMIC_RELAXED);
    uint64_t value;
    if (m == 0) {
        // Retired since the caller read its slot (between that read and
        // this lock, or by a signal handler on this thread): a zero slot is
        // never re-anchored, and retired_end (stored before the slot, which
        // `writing`'s acquire made visible) is the floor.
        __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
        uint64_t ns = monotonic_ns();
        uint64_t end = __atomic_load_n(&lttfs_mono.retired_end, __ATOMIC_RELAXED);
        return ns > end ? ns : end;
    }
    if (tsc - at < due - at)
        value = lttfs_mono_line(an, tsc - at, m);
    else if (lttfs_mono_just_before(tsc, at, due))
        value = an;
    else
        value = reanchor(at, an, m, due, tsc, (int64_t)(tsc - at) < 0);
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
    return value;
}

// In a child of fork, whose only thread is the one that forked: a thread
// that was re-anchoring is not there. It held `writing`, and may have left
// the inactive slot's `seq` odd (readers would wait on it for ever once it
// became active: publish only adds to it) and the last pair half updated.
static void after_fork_child(void)
{
    for (int i = 0; i < 2; i++) {
        uint32_t seq = __atomic_load_n(&lttfs_mono.slot[i].seq, __ATOMIC_RELAXED);
        __atomic_store_n(&lttfs_mono.slot[i].seq, (seq + 1) & ~1u, __ATOMIC_RELAXED);
    }
    if (__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_RELAXED)) {
        struct true_pair now = read_true_pair(lttfs_mono.rate);
        lttfs_mono.last_tsc = now.tsc;
        lttfs_mono.last_ns = now.ns;
    }
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELAXED);
}

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

int lttfs_mono_enable(uint64_t ticks_per_second)
{
#if !defined(__x86_64__)
    (void)ticks_per_second;
    return 0;       // no TSC to read
#else
    static pthread_once_t fork_handler = PTHREAD_ONCE_INIT;
    if (__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_ACQUIRE))
        return 1;
    uint64_t rate = ticks_per_second == 0 ? 0 : (uint64_t)((1000000000ull << 32) / ticks_per_second);
    if (rate == 0)
        return 0;
    // Before `writing` is first taken: a child forked from here on is
    // mended (see after_fork_child).
    pthread_once(&fork_handler, register_fork_handler);
    while (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    if (!__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_RELAXED)) {
        lttfs_mono.rate = rate;
        struct true_pair now = read_true_pair(rate);
        lttfs_mono.last_tsc = now.tsc;
        lttfs_mono.last_ns = now.ns;
        // A short first period: the rate it measures replaces the estimate
        // (a few ppm off, or more) before the error can grow.
        publish(now.tsc, now.ns, rate, now.tsc + ticks_in(LTTFS_MONO_PERIOD_NS / 10, rate));
        __atomic_store_n(&lttfs_mono.enabled, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
    return 1;
#endif
}
