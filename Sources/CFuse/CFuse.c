#include <stddef.h>
#include "CFuse.h"

struct fuse_session *lttfs_fuse_session_new(int argc, char **argv,
                                            const struct fuse_lowlevel_ops *ops,
                                            size_t ops_size, void *userdata)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_session *se = fuse_session_new(&args, ops, ops_size, userdata);
	fuse_opt_free_args(&args);
	return se;
}

int lttfs_fuse_session_loop_mt(struct fuse_session *se, unsigned max_threads,
                               unsigned max_idle_threads)
{
	struct fuse_loop_config *config = fuse_loop_cfg_create();
	int ret;

	if (!config)
		return -1;
	fuse_loop_cfg_set_clone_fd(config, 0);
	fuse_loop_cfg_set_max_threads(config, max_threads);
	fuse_loop_cfg_set_idle_threads(config, max_idle_threads);
	ret = fuse_session_loop_mt(se, config);
	fuse_loop_cfg_destroy(config);
	return ret;
}

void lttfs_fi_set_direct_io(struct fuse_file_info *fi, int on) { fi->direct_io = on ? 1 : 0; }
void lttfs_fi_set_keep_cache(struct fuse_file_info *fi, int on) { fi->keep_cache = on ? 1 : 0; }
void lttfs_fi_set_nonseekable(struct fuse_file_info *fi, int on) { fi->nonseekable = on ? 1 : 0; }

int lttfs_fuse_notify_store(struct fuse_session *se, fuse_ino_t ino, off_t offset,
                            const void *data, size_t size)
{
	struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);

	bufv.buf[0].mem = (void *)data;
	return fuse_lowlevel_notify_store(se, ino, offset, &bufv, 0);
}
