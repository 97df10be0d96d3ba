/*
 * lttd-conform: lttfs's own strict lttd-style consumer.
 *
 * It drains a trace directory served by lttfs exactly the way the 2009
 * lttd (ltt-control 0.6x) does, and fails loudly wherever lttd would
 * silently lose data, hang, or write a trace no viewer accepts:
 *
 *  - Walk TRACEDIR recursively; every regular file (names starting with
 *    '.' skipped) is a channel buffer, mirrored under OUTDIR.  Anything
 *    else than buffers under the trace directory would be read as a
 *    buffer by lttd, and no buffer at all is a failure.
 *  - Per buffer, right after open(O_RDONLY|O_NONBLOCK): a second open must
 *    fail with EBUSY (one reader per buffer), an O_WRONLY open with EACCES,
 *    an unknown ioctl with ENOTTY; RELAY_GET_N_SUBBUFS must be a power of
 *    two >= 2 and RELAY_GET_SUBBUF_SIZE a power of two >= 4096.
 *  - One poll() over all buffers, events POLLIN|POLLPRI, then an EXACT
 *    switch on revents as lttd does: a combined mask (e.g. POLLIN|POLLHUP)
 *    matches no case, so lttd would never read that buffer: FAIL.
 *    POLLERR and POLLNVAL are failures.  POLLPRI buffers are read at once;
 *    POLLIN buffers only when no buffer was urgent.  The loop ends when
 *    every buffer has reported POLLHUP; after POLLHUP a RELAY_GET_SUBBUF
 *    must not succeed (lttd would stop and lose that sub-buffer).
 *  - One sub-buffer: RELAY_GET_SUBBUF (EAGAIN is normal and counted),
 *    splice with an explicit offset from 0 through a pipe, like lttd: a
 *    splice returning 0 inside a held sub-buffer makes lttd spin forever,
 *    an error or an offset that does not advance is a failure.  Then
 *    RELAY_PUT_SUBBUF: EIO ("pushed by the writer") is counted and is a
 *    failure unless the buffer is a flight-recorder one ("flight-*").
 *  - Every copied sub-buffer header must be LTT 2.3 (magic, version, arch
 *    size, alignment, start time, frequency, lost_size closed and in range,
 *    buf_size == sub-buffer size, end >= begin), and within a buffer the
 *    begin clock, events_lost and subbuf_corrupt never go backwards.  A
 *    flight-recorder sub-buffer whose PUT returned EIO is known corrupted
 *    (the writer overwrote it while it was held) and is not checked.
 *  - A deadline (alarm) catches a missing POLLHUP, a lost wake-up or a
 *    splice loop that never ends.
 *
 * Usage: lttd-conform -c TRACEDIR -t OUTDIR [-T SECONDS] [-r READYFILE] [-q]
 *   -T  deadline in seconds (default 60, 0 = none)
 *   -r  create READYFILE once every buffer is open and checked
 *   -q  no per-buffer summary lines
 * Output: per buffer "PATH: N sub-buffers of S bytes, E EAGAIN, P EIO
 *   (pushed), B bad headers", then "OK: N buffers drained, 0 failures" or
 *   "FAIL: N buffers drained, F failures" on stdout; each failure is a
 *   line "FAIL PATH: ..." on stderr.
 * Exit: 0 every buffer drained and checked, 1 a check failed, 2 usage,
 *   3 deadline passed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/types.h>

#define RELAY_GET_SUBBUF	_IOR(0xF5, 0x00, __u32)
#define RELAY_PUT_SUBBUF	_IOW(0xF5, 0x01, __u32)
#define RELAY_GET_N_SUBBUFS	_IOR(0xF5, 0x02, __u32)
#define RELAY_GET_SUBBUF_SIZE	_IOR(0xF5, 0x03, __u32)
#define RELAY_UNKNOWN		_IOR(0xF5, 0x07, __u32)

#define LTT_MAGIC	0x00D6B7EDu
#define HEADER_SIZE	68
#define LOST_OPEN	0xFFFFFFFFu

struct buffer {
	char *path, *out;
	int fd, outfd, flight, hung_up;
	__u32 n_subbufs, subbuf_size;
	unsigned long copied, eagain, eio, bad;
	int have_prev;
	uint64_t prev_begin;
	uint32_t prev_lost, prev_corrupt;
};

static struct buffer *bufs;
static size_t nbufs, capbufs, nfound;
static unsigned long failures;
static int pipefd[2] = { -1, -1 };
static unsigned char chunk[65536];
static char deadline_msg[PATH_MAX + 256];
static size_t deadline_len;

static void fail(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(const char *path, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "FAIL %s: ", path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

static void on_deadline(int sig)
{
	(void)sig;
	(void)!write(2, deadline_msg, deadline_len);
	_exit(3);
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void xclose(int fd, const char *path)
{
	if (fd >= 0 && close(fd))
		fail(path, "close: %s", strerror(errno));
}

static int join(char *dst, const char *dir, const char *name)
{
	int n = snprintf(dst, PATH_MAX, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_MAX) {
		fail(dir, "path of entry '%s' exceeds PATH_MAX", name);
		return -1;
	}
	return 0;
}

static int make_dir(const char *dir)
{
	struct stat st;
	int err;

	if (mkdir(dir, 0755) == 0)
		return 0;
	err = errno;
	if (err == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fail(dir, "cannot create output directory: %s", strerror(err));
	return -1;
}

static int open_pipe(void)
{
	if (pipe(pipefd)) {
		fail("pipe", "pipe(): %s", strerror(errno));
		pipefd[0] = pipefd[1] = -1;
		return -1;
	}
	return 0;
}

/* After a broken transfer the pipe may hold stray bytes: start afresh. */
static void reset_pipe(void)
{
	xclose(pipefd[0], "pipe");
	xclose(pipefd[1], "pipe");
	open_pipe();
}

