#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <spawn.h>
#include "CLinuxSupport.h"

__thread unsigned int lttfs_tracer_nesting;

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

long lttfs_splice(int fd_in, long long *offset, int fd_out, unsigned long length, unsigned int flags)
{
	__off64_t off = offset ? (__off64_t)*offset : 0;
	ssize_t n = splice(fd_in, offset ? &off : NULL, fd_out, NULL, length, flags);
	if (offset)
		*offset = (long long)off;
	return (long)n;
}

int lttfs_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

short lttfs_posix_spawn_setsid(void) { return POSIX_SPAWN_SETSID; }
