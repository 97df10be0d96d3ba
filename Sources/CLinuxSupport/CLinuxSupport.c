#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <spawn.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/eventfd.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <time.h>
#include "CLinuxSupport.h"

__thread unsigned int lttfs_tracer_nesting __attribute__((tls_model("initial-exec")));

int lttfs_sched_getcpu(void) { return sched_getcpu(); }
int lttfs_gettid(void) { return (int)gettid(); }

int lttfs_ioctl_u32(int fd, unsigned long request, unsigned int *argument)
{
	return ioctl(fd, request, argument);
}

int lttfs_ioctl_none(int fd, unsigned long request)
{
	return ioctl(fd, request);
}

int lttfs_ioctl_bytes(int fd, unsigned long request, void *argument)
{
	return ioctl(fd, request, argument);
}

long lttfs_splice(int fd_in, long long *offset, int fd_out, unsigned long length, unsigned int flags)
{
	__off64_t off = offset ? (__off64_t)*offset : 0;
	ssize_t n = splice(fd_in, offset ? &off : NULL, fd_out, NULL, length, flags);
	if (offset)
		*offset = (long long)off;
	return (long)n;
}

int lttfs_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

extern char **environ;

int lttfs_spawn(const char *path, char *const argv[], int detached)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attributes;
	sigset_t none, all;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&actions);
	if (detached) {
		posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addclosefrom_np(&actions, 3);
		flags |= POSIX_SPAWN_SETSID;
	}
	posix_spawnattr_init(&attributes);
	/* No signal blocked, every one at its default action: the caller may
	 * block the termination signals (a server and lttfs consume do). */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attributes, &none);
	posix_spawnattr_setsigdefault(&attributes, &all);
	posix_spawnattr_setflags(&attributes, flags);
	rc = detached ? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
		      : posix_spawnp(&pid, path, &actions, &attributes, argv, environ);
	posix_spawnattr_destroy(&attributes);
	posix_spawn_file_actions_destroy(&actions);
	return rc == 0 ? (int)pid : -rc;
}

void lttfs_close_descriptors_from(int lowest, int keep)
{
	if (keep < lowest) {
		close_range((unsigned)lowest, ~0u, 0);
		return;
	}
	if (keep > lowest)
		close_range((unsigned)lowest, (unsigned)keep - 1, 0);
	close_range((unsigned)keep + 1, ~0u, 0);
}

static void lttfs_wake_handler(int sig)
{
	(void)sig;
}

static int lttfs_wake_number;

static void lttfs_wake_install(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof action);
	action.sa_handler = lttfs_wake_handler;
	sigemptyset(&action.sa_mask);
	action.sa_flags = 0; /* no SA_RESTART: the blocking call returns EINTR */
	lttfs_wake_number = SIGRTMIN + 7;
	sigaction(lttfs_wake_number, &action, NULL);
}

int lttfs_wake_signal(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, lttfs_wake_install);
	return lttfs_wake_number;
}

int lttfs_wake_signal_accept(void)
{
	int number = lttfs_wake_signal();
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, number);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return number;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LTTFS_THREAD_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define LTTFS_THREAD_SANITIZER 1
#endif

#ifdef LTTFS_THREAD_SANITIZER
void __tsan_acquire(void *address);
void __tsan_release(void *address);
void lttfs_tsan_acquire(void *address) { __tsan_acquire(address); }
void lttfs_tsan_release(void *address) { __tsan_release(address); }
#else
void lttfs_tsan_acquire(void *address) { (void)address; }
void lttfs_tsan_release(void *address) { (void)address; }
#endif

const char *lttfs_errno_name(int error)
{
	return strerrorname_np(error);
}

