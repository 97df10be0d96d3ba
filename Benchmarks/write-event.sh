#!/usr/bin/env bash
# write_event throughput, in one run, side by side (issue 15):
#   - cat of a file of LINES lines into write_event: whole writes of many
#     lines, every complete line recorded in the request that carries it;
#   - one write(2) per line (python3): one FUSE write round trip each;
#   - the same one-line writes to a trivial FUSE server's file (it answers
#     every write at once and drops it): the round trip alone, the peer;
#   - the same one-line writes to /dev/null: the system call alone.
# A flight-recorder trace, so that nothing waits for a consumer.
#
#   Benchmarks/write-event.sh [LINES]
#
# Needs root and /dev/fuse; mounts under /tmp and unmounts on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-200000}
swift build -c release --product lttfs >/dev/null
lttfs=$(swift build -c release --show-bin-path)/lttfs
(cd Benchmarks && swift build -c release --product DrainBench >/dev/null)
drainbench=Benchmarks/.build/release/DrainBench
work=$(mktemp -d /tmp/lttfs-bench-write.XXXXXX)
mkdir "$work/mnt" "$work/trivial"
server= trivial=
cleanup() {
    for p in $server $trivial; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    for m in "$work/mnt" "$work/trivial"; do grep -q " $m " /proc/mounts && fusermount3 -u -z "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
"$lttfs" mount -f "$work/mnt" 2>/dev/null &
server=$!
"$drainbench" serve-trivial "$work/trivial" &
trivial=$!
for _ in $(seq 1 200); do [ -e "$work/mnt/ltt/setup_trace" ] && [ -e "$work/trivial/data" ] && break; sleep 0.05; done
ltt=$work/mnt/ltt
echo bench > "$ltt/setup_trace"
echo 1 > "$ltt/control/bench/channel/userspace/overwrite"
echo 1 > "$ltt/control/bench/alloc"
echo 1 > "$ltt/control/bench/enabled"
awk -v n="$lines" 'BEGIN { for (i = 1; i <= n; i++) printf "benchmark line %d with some text after it\n", i }' > "$work/lines"

rate() { awk -v n="$lines" -v s="$1" 'BEGIN { printf "%10.0f lines/s  (%.2f s)", n / s, s }'; }
seconds() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }

cat_s=$(seconds sh -c "cat '$work/lines' > '$ltt/write_event'")
per_line() {
    python3 - "$1" "$work/lines" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for line in open(sys.argv[2], "rb"):
    os.write(fd, line)
os.close(fd)
PY
}
line_s=$(seconds per_line "$ltt/write_event")
trivial_s=$(seconds per_line "$work/trivial/data")
null_s=$(seconds per_line /dev/null)
written=$(awk '$1 ~ /userspace_/ { s += $2 } END { print s + 0 }' "$ltt/control/bench/stats")

echo "write_event, $lines lines of about 45 bytes, flight recorder, $(nproc) CPUs, $(uname -r)"
printf '%-34s %s\n' "cat (whole writes)" "$(rate "$cat_s")"
printf '%-34s %s\n' "one write(2) per line (python3)" "$(rate "$line_s")"
printf '%-34s %s\n' "the same to a trivial FUSE server" "$(rate "$trivial_s")"
printf '%-34s %s\n' "the same to /dev/null" "$(rate "$null_s")"
awk -v c="$cat_s" -v l="$line_s" -v t="$trivial_s" \
    'BEGIN { printf "cat is %.1fx faster than one write per line; one write per line takes %.2fx the trivial server'"'"'s time\n", l / c, l / t }'
# Both lttfs runs record every line; cat's 128 KiB buffers end inside
# lines, and the last piece of a write(2) is an event of its own (as in
# the kernel's write_event), so cat adds one event per buffer boundary.
echo "events recorded: $written ($((2 * lines)) lines written by the two lttfs runs)"
