#!/usr/bin/env bash
# Installs, from Debian, what building and testing lttfs needs and this
# machine lacks: libfuse3 (headers and fusermount3), liburcu, pkg-config,
# util-linux (setpriv, which the permission tests run commands with) and
# babeltrace2 (the CTF reader the CTF output is checked against) and
# lttng-tools (lttng-relayd, which the streaming tests send traces to).
set -euo pipefail
need=()
for pkg in libfuse3-dev fuse3 liburcu-dev pkg-config util-linux babeltrace2 lttng-tools; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
