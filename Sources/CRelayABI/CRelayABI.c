// The shared relay buffer's layout is a header only (include/lttfs_relay_abi.h).
#include "lttfs_relay_abi.h"
