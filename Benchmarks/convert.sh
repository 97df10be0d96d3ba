#!/usr/bin/env bash
# lttfs convert (LTT 2.3 trace directory -> CTF 1.8) throughput, in one run,
# side by side:
#   - TraceConversion.convert, what `lttfs convert` runs, in-process: the
#     median of 3 rounds, each into a fresh directory;
#   - cp -r of the same input: the disk's peer;
#   - lttfs dump of the LTT trace and of its CTF conversion, text to
#     /dev/null (the release binary), 1 round each;
#   - the same conversion streamed to an lttng-relayd on loopback, 3
#     rounds, next to the local rate (skipped without lttng-relayd);
#   - babeltrace2 reading the converted trace, text to /dev/null and with
#     the dummy sink (no formatting), 1 round each (skipped if missing).
# The input: EVENTS events (default 2,000,000) recorded in-process with
# LTTTrace (3 channels x 2 CPUs, integers of several sizes, strings),
# drained while recording, and checked (every event read back, none lost)
# before anything is timed. No mount, no root needed.
#
#   Benchmarks/convert.sh [EVENTS]
#
# Works under /tmp, removed on exit.
set -euo pipefail
cd "$(dirname "$0")"
events=${1:-2000000}
# A failed build says why (swift build prints its errors on stdout).
build() { local out; out=$("$@" 2>&1) || { echo "$out" | tail -30 >&2; exit 1; }; }
build swift build -c release --product ConvertBench
# lttfs dump, timed next to babeltrace2: the release binary of the package.
(cd .. && build swift build -c release --product lttfs)
export LTTFS_BINARY=$(cd .. && swift build -c release --show-bin-path)/lttfs
work=$(mktemp -d /tmp/lttfs-bench-convert.XXXXXX)
bench=
cleanup() {
    # The bench and what it runs (cp, babeltrace2), if still there.
    if [ -n "$bench" ] && kill -0 "$bench" 2>/dev/null; then
        pkill -TERM -P "$bench" 2>/dev/null || true
        kill "$bench" 2>/dev/null && wait "$bench" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "lttfs convert, $events events, $(nproc) CPUs, $(uname -r)"
# In the background and waited for, so that a signal reaches the trap at
# once (bash runs traps only between commands).
.build/release/ConvertBench "$work" "$events" &
bench=$!
wait "$bench"
