// Counts the calls to malloc, calloc, realloc, aligned_alloc and
// posix_memalign of the whole process (this library defines them and
// forwards to glibc's __libc_* functions): what a producer allocates per
// event, measured around its recording loop.
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
unsigned long long malloc_counter_calls(void);
#endif
