// The writer's side of MonotonicFromTSC.h: enabling, and re-anchoring the
// line on CLOCK_MONOTONIC once a period.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <time.h>
#include "MonotonicFromTSC.h"

struct lttfs_mono_state lttfs_mono;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t read_tsc(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

struct true_pair { uint64_t tsc, ns, window; };

// A CLOCK_MONOTONIC reading and the TSC at its middle: the closest of three
// tries (a preemption inside one widens only that one). `window`: the TSC
// ticks around the reading, twice its uncertainty.
static struct true_pair read_true_pair(void)
{
    struct true_pair best = { 0, 0, UINT64_MAX };
    for (int i = 0; i < 3; i++) {
        uint64_t before = read_tsc();
        uint64_t ns = monotonic_ns();
        uint64_t after = read_tsc();
        if (after - before < best.window) {
            best.window = after - before;
            best.tsc = before + best.window / 2;
            best.ns = ns;
        }
    }
    return best;
}

// TSC ticks in `ns` nanoseconds at `mult` (ns per tick, 32.32).
static uint64_t ticks_in(uint64_t ns, uint64_t mult)
{
    return (uint64_t)(((unsigned __int128)ns << 32) / mult);
}

// The widest (tsc, CLOCK_MONOTONIC) pair that may re-anchor the line.
#define LTTFS_MONO_PAIR_LIMIT_NS 2000ull

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

// A new line from the end of the current one (anchor `at`/`an`, slope `m`,
// period end `due`), for a reading at `tsc` past `due`. Called under
// `writing`. Returns the reading's value on the new line.
static uint64_t reanchor(uint64_t at, uint64_t an, uint64_t m, uint64_t due, uint64_t tsc)
{
    struct true_pair now = read_true_pair();
    uint64_t anchor_tsc = now.tsc > due ? now.tsc : due;
    uint64_t old_end = lttfs_mono_line(an, due - at, m);
    // The rate over the time since the last true pair, once that is long
    // enough to measure (a tenth of a period, the first one's length: the
    // pair's error is tens of ns). Not from a loose pair (each try was
    // interrupted: preempted, a VM's pause), which would bend the slope;
    // such a pair still anchors, its error mended by the next period.
    bool tight = lttfs_mono_line(0, now.window, lttfs_mono.rate) <= LTTFS_MONO_PAIR_LIMIT_NS;
    if (tight && now.ns > lttfs_mono.last_ns + LTTFS_MONO_PERIOD_NS / 10 && now.tsc > lttfs_mono.last_tsc) {
        uint64_t rate = (uint64_t)(((unsigned __int128)(now.ns - lttfs_mono.last_ns) << 32)
                                   / (now.tsc - lttfs_mono.last_tsc));
        if (rate != 0)
            lttfs_mono.rate = rate;
        lttfs_mono.last_tsc = now.tsc;
        lttfs_mono.last_ns = now.ns;
    }
    uint64_t rate = lttfs_mono.rate;
    // Every value the old line gave is at most its value at `due` (a reading
    // past `due` re-anchors or gets that value), so the new line starts at
    // or above it, no earlier than `due`. Past that, the old line says
    // nothing: after a long idle time the new one starts at the truth, not
    // at the old slope's extrapolation.
    uint64_t truth = now.ns + (uint64_t)(((unsigned __int128)(anchor_tsc - now.tsc) * rate) >> 32);
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
    if (mult == 0)      // not enabled (or read before it was)
        return monotonic_ns();
    if ((int64_t)(tsc - anchor_tsc) < 0)
        return anchor_ns;
    // Past the period's end, while another thread re-anchors (which may be
    // descheduled in the middle): clock_gettime, never below the line's
    // value at its end (this thread may have had values up to that).
    if (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE)) {
        uint64_t end = lttfs_mono_line(anchor_ns, due_tsc - anchor_tsc, mult);
        uint64_t ns = monotonic_ns();
        return ns > end ? ns : end;
    }
    // The active slot may have moved since the caller read it.
    const struct lttfs_mono_slot *s = &lttfs_mono.slot[__atomic_load_n(&lttfs_mono.active, __ATOMIC_RELAXED) & 1];
    uint64_t at = __atomic_load_n(&s->anchor_tsc, __ATOMIC_RELAXED);
    uint64_t an = __atomic_load_n(&s->anchor_ns, __ATOMIC_RELAXED);
    uint64_t m = __atomic_load_n(&s->mult, __ATOMIC_RELAXED);
    uint64_t due = __atomic_load_n(&s->due_tsc, __ATOMIC_RELAXED);
    uint64_t value;
    if (tsc - at < due - at)
        value = lttfs_mono_line(an, tsc - at, m);
    else if ((int64_t)(tsc - at) < 0)
        value = an;
    else
        value = reanchor(at, an, m, due, tsc);
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
    return value;
}

// In a child of fork: the thread that re-anchored at the fork is not there.
static void after_fork_child(void)
{
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELAXED);
}

int lttfs_mono_enable(uint64_t ticks_per_second)
{
    if (__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_ACQUIRE))
        return 1;
    if (ticks_per_second == 0)
        return 0;
    while (__atomic_exchange_n(&lttfs_mono.writing, 1, __ATOMIC_ACQUIRE))
        sched_yield();
    if (!__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_RELAXED)) {
        uint64_t rate = (uint64_t)((1000000000ull << 32) / ticks_per_second);
        if (rate != 0) {
            struct true_pair now = read_true_pair();
            lttfs_mono.rate = rate;
            lttfs_mono.last_tsc = now.tsc;
            lttfs_mono.last_ns = now.ns;
            // A short first period: the rate it measures replaces the
            // estimate (a few ppm off, or more) before the error can grow.
            publish(now.tsc, now.ns, rate, now.tsc + ticks_in(LTTFS_MONO_PERIOD_NS / 10, rate));
            pthread_atfork(NULL, NULL, after_fork_child);
            __atomic_store_n(&lttfs_mono.enabled, 1, __ATOMIC_RELEASE);
        }
    }
    __atomic_store_n(&lttfs_mono.writing, 0, __ATOMIC_RELEASE);
    return (int)__atomic_load_n(&lttfs_mono.enabled, __ATOMIC_RELAXED);
}
