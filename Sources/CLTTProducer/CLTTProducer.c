// The C library's interface is its header (include/lttfs/producer.h); the
// functions are LTTProducerC's (Swift, @_cdecl): the tracer's own code.
#include "lttfs/producer.h"
