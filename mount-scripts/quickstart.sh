#!/usr/bin/env bash
# The main job, end to end, on a fresh machine of this kind:
#   install what is missing, build, mount lttfs in a temporary directory
#   (served by lttfs-demo, a Swift program that traces itself), create a
#   trace and a consumer with `lttfs ctl`, record events from a shell loop
#   (write_event) and from the Swift workload (in-process markers), stop,
#   destroy, decode, print events and counters, convert to CTF and read it
#   with babeltrace2, unmount.
# Leaves no mount and no process behind, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

./mount-scripts/install-deps.sh

echo "== building"
swift build -c release --product lttfs >/dev/null
swift build -c release --product lttfs-demo >/dev/null
bin=$(swift build -c release --show-bin-path)
lttfs=$bin/lttfs

work=$(mktemp -d /tmp/lttfs-quickstart.XXXXXX)
mnt=$work/mnt out=$work/trace
mkdir -p "$mnt"
demo=
cleanup() {
    [ -n "$demo" ] && kill -TERM "$demo" 2>/dev/null && wait "$demo" 2>/dev/null || true
    "$(dirname "$0")/lttfs-umount.sh" "$mnt" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== mounting lttfs on $mnt (served by lttfs-demo, 2 workers)"
"$bin/lttfs-demo" "$mnt" 2 2000 2>"$work/demo.log" &
demo=$!
for _ in $(seq 1 100); do [ -e "$mnt/ltt/setup_trace" ] && break; sleep 0.1; done
ls "$mnt/ltt"

echo "== lttctl-style: create and start trace 'quick', consumer writing to $out"
"$lttfs" ctl --mount "$mnt" -C -w "$out" -o channel.all.bufnum=8 quick

echo "== 200 events from a shell loop (write_event)"
for i in $(seq 1 200); do echo "shell line $i"; done > "$mnt/ltt/write_event"
sleep 1   # the Swift workload records meanwhile

echo "== counters"
"$lttfs" stat --mount "$mnt" quick

echo "== pause and destroy; the consumer drains and exits"
"$lttfs" ctl --mount "$mnt" -D quick
for _ in $(seq 1 100); do pgrep -f "consume -q -c $mnt" >/dev/null || break; sleep 0.1; done

echo "== decoded events (first and last few)"
"$lttfs" dump "$out" > "$work/events.txt"
head -n 4 "$work/events.txt"
echo "..."
tail -n 3 "$work/events.txt"
echo "== per marker"
sed -e 's/:.*//' "$work/events.txt" | sort | uniq -c
"$lttfs" dump --check "$out"
test "$(grep -c 'userspace.event' "$work/events.txt")" = 200
grep -q 'demo.request' "$work/events.txt"

echo "== for today's viewers: CTF, read by babeltrace2"
"$lttfs" convert "$out" "$work/trace-ctf"
babeltrace2 "$work/trace-ctf" > "$work/ctf-events.txt"
head -n 2 "$work/ctf-events.txt"
test "$(wc -l < "$work/ctf-events.txt")" = "$(wc -l < "$work/events.txt")"
echo "== done: unmounting"