/* Open one buffer and its output, and run the once-per-buffer checks. */
static void open_buffer(const char *path, const char *out, const char *name)
{
	struct buffer b;
	__u32 dummy = 0;
	int fd2;

	memset(&b, 0, sizeof b);
	b.fd = open(path, O_RDONLY | O_NONBLOCK);
	if (b.fd < 0) {
		fail(path, "open(O_RDONLY|O_NONBLOCK): %s", strerror(errno));
		return;
	}
	fd2 = open(path, O_RDONLY | O_NONBLOCK);
	if (fd2 >= 0) {
		fail(path, "a second open succeeded; expected EBUSY (one reader per buffer)");
		xclose(fd2, path);
	} else if (errno != EBUSY) {
		fail(path, "a second open failed with %s; expected EBUSY", strerror(errno));
	}
	fd2 = open(path, O_WRONLY | O_NONBLOCK);
	if (fd2 >= 0) {
		fail(path, "an O_WRONLY open succeeded; expected EACCES");
		xclose(fd2, path);
	} else if (errno != EACCES) {
		fail(path, "an O_WRONLY open failed with %s; expected EACCES", strerror(errno));
	}
	if (ioctl(b.fd, RELAY_UNKNOWN, &dummy) == 0)
		fail(path, "unknown ioctl 0x%lx succeeded; expected ENOTTY",
		     (unsigned long)RELAY_UNKNOWN);
	else if (errno != ENOTTY)
		fail(path, "unknown ioctl 0x%lx failed with %s; expected ENOTTY",
		     (unsigned long)RELAY_UNKNOWN, strerror(errno));
	if (ioctl(b.fd, RELAY_GET_N_SUBBUFS, &b.n_subbufs) ||
	    ioctl(b.fd, RELAY_GET_SUBBUF_SIZE, &b.subbuf_size)) {
		fail(path, "RELAY_GET_N_SUBBUFS/RELAY_GET_SUBBUF_SIZE: %s", strerror(errno));
		xclose(b.fd, path);
		return;
	}
	if (!is_pow2(b.n_subbufs) || b.n_subbufs < 2)
		fail(path, "n_subbufs %u is not a power of two >= 2", b.n_subbufs);
	if (!is_pow2(b.subbuf_size) || b.subbuf_size < 4096)
		fail(path, "subbuf_size %u is not a power of two >= 4096", b.subbuf_size);
	if (b.subbuf_size < HEADER_SIZE) {
		fail(path, "subbuf_size %u cannot hold a header: buffer not read", b.subbuf_size);
		xclose(b.fd, path);
		return;
	}
	b.outfd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (b.outfd < 0) {
		fail(out, "cannot create output file: %s", strerror(errno));
		xclose(b.fd, path);
		return;
	}
	b.path = strdup(path);
	b.out = strdup(out);
	b.flight = strncmp(name, "flight-", 7) == 0;
	if (nbufs == capbufs) {
		size_t cap = capbufs ? 2 * capbufs : 16;
		struct buffer *nb = realloc(bufs, cap * sizeof *nb);

		if (!nb) {
			fail(path, "out of memory");
			exit(1);
		}
		bufs = nb;
		capbufs = cap;
	}
	if (!b.path || !b.out) {
		fail(path, "out of memory");
		exit(1);
	}
	bufs[nbufs++] = b;
}

