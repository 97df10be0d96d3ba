#!/usr/bin/env bash
# Mount lttfs at DIR, recovering a stale mount left by a dead server first.
#   lttfs-mount.sh DIR [lttfs mount options...]
set -eu
dir=${1:?usage: lttfs-mount.sh DIR [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
lttfs=${LTTFS:-$(command -v lttfs || echo "$here/../.build/release/lttfs")}
# A dead server leaves the mount point unusable (even for mkdir): recover
# it before anything else touches it.
if grep -q " $(realpath -m "$dir") fuse" /proc/mounts; then
    if stat "$dir" >/dev/null 2>&1; then
        echo "lttfs-mount: $dir is already mounted and alive" >&2
        exit 0
    fi
    "$here/lttfs-umount.sh" "$dir"
fi
mkdir -p "$dir"
exec "$lttfs" mount "$@" "$dir"
