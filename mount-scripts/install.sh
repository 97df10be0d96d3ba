#!/usr/bin/env bash
# Install lttfs system-wide:
#   the binary to PREFIX/bin, the mount(8) helper /sbin/mount.fuse.lttfs,
#   a systemd unit that keeps lttfs mounted at MOUNTPOINT, and the C
#   producer library: PREFIX/include/lttfs/producer.h,
#   PREFIX/lib/liblttfs-producer.so with the Swift runtime it needs beside
#   it, and PREFIX/lib/pkgconfig/lttfs-producer.pc, so that
#     cc prog.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs lttfs-producer)
#   builds a program that records into lttfs traces, and runs as built.
#   install.sh [--prefix /usr/local] [--mountpoint /mnt/ltt] [--no-systemd]
#              [--helper-dir /sbin] [--systemd-dir /etc/systemd/system]
#              [--binary PATH]   (install this lttfs instead of building one)
#              [--group NAME]    (the tracing group of the systemd unit's mount:
#                                 its members drain buffers, read status and
#                                 record with write_event; others get nothing)
#              [--configuration release|debug]  (the build installed)
#              [--library PATH]  (install this liblttfs-producer.so instead of
#                                 building one; by default the one beside
#                                 --binary, if there is one)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local mountpoint=/mnt/ltt systemd=1 helperdir=/sbin unitdir=/etc/systemd/system binary= group= configuration=release library=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --mountpoint) mountpoint=$2; shift 2 ;;
        --no-systemd) systemd=0; shift ;;
        --helper-dir) helperdir=$2; shift 2 ;;
        --systemd-dir) unitdir=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --group) group=$2; shift 2 ;;
        --configuration) configuration=$2; shift 2 ;;
        --library) library=$2; shift 2 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
case "$configuration" in release|debug) ;; *) echo "install.sh: --configuration release or debug" >&2; exit 1 ;; esac
if [ -z "$binary" ]; then
    swift build -c "$configuration" --product lttfs
    binary=$(swift build -c "$configuration" --show-bin-path)/lttfs
fi
install -D -m 0755 "$binary" "$prefix/bin/lttfs"

# The C producer library, the Swift runtime it links (from the toolchain,
# found next to it by its $ORIGIN run path), and its pkg-config file.
# A given binary brings its library along when it sits beside it (the
# same build): nothing is built then.
if [ -z "$library" ] && [ -f "$(dirname "$binary")/liblttfs-producer.so" ]; then
    library=$(dirname "$binary")/liblttfs-producer.so
fi
if [ -z "$library" ]; then
    swift build -c "$configuration" --product lttfs-producer
    library=$(swift build -c "$configuration" --show-bin-path)/liblttfs-producer.so
fi
install -D -m 0644 Sources/CLTTProducer/include/lttfs/producer.h "$prefix/include/lttfs/producer.h"
install -D -m 0755 "$library" "$prefix/lib/liblttfs-producer.so"
toolchain=$(dirname "$(readlink -f "$(command -v swiftc)")")/..
ldd "$library" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
    case "$(readlink -f "$lib")" in "$(readlink -f "$toolchain")"/*) install -m 0644 "$lib" "$prefix/lib/" ;; esac
done
mkdir -p "$prefix/lib/pkgconfig"
cat > "$prefix/lib/pkgconfig/lttfs-producer.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: lttfs-producer
Description: record into the traces of an lttfs mount from any process, through shared memory
Version: 0.2
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -llttfs-producer
Cflags: -I\${includedir}
PC
echo "installed $prefix/include/lttfs/producer.h, $prefix/lib/liblttfs-producer.so and $prefix/lib/pkgconfig/lttfs-producer.pc"
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
