#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include "CLinuxSupport.h"

__thread unsigned int lttfs_tracer_nesting;

int lttfs_sched_getcpu(void) { return sched_getcpu(); }
int lttfs_gettid(void) { return (int)gettid(); }
