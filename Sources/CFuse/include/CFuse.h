// The C shim over libfuse3's low-level API: FUSE_USE_VERSION, and the
// macros and bitfields Swift cannot import. Nothing else lives here.
#ifndef LTTFS_CFUSE_H
#define LTTFS_CFUSE_H

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

// fuse_session_new over argv, without FUSE_ARGS_INIT on the Swift side.
struct fuse_session *lttfs_fuse_session_new(int argc, char **argv,
                                            const struct fuse_lowlevel_ops *ops,
                                            size_t ops_size, void *userdata);

// fuse_session_loop_mt is a macro over fuse_session_loop_mt_312 in 3.14.
// Runs the multithreaded loop with at most max_threads workers.
int lttfs_fuse_session_loop_mt(struct fuse_session *se, unsigned max_threads,
                               unsigned max_idle_threads);

// fuse_lowlevel_notify_store of one contiguous buffer (FUSE_BUFVEC_INIT is
// a macro): puts `size` bytes at `offset` of `ino` into the page cache.
int lttfs_fuse_notify_store(struct fuse_session *se, fuse_ino_t ino, off_t offset,
                            const void *data, size_t size);

// The fuse_file_info bitfields an open handler sets.
void lttfs_fi_set_direct_io(struct fuse_file_info *fi, int on);
void lttfs_fi_set_keep_cache(struct fuse_file_info *fi, int on);
void lttfs_fi_set_nonseekable(struct fuse_file_info *fi, int on);

#endif