/* Like lttd: every regular file below dir is a buffer. */
static void walk(const char *dir, const char *outdir)
{
	DIR *d;

	if (make_dir(outdir))
		return;
	d = opendir(dir);
	if (!d) {
		fail(dir, "opendir: %s", strerror(errno));
		return;
	}
	for (;;) {
		char path[PATH_MAX], out[PATH_MAX];
		struct dirent *e;
		struct stat st;

		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno)
				fail(dir, "readdir: %s", strerror(errno));
			break;
		}
		if (e->d_name[0] == '.')
			continue;
		if (join(path, dir, e->d_name) || join(out, outdir, e->d_name))
			continue;
		if (stat(path, &st)) {
			fail(path, "stat: %s", strerror(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			walk(path, out);
		} else if (S_ISREG(st.st_mode)) {
			nfound++;
			open_buffer(path, out, e->d_name);
		}
	}
	if (closedir(d))
		fail(dir, "closedir: %s", strerror(errno));
}

/* LTT 2.3 sub-buffer header, host byte order. */
static void check_header(struct buffer *b, const unsigned char *h, __u32 cookie)
{
	uint64_t begin, end, sec, usec, freq;
	uint32_t magic, scale, lost, size, evlost, corrupt;
	char what[200] = "";

	memcpy(&begin, h + 0, 8);
	memcpy(&end, h + 8, 8);
	memcpy(&magic, h + 16, 4);
	memcpy(&sec, h + 24, 8);
	memcpy(&usec, h + 32, 8);
	memcpy(&freq, h + 40, 8);
	memcpy(&scale, h + 48, 4);
	memcpy(&lost, h + 52, 4);
	memcpy(&size, h + 56, 4);
	memcpy(&evlost, h + 60, 4);
	memcpy(&corrupt, h + 64, 4);
	(void)sec;
#define BAD(...) do { if (!what[0]) snprintf(what, sizeof what, __VA_ARGS__); } while (0)
	if (magic != LTT_MAGIC)
		BAD("magic_number = 0x%08x, expected 0x%08x", magic, LTT_MAGIC);
	if (h[20] != 2 || h[21] != 3)
		BAD("version = %u.%u, expected 2.3", h[20], h[21]);
	if (h[22] != sizeof(void *))
		BAD("arch_size = %u, expected %zu", h[22], sizeof(void *));
	if (h[23] != 0 && h[23] != sizeof(void *))
		BAD("alignment = %u, expected 0 or %zu", h[23], sizeof(void *));
	if (usec >= 1000000)
		BAD("start_time_usec = %llu, expected < 1000000", (unsigned long long)usec);
	if (freq == 0)
		BAD("start_freq = 0, expected non-zero");
	if (scale == 0)
		BAD("freq_scale = 0, expected >= 1");
	if (lost == LOST_OPEN)
		BAD("lost_size = 0xffffffff: the sub-buffer was handed out while still open");
	else if (lost > b->subbuf_size - HEADER_SIZE)
		BAD("lost_size = %u, expected <= %u", lost, b->subbuf_size - HEADER_SIZE);
	if (size != b->subbuf_size)
		BAD("buf_size = %u, expected %u", size, b->subbuf_size);
	if (end < begin)
		BAD("cycle_count_end = %llu < cycle_count_begin = %llu",
		    (unsigned long long)end, (unsigned long long)begin);
	if (b->have_prev && begin < b->prev_begin)
		BAD("cycle_count_begin = %llu went backwards from %llu",
		    (unsigned long long)begin, (unsigned long long)b->prev_begin);
	if (b->have_prev && evlost < b->prev_lost)
		BAD("events_lost = %u decreased from %u", evlost, b->prev_lost);
	if (b->have_prev && corrupt < b->prev_corrupt)
		BAD("subbuf_corrupt = %u decreased from %u", corrupt, b->prev_corrupt);
#undef BAD
	if (magic == LTT_MAGIC) {
		b->have_prev = 1;
		b->prev_begin = begin;
		b->prev_lost = evlost;
		b->prev_corrupt = corrupt;
	}
	if (what[0] && b->bad++ == 0)
		fail(b->path, "sub-buffer %lu (cookie 0x%08x): bad header: %s",
		     b->copied, cookie, what);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* lttd's read_subbuffer(): GET, splice with an explicit offset, PUT. */
static void read_subbuffer(struct buffer *b)
{
	unsigned char header[HEADER_SIZE];
	size_t have = 0, len = b->subbuf_size;
	loff_t off = 0;
	int write_ok = 1, pushed = 0;
	__u32 cookie;

	if (ioctl(b->fd, RELAY_GET_SUBBUF, &cookie)) {
		if (errno == EAGAIN)
			b->eagain++;	/* lttd: "Reserving sub buffer failed (everything is normal...)" */
		else
			fail(b->path, "RELAY_GET_SUBBUF: %s", strerror(errno));
		return;
	}
	while (len > 0) {
		loff_t before = off;
		ssize_t n = splice(b->fd, &off, pipefd[1], NULL, len, SPLICE_F_MOVE);
		size_t left;

		if (n == 0) {
			fail(b->path, "sub-buffer %lu: splice returned 0 at offset %lld of %u "
			     "inside a held sub-buffer: lttd would spin here forever",
			     b->copied, (long long)before, b->subbuf_size);
			break;
		}
		if (n < 0) {
			fail(b->path, "sub-buffer %lu: splice at offset %lld: %s (lttd: \"Error in relay splice\")",
			     b->copied, (long long)before, strerror(errno));
			reset_pipe();
			break;
		}
		if (off != before + n) {
			fail(b->path, "sub-buffer %lu: splice of %zd bytes moved the offset from %lld to %lld",
			     b->copied, n, (long long)before, (long long)off);
			off = before + n;
		}
		for (left = (size_t)n; left > 0; ) {
			ssize_t r = read(pipefd[0], chunk, left < sizeof chunk ? left : sizeof chunk);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				fail(b->path, "reading the splice pipe: %s", r ? strerror(errno) : "EOF");
				reset_pipe();
				goto put;
			}
			if (have < HEADER_SIZE) {
				size_t take = HEADER_SIZE - have;

				if (take > (size_t)r)
					take = (size_t)r;
				memcpy(header + have, chunk, take);
				have += take;
			}
			if (write_ok && write_all(b->outfd, chunk, (size_t)r)) {
				fail(b->out, "write: %s", strerror(errno));
				write_ok = 0;
			}
			left -= (size_t)r;
		}
		len -= (size_t)n;
	}
put:
	if (ioctl(b->fd, RELAY_PUT_SUBBUF, &cookie)) {
		if (errno == EIO) {
			/* lttd: "Reader has been pushed by the writer, last subbuffer corrupted." */
			b->eio++;
			pushed = 1;
			if (!b->flight)
				fail(b->path, "sub-buffer %lu (cookie 0x%08x): RELAY_PUT_SUBBUF returned EIO: "
				     "a normal-mode buffer was pushed by the writer", b->copied, cookie);
		} else {
			fail(b->path, "RELAY_PUT_SUBBUF (cookie 0x%08x): %s", cookie, strerror(errno));
		}
	}
	if (have == HEADER_SIZE && !(pushed && b->flight))
		check_header(b, header, cookie);
	b->copied++;
}

