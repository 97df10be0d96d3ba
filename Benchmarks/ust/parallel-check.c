/* Times a plain arithmetic loop on 1 and on 2 threads: if 2 threads take
 * much longer each than 1, the machine cannot run them in parallel now. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static volatile unsigned long sink;

static void *spin(void *arg)
{
	unsigned long x = 1, i;
	(void)arg;
	for (i = 0; i < 300000000UL; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	sink = x;
	return NULL;
}

static double run(int n)
{
	struct timespec a, b;
	pthread_t t[2];
	int i;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) pthread_create(&t[i], NULL, spin, NULL);
	for (i = 0; i < n; i++) pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(void)
{
	double one = run(1), two = run(2);
	printf("one=%.3f two=%.3f ratio=%.2f\n", one, two, two / one);
	return 0;
}
