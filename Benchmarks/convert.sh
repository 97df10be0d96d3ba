#!/usr/bin/env bash
# lttfs convert (LTT 2.3 trace directory -> CTF 1.8) throughput, in one run,
# side by side:
#   - TraceConversion.convert, what `lttfs convert` runs, in-process: the
#     median of 3 rounds, each into a fresh directory;
#   - cp -r of the same input: the disk's peer;
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
swift build -c release --product ConvertBench >/dev/null
work=$(mktemp -d /tmp/lttfs-bench-convert.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "lttfs convert, $events events, $(nproc) CPUs, $(uname -r)"
.build/release/ConvertBench "$work" "$events"
