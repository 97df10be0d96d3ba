// CLOCK_MONOTONIC computed from the TSC in user space: the `monotonic`
// trace clock where the TSC is the kernel's clocksource.
//
// Why: the vDSO's clock_gettime(CLOCK_MONOTONIC) does the same arithmetic
// (ns = base + (tsc - cycle_last) * mult >> shift) but orders its TSC read
// behind everything before it (lfence; rdtsc) and walks the kernel's
// sequence lock: about 24 ns a read here, against 10 for a plain rdtsc, on
// every event. Here the line (anchor, slope) lives in this process and is
// re-anchored on CLOCK_MONOTONIC every `LTTFS_MONO_PERIOD_NS`, so a reading
// stays within tens of nanoseconds of clock_gettime's (NTP's slewing
// included: the slope is re-measured each period), for a plain rdtsc, two
// loads of a sequence word and a multiply.
//
// Design (lttfs_mono_slow in MonotonicFromTSC.c has the writer's side):
// - Two slots; readers use `active`, the one re-anchoring writes the other
//   and then flips `active`. A reader never waits for a writer: a slot
//   being written is not the active one, and a reader that raced with two
//   flips (its slot's `seq` moved) reads again.
// - A slot serves readings in [anchor_tsc, due_tsc). A reading past
//   `due_tsc` re-anchors (one thread, a try-lock; the others read
//   clock_gettime meanwhile, raised to the line's value at `due_tsc`
//   unless the reading is more than a period past it: after a suspend that
//   value may lead the clock by most of a period). A
//   reading a little before `anchor_tsc` (a CPU a few cycles behind) gets
//   `anchor_ns`; one more than a period before it (the TSC restarted)
//   re-anchors.
// - The slope is the rate measured between two tight (tsc, clock_gettime)
//   pairs, only when within 3% of the rate so far: one that spans a
//   suspend (the TSC counts on, CLOCK_MONOTONIC does not) is dropped, and
//   the line jumps to the truth at the next anchor instead of crawling.
// - fork: the child's handler clears `writing` and evens both slots'
//   `seq` (a re-anchoring thread does not follow the fork).
// - Invariant: the next slot's anchor_ns >= the previous line's value at
//   its due_tsc, so a thread's readings from the lines never go back; one
//   taken from clock_gettime during a re-anchoring may be ahead of the new
//   line by the line's error (tens of ns here; up to half a microsecond
//   when every try at the anchor's pair was interrupted). Each buffer's ring keeps its
//   event times in order whatever the clock does (RelayBuffer.timestamp).
// - The kernel may leave the TSC after the line started (its watchdog found
//   the TSC unstable, or an administrator chose another clocksource); the
//   line is then wrong. Once a second (every LTTFS_MONO_SOURCE_CHECK
//   re-anchorings) the re-anchoring thread reads the kernel's clocksource;
//   if it is not the TSC, the line retires: every slot becomes zero, and
//   readings are clock_gettime's, never below the last line's end (capped
//   at the truth when long past it, as a re-anchoring caps it). A zero slot
//   is never re-anchored, even by a reader that still had the old one. The
//   read leaves errno alone and makes raw system calls (no cancellation
//   point; async-signal-safe): it runs inside some producer's clock read.
//   A process whose sandbox kills it for openat after it started recording
//   must allow this path.
// - Disabled (the default; lttfs_mono_enable turns it on) or retired: every
//   slot is zero, so each reading takes the slow path, clock_gettime.
#ifndef LTTFS_MONOTONIC_FROM_TSC_H
#define LTTFS_MONOTONIC_FROM_TSC_H

#include <stdint.h>
#include "TimeStampCounter.h"

#define LTTFS_MONO_PERIOD_NS 10000000ull
// Re-anchorings between two reads of the kernel's clocksource.
#define LTTFS_MONO_SOURCE_CHECK 100

