// Linux facilities that Swift's Glibc module does not import (they need
// _GNU_SOURCE, or are language features such as __thread), wrapped the way
// swift-nio's CNIOLinux does. Nothing else.
#ifndef C_LINUX_SUPPORT_H
#define C_LINUX_SUPPORT_H

// The CPU the calling thread runs on now (sched_getcpu), or -1.
int lttfs_sched_getcpu(void);

#if defined(__x86_64__) && __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif

// The same, inline: the kernel keeps the CPU number in the thread's rseq
// area (registered by glibc 2.35+), one load away from the thread pointer.
// Falls back to sched_getcpu where rseq is not registered.
static inline int lttfs_current_cpu(void) {
#if defined(__x86_64__) && defined(RSEQ_SIG)
    if (__rseq_size > 0) {
        const struct rseq *area = (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
        int cpu = (int)__atomic_load_n(&area->cpu_id, __ATOMIC_RELAXED);
        if (cpu >= 0)
            return cpu;
    }
#endif
    return lttfs_sched_getcpu();
}

// The kernel thread id of the calling thread (gettid).
int lttfs_gettid(void);

// ioctl(2) with a __u32 argument (ioctl is variadic: Swift cannot call it).
// Returns 0 or -1 with errno set.
int lttfs_ioctl_u32(int fd, unsigned long request, unsigned int *argument);

// ioctl(2) with no argument.
int lttfs_ioctl_none(int fd, unsigned long request);

// ioctl(2) whose argument is a buffer of the size its number encodes.
int lttfs_ioctl_bytes(int fd, unsigned long request, void *argument);

// splice(2) from fd_in at *offset (explicit offset, as lttd does) into
// fd_out. Returns bytes moved, 0, or -1 with errno set.
long lttfs_splice(int fd_in, long long *offset, int fd_out, unsigned long length, unsigned int flags);

// fcntl(F_SETPIPE_SZ): the pipe's capacity. Returns it, or -1.
int lttfs_set_pipe_size(int fd, int size);

// Starts `path` with `argv`, no signal blocked and every one at its default
// action. `detached`: in a new session, stdin/stdout/stderr on /dev/null
// and no other descriptor inherited (a helper that holds none of its
// caller's pipes); otherwise `path` is looked up in PATH and the child
// shares the caller's descriptors. Returns the pid, or -errno.
int lttfs_spawn(const char *path, char *const argv[], int detached);

// Closes every descriptor from `lowest` up, except `keep` (-1 for none):
// a daemon must not hold its caller's pipes open.
void lttfs_close_descriptors_from(int lowest, int keep);

// The signal that interrupts a thread's blocking call (sem_wait, read) with
// EINTR and does nothing else: a real-time signal (SIGRTMIN + 7, a macro
// Swift cannot call) with an empty handler installed without SA_RESTART.
// Installs the handler on first use; returns the signal number.
int lttfs_wake_signal(void);

// lttfs_wake_signal, unblocked in the calling thread (a parent may have
// started this process with it blocked: the mask is inherited).
int lttfs_wake_signal_accept(void);

// Tell ThreadSanitizer about an ordering it cannot see (no-ops in other
// builds): an acquire at `address` follows every release made there before.
void lttfs_tsan_acquire(void *address);
void lttfs_tsan_release(void *address);

// SPLICE_F_MOVE.
#define LTTFS_SPLICE_F_MOVE 1u

// lttfs_rdtsc: the time-stamp counter, the `tsc` trace clock.
#include "TimeStampCounter.h"

// CLOCK_MONOTONIC from the TSC, for the `monotonic` trace clock.
#include "MonotonicFromTSC.h"

// The spin-wait hint (x86 pause, arm64 yield): a spinning thread lets its
// sibling hyperthread run and leaves the memory pipeline alone.
static inline void lttfs_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// The tracer nesting depth of the calling thread (the seed's per-CPU
// ltt_nesting, per thread here). A __thread variable is one TLS access;
// these inline functions let Swift reach it without a call.
// initial-exec: a fixed offset from the thread pointer, no __tls_get_addr
// call (the library is always loaded with the program, never dlopen'ed).
extern __thread unsigned int lttfs_tracer_nesting __attribute__((tls_model("initial-exec")));

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

/* The errno's symbolic name ("EINVAL"), or NULL if it has none
 * (glibc's strerrorname_np). */
const char *lttfs_errno_name(int error);

// A TCP connection to host:port (getaddrinfo, every address in turn),
// connected within timeout_ms, then blocking with reads and writes bounded
// by io_timeout_ms (SO_RCVTIMEO, SO_SNDTIMEO) and TCP_NODELAY. Returns the
// descriptor, or -1 with errno set (EHOSTUNREACH and *resolve_error set
// when the name does not resolve: lttfs_resolve_error says why).
int lttfs_tcp_connect(const char *host, const char *port, int timeout_ms, int io_timeout_ms, int *resolve_error);
const char *lttfs_resolve_error(int error);
// send(2) with MSG_NOSIGNAL: a peer gone is EPIPE, not SIGPIPE.
long lttfs_send_nosignal(int fd, const void *bytes, unsigned long length);

// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), sized to `size` and
// sealed against shrinking and growing: memory to share whose size nobody
// can change under a mapping. Its pages are allocated at once (fallocate)
// and charged to the caller's memory cgroup. Returns the descriptor or -1
// with errno set.
int lttfs_sealed_memfd(const char *name, unsigned long long size);

// The seals of `fd` (F_GET_SEALS), or -1 with errno set.
int lttfs_get_seals(int fd);

// F_SEAL_SHRINK | F_SEAL_GROW: what a shared buffer must carry.
#define LTTFS_SEALS_FIXED_SIZE 0x0006

// futex(2) on a word of shared memory (not FUTEX_PRIVATE: the waiters may be
// in other processes). wait: sleeps while *word == expected, at most
// timeout_ns (0: no limit); returns 0, or -1 with errno (EAGAIN: the word
// changed, ETIMEDOUT, EINTR). wake: wakes up to `count`; returns how many.
int lttfs_futex_wait_shared(unsigned int *word, unsigned int expected, unsigned long long timeout_ns);
int lttfs_futex_wake_shared(unsigned int *word, int count);

// A SOCK_SEQPACKET Unix socket in the abstract namespace (`name` without
// its leading NUL), close-on-exec. listen: bound and listening, or -1 with
// errno (EADDRINUSE: the name is taken). connect: connected, or -1.
int lttfs_seqpacket_listen(const char *name);
int lttfs_seqpacket_connect(const char *name);

// sendmsg of one message with up to `count` descriptors (SCM_RIGHTS),
// MSG_NOSIGNAL. Returns the bytes sent or -1 with errno.
long lttfs_send_with_fds(int socket, const void *bytes, unsigned long length, const int *fds, int count);

// recvmsg of one message into `bytes` (at most `length`) and up to
// `capacity` descriptors into `fds` (close-on-exec); *count: how many came.
// A message cut short (MSG_TRUNC, MSG_CTRUNC) is refused: the descriptors
// that came are closed and -1 returned with errno EMSGSIZE. Returns the
// bytes received (0: the peer closed) or -1 with errno.
long lttfs_recv_with_fds(int socket, void *bytes, unsigned long length, int *fds, int capacity, int *count);

// The peer's PID, UID and GID (SO_PEERCRED) as this process's namespaces
// see them. Returns 0 or -1 with errno.
int lttfs_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid);

