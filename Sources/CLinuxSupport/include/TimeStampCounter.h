// The CPU's time-stamp counter, shared by the `tsc` trace clock
// (CLinuxSupport.h) and CLOCK_MONOTONIC from the TSC (MonotonicFromTSC.h).
#ifndef LTTFS_TIME_STAMP_COUNTER_H
#define LTTFS_TIME_STAMP_COUNTER_H

// The CPU's time-stamp counter (x86_64 rdtsc), 0 elsewhere: the `tsc`
// trace clock that producers read on every event (TraceClock), calibrated
// against CLOCK_MONOTONIC once per process (TSCCalibration).
static inline unsigned long long lttfs_rdtsc(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

#endif
