/*
 * bench-ust THREADS EVENTS: records EVENTS tracepoints per thread, all
 * threads started together, and prints the mean ns per event per thread.
 * With no session enabled it measures the disabled tracepoint.
 */
#define _GNU_SOURCE
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "bench_tp.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long events;
static pthread_barrier_t barrier;
static const char text[28] = "twenty-seven bytes of text.";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *worker(void *arg)
{
	double *ns = arg, t0;
	long i;

	pthread_barrier_wait(&barrier);
	t0 = now();
	for (i = 0; i < events; i++)
		tracepoint(bench, event, (int)i, text);
	*ns = (now() - t0) / events;
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
	pthread_barrier_init(&barrier, NULL, threads);
	for (i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, &ns[i]);
	for (i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		sum += ns[i];
	}
	printf("ns_per_event=%.2f\n", sum / threads);
	return 0;
}