// The peer's supplementary groups (SO_PEERGROUPS) into `groups`; returns
// how many there are (possibly more than `capacity`) or -1 with errno.
int lttfs_peer_groups(int socket, unsigned int *groups, int capacity);

// F_SEAL_FUTURE_WRITE on a sealed memfd made with lttfs_sealed_memfd_open
// (sealable, not yet F_SEAL_SEAL): nobody maps it writable any more, the
// writable mappings made before keep writing. Returns 0 or -1.
int lttfs_sealed_memfd_open(const char *name, unsigned long long size);
int lttfs_seal_future_write(int fd);

// An eventfd (close-on-exec, non-blocking), or -1.
int lttfs_eventfd(void);

// accept4(socket, NULL, NULL, SOCK_CLOEXEC), EINTR retried.
int lttfs_accept_cloexec(int socket);

// The fork epoch: moved in every child of fork(2) by the producer
// library's atfork handler, read on every event by producer views of
// shared buffers (a plain C global: no accessor call).
extern unsigned int lttfs_fork_epoch;
static inline unsigned int lttfs_fork_epoch_load(void) { return __atomic_load_n(&lttfs_fork_epoch, __ATOMIC_RELAXED); }
static inline void lttfs_fork_epoch_advance(void) { __atomic_fetch_add(&lttfs_fork_epoch, 1, __ATOMIC_RELAXED); }