int lttfs_tcp_connect(const char *host, const char *port, int timeout_ms, int io_timeout_ms, int *resolve_error)
{
	struct addrinfo hints, *found = NULL, *a;
	int fd = -1, saved = ETIMEDOUT;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	*resolve_error = getaddrinfo(host, port, &hints, &found);
	if (*resolve_error != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (a = found; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int error = 0;
			socklen_t length = sizeof(error);
			int n;
			do {
				n = poll(&p, 1, timeout_ms);
			} while (n < 0 && errno == EINTR);
			if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0)
				break;
			saved = n == 0 ? ETIMEDOUT : (error ? error : errno);
		} else {
			saved = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(found);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	/* Blocking from here on, every read and write bounded. */
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	struct timeval tv = { .tv_sec = io_timeout_ms / 1000, .tv_usec = (io_timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

const char *lttfs_resolve_error(int error)
{
	return gai_strerror(error);
}

long lttfs_send_nosignal(int fd, const void *bytes, unsigned long length)
{
	return send(fd, bytes, length, MSG_NOSIGNAL);
}

// Closes `fd` keeping errno: the failure's return.
static int close_failed(int fd)
{
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

// fallocate(2) of [0, size) a piece at a time. Before Linux 6.10, shmem's
// fallocate gives up with EINTR on any pending signal, not only a fatal one
// (a profiler's SIGPROF, a program's timers): an interrupted piece is tried
// again, halved each time (the kernel undoes only that call's range), and
// only a signal that comes faster than 64 KiB can be filled ends it.
static int fallocate_pieces(int fd, unsigned long long size)
{
	unsigned long long done = 0, piece = 16ull << 20;
	unsigned interrupted = 0;
	while (done < size) {
		unsigned long long n = size - done < piece ? size - done : piece;
		if (fallocate(fd, 0, (off_t)done, (off_t)n) == 0) {
			done += n;
			interrupted = 0;
			continue;
		}
		if (errno != EINTR || ++interrupted > 64)
			return -1;
		if (piece > (64ull << 10))
			piece /= 2;
	}
	return 0;
}

int lttfs_sealed_memfd(const char *name, unsigned long long size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) != 0)
		return close_failed(fd);
	// Every page allocated now (shmem's fallocate), and charged to this
	// process's memory cgroup, instead of at first touch to whichever
	// producer process writes it first, inside an event.
	if (fallocate_pieces(fd, size) != 0 && errno != EOPNOTSUPP)
		return close_failed(fd);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		return close_failed(fd);
	return fd;
}

int lttfs_get_seals(int fd)
{
	return fcntl(fd, F_GET_SEALS);
}

int lttfs_futex_wait_shared(unsigned int *word, unsigned int expected, unsigned long long timeout_ns)
{
	struct timespec timeout = { (time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull) };
	return (int)syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout_ns ? &timeout : NULL, NULL, 0);
}

int lttfs_futex_wake_shared(unsigned int *word, int count)
{
	return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}

// A SOCK_SEQPACKET socket and the abstract address `name`, or -1 with errno.
static int abstract_socket(const char *name, struct sockaddr_un *address, socklen_t *size)
{
	size_t length = strlen(name);
	memset(address, 0, sizeof *address);
	address->sun_family = AF_UNIX;
	if (length + 1 > sizeof address->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(address->sun_path + 1, name, length);
	*size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
	return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
}

int lttfs_seqpacket_listen(const char *name)
{
	struct sockaddr_un address;
	socklen_t size;
	int fd = abstract_socket(name, &address, &size);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&address, size) != 0 || listen(fd, 64) != 0)
		return close_failed(fd);
	return fd;
}

int lttfs_seqpacket_connect(const char *name)
{
	struct sockaddr_un address;
	socklen_t size;
	int fd = abstract_socket(name, &address, &size);
	if (fd < 0)
		return -1;
	while (connect(fd, (struct sockaddr *)&address, size) != 0) {
		if (errno != EINTR)
			return close_failed(fd);
	}
	return fd;
}

long lttfs_send_with_fds(int socket, const void *bytes, unsigned long length, const int *fds, int count)
{
	struct iovec io = { (void *)bytes, length };
	struct msghdr message = { 0 };
	message.msg_iov = &io;
	message.msg_iovlen = 1;
	char control[CMSG_SPACE(sizeof(int) * 253)];
	if (count > 253) {
		errno = EINVAL;
		return -1;
	}
	if (count > 0) {
		memset(control, 0, sizeof control);
		message.msg_control = control;
		message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
		struct cmsghdr *header = CMSG_FIRSTHDR(&message);
		header->cmsg_level = SOL_SOCKET;
		header->cmsg_type = SCM_RIGHTS;
		header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
		memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
	}
	long sent;
	do {
		sent = sendmsg(socket, &message, MSG_NOSIGNAL);
	} while (sent < 0 && errno == EINTR);
	return sent;
}

long lttfs_recv_with_fds(int socket, void *bytes, unsigned long length, int *fds, int capacity, int *count)
{
	struct iovec io = { bytes, length };
	struct msghdr message = { 0 };
	char control[CMSG_SPACE(sizeof(int) * 253)];
	message.msg_iov = &io;
	message.msg_iovlen = 1;
	message.msg_control = control;
	message.msg_controllen = sizeof control;
	*count = 0;
	long received;
	do {
		received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
	} while (received < 0 && errno == EINTR);
	if (received < 0)
		return -1;
	int got = 0;
	int extra = 0;
	for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
		if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *incoming = (int *)CMSG_DATA(header);
		for (int i = 0; i < n; i++) {
			if (got < capacity)
				fds[got++] = incoming[i];
			else {
				close(incoming[i]);
				extra = 1;
			}
		}
	}
	if (extra || (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		errno = EMSGSIZE;
		return -1;
	}
	*count = got;
	return received;
}

int lttfs_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid)
{
	struct ucred credentials;
	socklen_t size = sizeof credentials;
	if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0)
		return -1;
	*pid = credentials.pid;
	*uid = credentials.uid;
	*gid = credentials.gid;
	return 0;
}

int lttfs_peer_groups(int socket, unsigned int *groups, int capacity)
{
	socklen_t size = (socklen_t)(sizeof(gid_t) * (size_t)capacity);
	if (getsockopt(socket, SOL_SOCKET, SO_PEERGROUPS, groups, &size) != 0) {
		if (errno == ERANGE)
			return (int)(size / sizeof(gid_t));
		return -1;
	}
	return (int)(size / sizeof(gid_t));
}

int lttfs_sealed_memfd_open(const char *name, unsigned long long size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
		return close_failed(fd);
	return fd;
}

int lttfs_seal_future_write(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
}

int lttfs_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int lttfs_accept_cloexec(int socket)
{
	int fd;
	do {
		fd = accept4(socket, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	return fd;
}

unsigned int lttfs_fork_epoch;
