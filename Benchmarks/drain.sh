#!/usr/bin/env bash
# Drain throughput of full traces with 1 MiB sub-buffers: lttd's way
# (GET, splice, PUT) and read(2), next to a trivial FUSE server serving the
# same bytes from memory and to memcpy, interleaved, in one run (issue 4).
# Needs root and /dev/fuse; mounts under /tmp and unmounts on exit.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product DrainBench >/dev/null
exec .build/release/DrainBench "${1:-5}" 2>/dev/null
