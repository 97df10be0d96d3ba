// Linux calls that Swift's Glibc module does not import (they need
// _GNU_SOURCE), wrapped the way swift-nio's CNIOLinux does. Nothing else.
#ifndef C_LINUX_SUPPORT_H
#define C_LINUX_SUPPORT_H

// The CPU the calling thread runs on now (sched_getcpu), or -1.
int lttfs_sched_getcpu(void);

// The kernel thread id of the calling thread (gettid).
int lttfs_gettid(void);

#endif
