// The shared relay buffer: what the server and every producer process map.
//
// One buffer (one channel's ring for one CPU) is one memfd:
//
//   [ struct lttfs_ring_control | commit counts | event counts | pad ][ ring bytes ]
//   0                                                     data_offset  data_offset + alloc_size
//
// The server creates it, writes the identity fields, seals its size
// (F_SEAL_SHRINK | F_SEAL_GROW: nobody can make the server's own accesses
// fault) and hands producers a descriptor. Everything below `lock` is the
// seed's ring state (ltt-relay-locked.c's `struct ltt_channel_buf_struct`),
// changed only with `lock` held, by the server and by producers alike.
//
// The server trusts none of it: a producer may write anything anywhere in
// the mapping. Every position the server uses is masked into the ring, every
// loop it runs over the state is bounded, and a state that breaks the ring's
// invariants finalizes the buffer (RelayRing.stateIsPossible).
//
// Plain C, so that the layout is fixed whatever compiles the code that maps
// it; the algorithm over it is LTTRelay's RelayRing, the one implementation.
#ifndef LTTFS_RELAY_ABI_H
#define LTTFS_RELAY_ABI_H

#include <stdint.h>

#define LTTFS_RING_MAGIC 0x4C545446u /* "LTTF" */
#define LTTFS_RING_VERSION 2u
/* Cache lines are 64 bytes; x86 prefetches them in pairs. */
#define LTTFS_RING_LINE 128

struct lttfs_ring_control {
    /* Written once by the server, before the buffer is shared. */
    uint32_t magic;
    uint32_t version;
    uint64_t subbuffer_size;
    uint64_t subbuffer_count;
    uint64_t data_offset;
    uint32_t overwrite;
    uint32_t cpu;
    uint8_t identity_pad[LTTFS_RING_LINE - 40];

    /* What every event touches, on one line. The seed's spinlock: 0 when
     * free, else the PID of the process that holds it (the owner is found
     * dead by its PID: RelayLock). */
    uint32_t lock;
    uint32_t finalized;
    /* The ring (RelayRing), with `lock` held. */
    uint64_t offset;
    uint64_t last_tsc;
    uint64_t events_written;
    /* The slot the lock's holder reserved and has not committed yet
     * (`pending_size` 0: none): written before `offset` moves, cleared
     * after the commit. Whoever takes the lock over from a dead holder
     * finds the slot here and closes its sub-buffer just before it
     * (RelayRing.repairAbandonedSlot). `pending_old`: `offset` before the
     * reservation, to close the sub-buffer it left if it switched. */
    uint64_t pending_begin;
    uint64_t pending_size;
    uint64_t pending_old;
    /* Set by a delivery (`ltt_deliver`); whoever wakes readers clears it. */
    uint32_t wakeup_readers;
    /* The sub-buffer a reader took (GET) and has not given back (PUT), if
     * `held`, at `held_position`. */
    uint32_t held;
    uint64_t events_lost;
    uint64_t subbuffers_delivered;
    uint64_t consumed;
    /* 1 while the trace records into this buffer, written with `lock`
     * held: a writer that takes the lock and finds 0 records nothing and
     * counts nothing (a producer process whose view of the traces is not
     * yet up to date, after stop or destroy). The server's stop returns
     * once every data buffer says 0. */
    uint32_t recording;
    uint8_t hot_pad[LTTFS_RING_LINE - 92];

    /* The rest of the ring's state, with `lock` held. */
    uint64_t corrupted_subbuffers;
    uint64_t subbuffers_consumed;
    uint64_t subbuffers_overwritten;
    uint64_t events_overwritten;
    uint64_t held_position;
    /* Locks taken back from a holder found dead. */
    uint64_t locks_recovered;
    uint8_t cold_pad[LTTFS_RING_LINE - 48];

    /* Waits for room (`ltt_relay_user_blocking`), outside the lock: a
     * futex word that every PUT, finalize and end of waits bumps. */
    uint32_t writer_generation;
    uint32_t writer_waiters;
    /* Set while the trace does not record: waits end at once. */
    uint32_t waits_ended;
    /* A wait ran out of time: writers whose policy says so lose at once
     * until the reader frees a sub-buffer. */
    uint32_t reader_stalled;
    /* Readers with the buffer file open (0 or 1). */
    uint32_t readers;
    /* Events lost without the lock (nested, or the lock jammed), added
     * atomically by any process; folded into events_lost by the next
     * holder of the lock. */
    uint64_t lost_outside_lock;
    /* A producer process delivered a sub-buffer (its `wakeup_readers`
     * moved here, outside the lock) and told the server; the server takes
     * it and wakes the buffer's readers. */
    uint32_t remote_wakeup;
    /* Set by the server when it gives the buffer up (its state impossible,
     * its lock kept past finalize): a reader working the ring in another
     * process asks the buffer file instead, which hangs up. */
    uint32_t given_up;
    uint8_t wait_pad[LTTFS_RING_LINE - 40];
};

_Static_assert(sizeof(struct lttfs_ring_control) == 4 * LTTFS_RING_LINE, "the control block is four line pairs");

/* The producers' page: one per server, mapped read-only by every producer
 * process (the server seals it against writable mappings). `generation`
 * moves at every change of the server's traces (alloc, start, stop,
 * destroy) and is a futex word: a producer's watcher thread sleeps on it,
 * then asks the server for its traces. */
#define LTTFS_PRODUCERS_MAGIC 0x4C545450u /* "LTTP" */
struct lttfs_producers_page {
    uint32_t magic;
    uint32_t version;
    uint32_t generation;
    uint32_t pad;
};

#endif