/* POLLHUP: everything must have been consumed, since lttd stops here. */
static void hang_up(struct buffer *b, struct pollfd *p)
{
	__u32 cookie;

	b->hung_up = 1;
	p->fd = -1;
	if (ioctl(b->fd, RELAY_GET_SUBBUF, &cookie) == 0) {
		fail(b->path, "RELAY_GET_SUBBUF succeeded after POLLHUP (cookie 0x%08x): "
		     "lttd would stop and lose this sub-buffer", cookie);
		if (ioctl(b->fd, RELAY_PUT_SUBBUF, &cookie))
			fail(b->path, "RELAY_PUT_SUBBUF after POLLHUP: %s", strerror(errno));
	}
}

static int finish(int quiet)
{
	size_t i, drained = 0;

	for (i = 0; i < nbufs; i++) {
		struct buffer *b = &bufs[i];

		if (b->bad > 1)
			fail(b->path, "%lu more bad headers after the first", b->bad - 1);
		if (!quiet)
			printf("%s: %lu sub-buffers of %u bytes, %lu EAGAIN, %lu EIO (pushed), "
			       "%lu bad headers\n", b->path, b->copied, b->subbuf_size,
			       b->eagain, b->eio, b->bad);
		drained += b->hung_up;
		xclose(b->fd, b->path);
		xclose(b->outfd, b->out);
		free(b->path);
		free(b->out);
	}
	free(bufs);
	xclose(pipefd[0], "pipe");
	xclose(pipefd[1], "pipe");
	printf("%s: %zu buffers drained, %lu failures\n",
	       failures ? "FAIL" : "OK", drained, failures);
	if (fflush(stdout) == EOF)
		return 1;
	return failures ? 1 : 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s -c TRACEDIR -t OUTDIR [-T SECONDS] [-r READYFILE] [-q]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *tracedir = NULL, *outdir = NULL, *ready = NULL;
	unsigned long deadline = 60;
	struct sigaction sa;
	struct pollfd *pfd;
	size_t i, active;
	__u32 max_size = 0;
	int opt, quiet = 0;
	char *end;

	while ((opt = getopt(argc, argv, "c:t:T:r:q")) != -1) {
		switch (opt) {
		case 'c': tracedir = optarg; break;
		case 't': outdir = optarg; break;
		case 'r': ready = optarg; break;
		case 'q': quiet = 1; break;
		case 'T':
			errno = 0;
			deadline = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || deadline > UINT_MAX)
				usage(argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (!tracedir || !outdir || optind != argc)
		usage(argv[0]);

	snprintf(deadline_msg, sizeof deadline_msg, "FAIL %.*s: deadline of %lu s passed: buffers "
		 "not drained (no POLLHUP, a lost wake-up, or a splice that never ends)\n",
		 PATH_MAX, tracedir, deadline);
	deadline_len = strlen(deadline_msg);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_deadline;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL)) {
		perror("sigaction");
		return 1;
	}
	alarm((unsigned)deadline);

	walk(tracedir, outdir);
	if (nfound == 0)
		fail(tracedir, "no buffer file found");
	if (nbufs == 0)
		return finish(quiet);
	if (open_pipe())
		return finish(quiet);
	for (i = 0; i < nbufs; i++)
		if (bufs[i].subbuf_size > max_size)
			max_size = bufs[i].subbuf_size;
	/* One sub-buffer per splice if the pipe can hold it, else as large as
	 * allowed (EPERM above pipe-max-size): the splice loop copes. */
	while (max_size > 65536 && max_size <= INT_MAX &&
	       fcntl(pipefd[1], F_SETPIPE_SZ, (int)max_size) < 0)
		max_size /= 2;
	pfd = calloc(nbufs, sizeof *pfd);
	if (!pfd) {
		fail(tracedir, "out of memory");
		return finish(quiet);
	}
	for (i = 0; i < nbufs; i++) {
		pfd[i].fd = bufs[i].fd;
		pfd[i].events = POLLIN | POLLPRI;
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			fail(ready, "cannot create ready file: %s", strerror(errno));
		else
			xclose(fd, ready);
	}

	for (active = nbufs; active > 0; ) {
		int urgent = 0;

		if (poll(pfd, nbufs, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail(tracedir, "poll: %s", strerror(errno));
			break;
		}
		for (i = 0; i < nbufs; i++) {
			struct buffer *b = &bufs[i];

			if (pfd[i].fd < 0)
				continue;
			switch (pfd[i].revents) {
			case 0:
			case POLLIN:
				break;
			case POLLPRI:
				urgent = 1;
				read_subbuffer(b);
				break;
			case POLLHUP:
				hang_up(b, &pfd[i]);
				active--;
				break;
			case POLLERR:
			case POLLNVAL:
				fail(b->path, "poll returned %s", pfd[i].revents == POLLERR ?
				     "POLLERR" : "POLLNVAL");
				pfd[i].fd = -1;
				active--;
				break;
			default:
				fail(b->path, "poll returned revents 0x%x, a combination that lttd's "
				     "exact switch (revents) would silently skip: this buffer would "
				     "never be read", (unsigned)(unsigned short)pfd[i].revents);
				free(pfd);
				return finish(quiet);
			}
		}
		if (!urgent)
			for (i = 0; i < nbufs; i++)
				if (pfd[i].fd >= 0 && pfd[i].revents == POLLIN)
					read_subbuffer(&bufs[i]);
	}
	free(pfd);
	return finish(quiet);
}
