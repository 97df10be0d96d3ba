// Linux facilities that Swift's Glibc module does not import (they need
// _GNU_SOURCE, or are language features such as __thread), wrapped the way
// swift-nio's CNIOLinux does. Nothing else.
#ifndef C_LINUX_SUPPORT_H
#define C_LINUX_SUPPORT_H

// The CPU the calling thread runs on now (sched_getcpu), or -1.
int lttfs_sched_getcpu(void);

// The kernel thread id of the calling thread (gettid).
int lttfs_gettid(void);

// The tracer nesting depth of the calling thread (the seed's per-CPU
// ltt_nesting, per thread here). A __thread variable is one TLS access;
// these inline functions let Swift reach it without a call.
extern __thread unsigned int lttfs_tracer_nesting;

// Enters the tracer; returns the depth before entering (0: not nested).
static inline unsigned int lttfs_nesting_enter(void) {
    return lttfs_tracer_nesting++;
}

static inline void lttfs_nesting_leave(void) {
    lttfs_tracer_nesting--;
}

static inline unsigned int lttfs_nesting_depth(void) {
    return lttfs_tracer_nesting;
}

#endif
