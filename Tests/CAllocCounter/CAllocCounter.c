#define _GNU_SOURCE
#include "CAllocCounter.h"
#include <errno.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define ALLOC_COUNTER_OFF 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ALLOC_COUNTER_OFF 1
#endif

#ifdef ALLOC_COUNTER_OFF
unsigned long long alloc_counter_thread_calls(void) { return 0; }
int alloc_counter_available(void) { return 0; }
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

// Per thread: the process's other threads (timers, the runtime) allocate
// when they will; only the recording thread's own count is asserted.
// initial-exec: static TLS, which needs no allocation of its own.
static __thread unsigned long long calls __attribute__((tls_model("initial-exec")));

unsigned long long alloc_counter_thread_calls(void) { return calls; }
int alloc_counter_available(void) { return 1; }

void *malloc(size_t size) { calls++; return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { calls++; return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { calls++; return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t alignment, size_t size) { calls++; return __libc_memalign(alignment, size); }
void *memalign(size_t alignment, size_t size) { calls++; return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size)
{
    calls++;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
#endif
