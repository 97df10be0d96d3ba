/*
 * bench-producer THREADS EVENTS: the C producer process of compare.sh.
 * Records EVENTS events per thread through liblttfs-producer into the
 * mount at $LTTFS_MOUNT (the same 32-byte payload as bench-ust: an int and
 * a 28-byte text), all threads started together, and prints the mean ns
 * per event per thread and the allocations per event (malloc and its kin,
 * counted by MallocCounter.c, built with it, around the recording loops).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <lttfs/producer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../Sources/MallocCounter/include/MallocCounter.h"   /* compiled with it: malloc and its kin counted */

static long events;
static pthread_barrier_t barrier;
static lttfs_marker *marker;
static const char text[28] = "twenty-seven bytes of text.";
static long lost;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *worker(void *arg)
{
	double *ns = arg, t0;
	long i, mine = 0;

	pthread_barrier_wait(&barrier);
	t0 = now();
	for (i = 0; i < events; i++)
		if (lttfs_record(marker, LTTFS_INT((int)i), LTTFS_STR(text)) != 0)
			mine++;
	*ns = (now() - t0) / events;
	__atomic_fetch_add(&lost, mine, __ATOMIC_RELAXED);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 1, i;
	pthread_t tid[64];
	double ns[64], sum = 0;

	events = argc > 2 ? atol(argv[2]) : 1000000;
	if (threads < 1 || threads > 64)
		return 2;
	lttfs_producer *producer = lttfs_producer_open(NULL);
	if (!producer || !(marker = lttfs_marker_register(producer, "bench", "event", "n %d text %s"))) {
		char why[256];
		lttfs_last_error(why, sizeof why);
		fprintf(stderr, "bench-producer: %s\n", why);
		return 1;
	}
	pthread_barrier_init(&barrier, NULL, threads + 1);
	for (i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, &ns[i]);
	unsigned long long before = malloc_counter_calls();
	pthread_barrier_wait(&barrier);
	for (i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		sum += ns[i];
	}
	unsigned long long after = malloc_counter_calls();
	lttfs_producer_close(producer);
	printf("ns_per_event=%.2f allocs_per_event=%.4f producer_lost=%ld\n", sum / threads,
	       (double)(after - before) / ((double)events * threads), lost);
	return 0;
}