struct lttfs_mono_slot {
    uint32_t seq;           // odd while the slot is written
    uint64_t anchor_tsc;
    uint64_t anchor_ns;     // CLOCK_MONOTONIC ns at anchor_tsc
    uint64_t mult;          // ns per TSC tick, 32.32 fixed point
    uint64_t due_tsc;       // the end of the period this line serves
};

struct lttfs_mono_state {
    struct lttfs_mono_slot slot[2];
    uint32_t active;        // the slot readers use (0 or 1)
    uint32_t writing;       // 1 while a thread re-anchors (try-lock)
    uint32_t enabled;
    // The writer's own state, read and written under `writing`.
    uint64_t rate;          // the last period's measured ns per tick, 32.32
    uint64_t last_tsc, last_ns;   // the last true (tsc, CLOCK_MONOTONIC) pair
    uint64_t anchors;       // re-anchorings so far (tests watch it)
    uint32_t retired;       // 1 once the kernel left the TSC (never undone)
    uint64_t retired_end;   // the last line's value at its period's end
} __attribute__((aligned(64)));

extern struct lttfs_mono_state lttfs_mono;

// The file in which the kernel names its clocksource (sysfs; tests point it
// at a file of their own).
extern const char *lttfs_mono_clocksource;

// Turns the conversion on, with `ticks_per_second` as the first estimate
// of the TSC's rate (the first period measures it). Idempotent; returns 1
// when on. Callers decide whether the TSC may serve (TSCCalibration).
int lttfs_mono_enable(uint64_t ticks_per_second);

// The slow path of lttfs_mono_now: disabled (clock_gettime), before the
// anchor, or past the period's end (re-anchors).
uint64_t lttfs_mono_slow(uint64_t tsc, uint64_t anchor_tsc, uint64_t anchor_ns, uint64_t mult, uint64_t due_tsc);

// Re-anchorings so far.
static inline uint64_t lttfs_mono_anchors(void) { return __atomic_load_n(&lttfs_mono.anchors, __ATOMIC_RELAXED); }

static inline uint64_t lttfs_mono_line(uint64_t anchor_ns, uint64_t ticks, uint64_t mult) {
    return anchor_ns + (uint64_t)(((unsigned __int128)ticks * mult) >> 32);
}

// Whether `tsc` is before `anchor_tsc` by at most the slot's period: a
// CPU a few cycles behind the one that anchored, which reads the anchor's
// time. Further back, the TSC restarted.
static inline int lttfs_mono_just_before(uint64_t tsc, uint64_t anchor_tsc, uint64_t due_tsc) {
    return (int64_t)(tsc - anchor_tsc) < 0 && anchor_tsc - tsc <= due_tsc - anchor_tsc;
}

// CLOCK_MONOTONIC in nanoseconds.
static inline uint64_t lttfs_mono_now(void) {
    for (;;) {
        const struct lttfs_mono_slot *s = &lttfs_mono.slot[__atomic_load_n(&lttfs_mono.active, __ATOMIC_ACQUIRE) & 1];
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        uint64_t anchor_tsc = __atomic_load_n(&s->anchor_tsc, __ATOMIC_RELAXED);
        uint64_t anchor_ns = __atomic_load_n(&s->anchor_ns, __ATOMIC_RELAXED);
        uint64_t mult = __atomic_load_n(&s->mult, __ATOMIC_RELAXED);
        uint64_t due_tsc = __atomic_load_n(&s->due_tsc, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__builtin_expect(__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq || (seq & 1), 0))
            continue;
        uint64_t tsc = lttfs_rdtsc();
        // anchor_tsc <= tsc < due_tsc, in one comparison (false when disabled).
        if (__builtin_expect(tsc - anchor_tsc < due_tsc - anchor_tsc, 1))
            return lttfs_mono_line(anchor_ns, tsc - anchor_tsc, mult);
        return lttfs_mono_slow(tsc, anchor_tsc, anchor_ns, mult, due_tsc);
    }
}

#endif
