#!/usr/bin/env bash
# The relay engine next to its floor, measured in one run, printed side by
# side with the ratio (issue 2's goal: engine <= 2x floor, 0 mallocs/event).
set -euo pipefail
cd "$(dirname "$0")"
out=$(swift package --disable-sandbox benchmark --target RelayEngine --no-progress 2>&1) || { echo "$out"; exit 1; }
p50() { # benchmark name prefix, metric row -> p50 column
    echo "$out" | awk -v name="$1" -v metric="$2" '
        index($0, name) == 1 { inside = 1; next }
        inside && index($0, metric) { split($0, c, "│"); gsub(/ /, "", c[5]); print c[5]; exit }'
}
printf '%-10s %14s %14s %7s %16s\n' threads "engine ns/ev" "floor ns/ev" ratio "engine mallocs"
for t in "1 thread" "2 threads"; do
    e=$(p50 "engine: record 32-byte event, $t" "Time (wall clock)")
    f=$(p50 "floor: lock + clock + 32-byte copy, $t" "Time (wall clock)")
    m=$(p50 "engine: record 32-byte event, $t" "Malloc (total)")
    printf '%-10s %14s %14s %7s %16s\n' "$t" "$e" "$f" "$(awk -v e="$e" -v f="$f" 'BEGIN { printf "%.2fx", e / f }')" "$m"
done
