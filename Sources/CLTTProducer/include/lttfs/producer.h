/*
 * lttfs producer library: record events into the traces of an lttfs
 * server from any process, through shared memory (no system call per
 * event). The events go into the same per-CPU buffers as the server's own,
 * which an unmodified lttd drains.
 *
 *     #include <lttfs/producer.h>
 *
 *     lttfs_producer *p = lttfs_producer_open(NULL);       // $LTTFS_MOUNT, else /mnt/ltt
 *     lttfs_marker *m = lttfs_marker_register(p, "app", "request", "id %lu path %s");
 *     lttfs_record(m, LTTFS_UINT(42), LTTFS_STR("/index.html"));
 *     lttfs_producer_close(p);
 *
 * Build: cc prog.c $(pkg-config --cflags --libs lttfs-producer)
 *
 * Every function is safe to call from any thread. Values are given one per
 * field of the marker's format, in order: LTTFS_INT / LTTFS_UINT for the
 * integer conversions (%d %u %lu %hhx ...: stored in the field's size),
 * LTTFS_STR for %s. LTTFS_STR measures its text where it is called (a
 * literal or a constant array costs nothing to measure); the library
 * copies that many bytes, so the text must stay that long until the call
 * returns (if a NUL appears within them meanwhile, the text ends there and
 * the bytes after it are recorded as '#'), and the values themselves must
 * not change during the call. After fork(2) the child records nothing
 * through its parent's producer; it may open its own.
 */
#ifndef LTTFS_PRODUCER_H
#define LTTFS_PRODUCER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lttfs_producer lttfs_producer;
typedef struct lttfs_marker lttfs_marker;

/* One value of an event: an integer (its 64-bit pattern), or a string and
 * its length in bytes without the NUL (a NULL string records "(null)"). */
struct lttfs_value {
    union {
        uint64_t integer;
        const char *string;
    };
    uint64_t length;
};

static inline struct lttfs_value lttfs_string_value(const char *s)
{
    struct lttfs_value v;
    v.string = s;
    v.length = s ? strlen(s) : 0;
    return v;
}

#define LTTFS_INT(x) ((struct lttfs_value){ .integer = (uint64_t)(int64_t)(x) })
#define LTTFS_UINT(x) ((struct lttfs_value){ .integer = (uint64_t)(x) })
#define LTTFS_STR(s) lttfs_string_value(s)

/* Connects to the lttfs server of `mountpoint` (NULL: $LTTFS_MOUNT, else
 * /mnt/ltt). NULL on failure, with errno set; lttfs_last_error says why. */
lttfs_producer *lttfs_producer_open(const char *mountpoint);

/* Stops following the server and frees the producer. Its markers must not
 * be used after. */
void lttfs_producer_close(lttfs_producer *producer);

/* Registers channel.name with `format` (the kernel's: "pid %d comm %s")
 * with the server, which assigns its ID; a marker registered again, by any
 * process, with the same format is the same marker. NULL on failure (a
 * conflicting format: errno EINVAL), lttfs_last_error says why. The marker
 * lives as long as its producer. */
lttfs_marker *lttfs_marker_register(lttfs_producer *producer, const char *channel, const char *name,
                                    const char *format);

/* The exported symbol names the layout of struct lttfs_value it reads (2:
 * a word and a length), so that a program built against another layout
 * fails to link, or at its first call (a symbol lookup error), instead of
 * misreading its values. */
#define lttfs_record_values lttfs_record_values_2

/* Records `count` values into every active trace that records the marker.
 * 0: recorded wherever it is recorded (or nowhere to record it now);
 * -EINVAL: `count` is not the format's number of fields (nothing recorded);
 * -ENOBUFS: a trace had no room, and counted the event lost;
 * -EPERM: this process is a child of fork(2) of the one that opened the
 * producer (nothing recorded or counted: open a producer of its own). */
int lttfs_record_values(const lttfs_marker *marker, const struct lttfs_value *values, unsigned count);

/* 1 if a trace records the marker now, else 0: a guard that spares
 * forming the values. */
int lttfs_marker_is_recording(const lttfs_marker *marker);

/* lttfs_record(marker, LTTFS_UINT(1), LTTFS_STR("x")) */
#define lttfs_record(marker, ...)                                                                      \
    lttfs_record_values((marker), (const struct lttfs_value[]){ __VA_ARGS__ },                        \
                        (unsigned)(sizeof((const struct lttfs_value[]){ __VA_ARGS__ }) / sizeof(struct lttfs_value)))

/* The message of this process's last failure (open, register), copied
 * into `buffer` (NUL-terminated, cut to `size`); its full length. */
size_t lttfs_last_error(char *buffer, size_t size);

#ifdef __cplusplus
}
#endif

#endif
