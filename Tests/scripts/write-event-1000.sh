#!/usr/bin/env bash
# The shell tour as a test: drive a trace only with echo and cat, record
# 1000 lines through write_event, consume them lttd's way, and check that
# the decoded trace holds exactly those lines.
#   write-event-1000.sh MOUNT OUTDIR LTTFS LTTD_CONFORM
set -euo pipefail
mnt=$1 out=$2 lttfs=$3 consumer_binary=$4
ltt=$mnt/ltt

echo shell > "$ltt/setup_trace"
echo relay-locked > "$ltt/control/shell/trans"
echo 16 > "$ltt/control/shell/channel/userspace/subbuf_num"
echo 16384 > "$ltt/control/shell/channel/userspace/subbuf_size"
echo 1 > "$ltt/control/shell/alloc"
echo 1 > "$ltt/control/shell/enabled"
test "$(cat "$ltt/control/shell/enabled")" = 1

"$consumer_binary" -c "$ltt/shell" -t "$out" -T 60 -q -r "$out.ready" > "$out.probe.log" 2>&1 &
consumer=$!
# Write only once the consumer holds the buffer files open (it creates its
# ready file then): on a busy machine it may start after the lines are
# written and the trace destroyed.
for _ in $(seq 1 600); do
    [ -e "$out.ready" ] && break
    kill -0 "$consumer" 2>/dev/null || break
    sleep 0.05
done
[ -e "$out.ready" ] || { cat "$out.probe.log"; echo "the consumer never opened the buffers" >&2; exit 1; }

for i in $(seq 1 1000); do
    echo "line $i of the shell tour" > "$ltt/write_event"
done

echo 0 > "$ltt/control/shell/enabled"
cat "$ltt/control/shell/stats"
echo shell > "$ltt/destroy_trace"
wait "$consumer" || { cat "$out.probe.log"; exit 1; }

"$lttfs" dump --check "$out"
"$lttfs" dump --channel userspace --json "$out" \
    | sed -e 's/.*"string":"\([^"]*\)".*/\1/' > "$out.lines"
seq 1 1000 | sed -e 's/.*/line & of the shell tour/' > "$out.expected"
diff -u "$out.expected" "$out.lines"
echo "1000 lines match"
rm -f "$out.lines" "$out.expected" "$out.probe.log" "$out.ready"
