/* The LTTng-UST side of the comparison: one tracepoint with the same
 * 32-byte payload as lttfs's benchmark marker (an int and a 28-byte text). */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER bench

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./bench_tp.h"

#if !defined(BENCH_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define BENCH_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(bench, event,
	TP_ARGS(int, n, const char *, text),
	TP_FIELDS(
		ctf_integer(int, n, n)
		ctf_array_text(char, text, text, 28)
	)
)

#endif

#include <lttng/tracepoint-event.h>
