#!/usr/bin/env bash
# The shell tour as a test: drive a trace only with echo and cat, record
# 1000 lines through write_event one echo each, then 2,500 lines of
# varied lengths in one cat (one write(2) of many lines: cat writes its
# whole buffer, 128 KiB, and the file is smaller), consume them lttd's way,
# and check that the decoded trace holds exactly those lines, in order.
#   write-event-1000.sh MOUNT OUTDIR LTTFS LTTD_CONFORM
set -euo pipefail
mnt=$1 out=$2 lttfs=$3 consumer_binary=$4
ltt=$mnt/ltt

echo shell > "$ltt/setup_trace"
echo relay-locked > "$ltt/control/shell/trans"
echo 64 > "$ltt/control/shell/channel/userspace/subbuf_num"
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
awk 'BEGIN { for (i = 1; i <= 2500; i++) { s = ""; for (j = 0; j < (i * 37) % 30; j++) s = s "x"; print "cat line " i " " s } }' \
    > "$out.batch"
test "$(wc -c < "$out.batch")" -lt 131072
cat "$out.batch" > "$ltt/write_event"

echo 0 > "$ltt/control/shell/enabled"
cat "$ltt/control/shell/stats"
echo shell > "$ltt/destroy_trace"
wait "$consumer" || { cat "$out.probe.log"; exit 1; }

"$lttfs" dump --check "$out"
"$lttfs" dump --channel userspace --json "$out" \
    | sed -e 's/.*"string":"\([^"]*\)".*/\1/' > "$out.lines"
{ seq 1 1000 | sed -e 's/.*/line & of the shell tour/'; cat "$out.batch"; } > "$out.expected"
diff -u "$out.expected" "$out.lines" > "$out.diff" || { head -20 "$out.diff"; exit 1; }
echo "$(wc -l < "$out.expected") lines match"
rm -f "$out.lines" "$out.expected" "$out.probe.log" "$out.ready" "$out.batch" "$out.diff"
