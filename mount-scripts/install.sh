#!/usr/bin/env bash
# Install lttfs system-wide:
#   the binary to PREFIX/bin, the mount(8) helper /sbin/mount.fuse.lttfs,
#   and a systemd unit that keeps lttfs mounted at MOUNTPOINT.
#   install.sh [--prefix /usr/local] [--mountpoint /mnt/ltt] [--no-systemd]
#              [--helper-dir /sbin] [--systemd-dir /etc/systemd/system]
#              [--binary PATH]   (install this lttfs instead of building one)
#              [--group NAME]    (the tracing group of the systemd unit's mount:
#                                 its members drain buffers, read status and
#                                 record with write_event; others get nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local mountpoint=/mnt/ltt systemd=1 helperdir=/sbin unitdir=/etc/systemd/system binary= group=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --mountpoint) mountpoint=$2; shift 2 ;;
        --no-systemd) systemd=0; shift ;;
        --helper-dir) helperdir=$2; shift 2 ;;
        --systemd-dir) unitdir=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --group) group=$2; shift 2 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
if [ -z "$binary" ]; then
    swift build -c release --product lttfs
    binary=$(swift build -c release --show-bin-path)/lttfs
fi
install -D -m 0755 "$binary" "$prefix/bin/lttfs"
install -D -m 0755 mount-scripts/mount.fuse.lttfs "$helperdir/mount.fuse.lttfs"
sed -i "s|/usr/local/bin/lttfs|$prefix/bin/lttfs|" "$helperdir/mount.fuse.lttfs"
echo "installed $prefix/bin/lttfs and $helperdir/mount.fuse.lttfs"
if [ "$systemd" = 1 ] && [ -d "$unitdir" ]; then
    cat > "$unitdir/lttfs.service" <<UNIT
[Unit]
Description=lttfs: LTTng trace buffers as files at $mountpoint
After=local-fs.target

[Service]
Type=simple
ExecStartPre=/bin/mkdir -p $mountpoint
ExecStartPre=-/bin/sh -c 'stat $mountpoint >/dev/null 2>&1 || fusermount3 -u -z $mountpoint'
ExecStart=$prefix/bin/lttfs mount -f -o allow_other${group:+ --group $group} $mountpoint
ExecStopPost=-/bin/sh -c 'grep -q " $mountpoint fuse" /proc/mounts && fusermount3 -u -z $mountpoint'
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
    echo "installed $unitdir/lttfs.service (systemctl enable --now lttfs)"
fi
