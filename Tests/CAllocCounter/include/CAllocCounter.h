// Counts the calling thread's heap allocations, for lttfs-alloc-check: this
// library defines malloc and its kin (forwarding to glibc's), so that an
// executable linking it sees every allocation of its own threads.
#ifndef C_ALLOC_COUNTER_H
#define C_ALLOC_COUNTER_H

// Allocations (malloc, calloc, realloc, memalign, aligned_alloc,
// posix_memalign) made by the calling thread so far.
unsigned long long alloc_counter_thread_calls(void);

// 0 when the counter is compiled out (a ThreadSanitizer build, whose runtime
// defines malloc itself); then every count is 0 and means nothing.
int alloc_counter_available(void);

#endif
