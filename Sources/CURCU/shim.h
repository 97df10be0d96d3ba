// Userspace RCU, "bulletproof" flavour (Debian's liburcu-dev): readers need
// no registration, which suits a library whose producers are any thread.
// rcu_dereference and rcu_xchg_pointer are macros; these wrappers are the
// only thing this shim adds.
//
// _LGPL_SOURCE selects liburcu's inline read side (a thread-local counter
// update, no call): producers enter and leave a read-side section on every
// event.
#ifndef LTTFS_CURCU_SHIM_H
#define LTTFS_CURCU_SHIM_H

#define _LGPL_SOURCE
#include <urcu/config.h>

#ifdef CONFIG_RCU_TLS
// The reader's thread-local pointer, which every read-side section reads,
// declared before urcu-bp.h does: initial-exec, a fixed offset from the
// thread pointer. In a shared library (liblttfs-producer, the C producers'
// face) the default model called __tls_get_addr on every event. liburcu-bp
// is loaded with the program (a DT_NEEDED of whatever links this), so its
// TLS is in the static block, as lttfs_tracer_nesting's is.
struct urcu_bp_reader;
extern __thread struct urcu_bp_reader *urcu_bp_reader __attribute__((tls_model("initial-exec")));
#endif

#include <urcu-bp.h>
#include <urcu/uatomic.h>

static inline void lttfs_rcu_read_lock(void) { urcu_bp_read_lock(); }
static inline void lttfs_rcu_read_unlock(void) { urcu_bp_read_unlock(); }
static inline void lttfs_synchronize_rcu(void) { urcu_bp_synchronize_rcu(); }

// Loads an RCU-protected pointer inside a read-side critical section.
static inline void *lttfs_rcu_dereference(void *const *slot) {
    return rcu_dereference(*(void **)slot);
}

// A plain load, outside any critical section: only to test for NULL.
static inline int lttfs_rcu_is_null(void *const *slot) {
    return CMM_LOAD_SHARED(*(void **)slot) == NULL;
}

// Publishes a new pointer and returns the old one (free it after a grace period).
static inline void *lttfs_rcu_xchg_pointer(void **slot, void *value) {
    return rcu_xchg_pointer(slot, value);
}

#endif
