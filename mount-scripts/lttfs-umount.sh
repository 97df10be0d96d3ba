#!/usr/bin/env bash
# Unmount an lttfs mount point, also when its server died and left
# "Transport endpoint is not connected": that one is lazily unmounted.
#   lttfs-umount.sh DIR
# With the lttfs command at hand (LTTFS, PATH, or this tree's release
# build), `lttfs umount`: the server lets its consumers drain what they
# read before it unmounts. Otherwise fusermount3 (the session just ends).
set -u
dir=${1:?usage: lttfs-umount.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
if ! grep -q " $(realpath -m "$dir") fuse" /proc/mounts; then
    echo "lttfs-umount: $dir is not mounted" >&2
    exit 0
fi
if ! stat "$dir" >/dev/null 2>&1; then
    echo "lttfs-umount: $dir is stale (server gone): lazy unmount" >&2
    exec fusermount3 -u -z "$dir"
fi
lttfs=${LTTFS:-$(command -v lttfs || echo "$here/../.build/release/lttfs")}
if [ -x "$lttfs" ]; then
    exec "$lttfs" umount "$dir"
fi
fusermount3 -u "$dir" 2>/dev/null || fusermount3 -u -z "$dir"
