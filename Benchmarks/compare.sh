#!/usr/bin/env bash
# lttfs next to LTTng-UST 2.13 and the FUSE ceiling, in one run (issue 6).
#
#   Benchmarks/compare.sh [ROUNDS] [EVENTS_PER_THREAD]
#
# Installs what it needs (Debian: lttng-tools, liblttng-ust-dev), builds in
# release mode, checks that two threads really run in parallel, then runs
# the pairs interleaved (UST, lttfs, UST, lttfs, ...) ROUNDS times:
#   1. producer ns/event with 1 and 2 threads, 32-byte payload (an int and a
#      28-byte text), each system's consumer draining, the same buffer
#      memory (8 x 256 KiB per CPU), in the three ways a full buffer can be
#      handled, the same way on both sides:
#        overwrite  flight recorder: nobody waits or loses; every event is
#                   written whole, so this is the producer's own cost;
#        discard    normal mode, an event that finds the buffer full is lost
#                   (both systems' default);
#        wait       normal mode, the producer waits for the consumer (lttfs:
#                   blocking_timeout 1 s; UST: --blocking-timeout=inf with
#                   LTTNG_UST_ALLOW_BLOCKING=1): nothing lost, the producer
#                   goes at the consumer's pace once the buffer is full;
#      and lttfs's wait runs once more with its consumer reading the
#      buffer files as lttd does (--transport files: each sub-buffer
#      through FUSE and the page cache, the drain before shared memory),
#      and lttfs once more on CLOCK_MONOTONIC, the clock UST reads (flight
#      recorder and wait), and in discard mode paced at the rate UST's
#      producer just reached in discard mode (BENCH_PACE_NS): what a
#      consumer that keeps up loses at that rate (nothing, if it does). The
#      lttfs consumer is `lttfs consume -n <CPUs>` (lttd's way on an SMP
#      machine: a reader thread per per-CPU buffer); UST's is its consumerd;
#      and the same producer running in another process, recording through
#      shared memory: a C program on liblttfs-producer (built against an
#      install.sh prefix with pkg-config) and a Swift one (LTTProducers),
#      flight recorder and wait, with their allocations per event;
#   2. events lost in those runs;
#   3. drain MB/s (splice and read, and the consumer library through the
#      files and through shared memory) vs a trivial FUSE server and memcpy;
#   4. the disabled marker vs the disabled tracepoint, in ns and in
#      instructions per event (callgrind);
#   5. write_event: cat vs one write per line vs a trivial FUSE server
#      (write-event.sh, 200,000 lines);
#   6. reading: lttfs dump of 10 M events next to babeltrace2 on their CTF
#      conversion (convert.sh; COMPARE_DUMP_EVENTS changes the count, 0
#      skips it),
# so that every figure of issue 15 comes from one run.
# Prints median, min, max and the ratio per pair. Stops the session daemon
# it started and unmounts what it mounted, by PID and path.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-5}
events=${2:-1000000}

need=()
for pkg in lttng-tools liblttng-ust-dev libfuse3-dev fuse3 liburcu-dev pkg-config babeltrace2 python3 valgrind; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/lttfs-compare.XXXXXX)
export LTTNG_HOME=$work/lttng-home
mkdir -p "$LTTNG_HOME"
sessiond=
cleanup() {
    lttng destroy -a >/dev/null 2>&1 || true
    [ -n "$sessiond" ] && kill "$sessiond" 2>/dev/null && wait "$sessiond" 2>/dev/null || true
    for m in $(awk '$3 == "fuse.lttfs" && $2 ~ /lttfs-(compare|bench)-/ {print $2}' /proc/mounts); do
        fusermount3 -u -z "$m" || true
    done
    rm -rf "$work" "${outdir:-}"
}
trap cleanup EXIT

echo "== building (release)"
cc -O2 -Iust -o "$work/bench-ust" ust/bench-ust.c -llttng-ust -ldl -lpthread
cc -O2 -o "$work/parallel-check" ust/parallel-check.c -lpthread
(cd .. && swift build -c release --product lttfs >/dev/null && swift build -c release --product lttfs-producer >/dev/null)
lttfs=$(cd .. && swift build -c release --show-bin-path)/lttfs
swift build -c release --product ProducerBench >/dev/null
swift build -c release --product DrainBench >/dev/null
# The C producer process, built the way a user builds one.
../mount-scripts/install.sh --prefix "$work/prefix" --no-systemd --helper-dir "$work/prefix/sbin" --binary "$lttfs" >/dev/null
cc -O2 -ISources/MallocCounter/include -o "$work/bench-producer" ust/bench-producer.c Sources/MallocCounter/MallocCounter.c \
    $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs lttfs-producer) -lpthread

echo "== machine: $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
check=$("$work/parallel-check")
ratio=${check##*ratio=}
echo "parallel check: $check"
if awk -v r="$ratio" 'BEGIN { exit !(r > 1.3) }'; then
    echo "WARNING: two threads do not run in parallel now (ratio $ratio): 2-thread figures are not trustworthy"
fi

if pgrep -x lttng-sessiond >/dev/null; then
    echo "using the lttng-sessiond already running (it is not stopped at the end)"
else
    lttng-sessiond --no-kernel >"$work/sessiond.log" 2>&1 &
    sessiond=$!
    for _ in $(seq 1 100); do lttng list >/dev/null 2>&1 && break; sleep 0.1; done
fi

# Both consumers write to the same tmpfs directory: on this machine's disk
# the writes, not either tracer, would set the pace of every run.
outdir=$(mktemp -d /dev/shm/lttfs-compare-out.XXXXXX 2>/dev/null || mktemp -d "$work/out.XXXXXX")
export BENCH_OUTPUT_DIR=$outdir

ust_traced() { # threads mode(overwrite|discard|wait) -> "ns lost"
    rm -rf "$outdir/ust"
    local opts=()
    case $2 in
        overwrite) opts=(--overwrite) ;;
        wait) opts=(--discard --blocking-timeout=inf) ;;
    esac
    lttng create cmp --output="$outdir/ust" >/dev/null
    lttng enable-channel -u ch --subbuf-size=262144 --num-subbuf=8 "${opts[@]}" >/dev/null
    lttng enable-event -u -c ch bench:event >/dev/null
    lttng start >/dev/null
    local ns; ns=$(LTTNG_UST_ALLOW_BLOCKING=1 "$work/bench-ust" "$1" "$events" | sed -e 's/ns_per_event=//')
    local lost; lost=$(lttng stop 2>&1 | sed -n 's/.*Warning: \([0-9]*\) events were discarded.*/\1/p')
    # UST says 2^64 - 1 when it could not count (the sample is left out).
    [ "$lost" = 18446744073709551615 ] && lost=unknown
    lttng destroy >/dev/null
    rm -rf "$outdir/ust"
    echo "$ns ${lost:-0}"
}

lttfs_traced() { # threads mode clock [producer] -> "ns lost allocs"
    local out; out=$(.build/release/ProducerBench traced "$1" "$events" "$lttfs" "$3" "$2" "${4:-in-process}")
    echo "$(echo "$out" | sed -n 's/.*ns_per_event=\([0-9.]*\).*/\1/p') $(echo "$out" | sed -n 's/.*lost=\([0-9]*\).*/\1/p')" \
        "$(echo "$out" | sed -n 's/.*allocs_per_event=\([0-9.]*\).*/\1/p')"
}

declare -A samples
add() { [ "$2" = unknown ] || samples[$1]="${samples[$1]:-} $2"; }

# The CPU time the hypervisor took from this machine (steal, /proc/stat)
# during the rounds: a share of it stalls a producer or a consumer for
# milliseconds at a time, whichever system is running then.
# (user .. steal: guest time is counted in user already.)
cpu_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9 }' /proc/stat; }
read -r ticks_before steal_before < <(cpu_ticks)

for r in $(seq 1 "$rounds"); do
    for t in 1 2; do
        for mode in overwrite discard wait; do
            read -r ns lost < <(ust_traced "$t" "$mode")
            add "ust_${mode}_ns_$t" "$ns"; add "ust_${mode}_lost_$t" "$lost"
            [ "$mode" = discard ] && ust_pace=$ns
            read -r ns lost < <(lttfs_traced "$t" "$mode" auto)
            add "lttfs_${mode}_ns_$t" "$ns"; add "lttfs_${mode}_lost_$t" "$lost"
        done
        read -r ns lost < <(lttfs_traced "$t" overwrite monotonic)
        add "lttfs_mono_ns_$t" "$ns"
        read -r ns lost < <(BENCH_CONSUMER_TRANSPORT=files lttfs_traced "$t" wait auto)
        add "lttfs_files_wait_ns_$t" "$ns"; add "lttfs_files_wait_lost_$t" "$lost"
        read -r ns lost < <(lttfs_traced "$t" wait monotonic)
        add "lttfs_mono_wait_ns_$t" "$ns"; add "lttfs_mono_wait_lost_$t" "$lost"
        if [ -z "${ust_pace:-}" ]; then echo "UST's discard run gave no rate: the paced run cannot be paced" >&2; exit 1; fi
        read -r ns lost < <(BENCH_PACE_NS=$ust_pace lttfs_traced "$t" discard auto)
        add "lttfs_paced_ns_$t" "$ns"; add "lttfs_paced_lost_$t" "$lost"
        for mode in overwrite wait; do
            for kind in c swift; do
                producer=swift
                [ "$kind" = c ] && producer=$work/bench-producer
                read -r ns lost allocs < <(lttfs_traced "$t" "$mode" auto "$producer")
                add "${kind}_${mode}_ns_$t" "$ns"; add "${kind}_${mode}_lost_$t" "$lost"; add "${kind}_allocs" "${allocs:-0}"
            done
        done
    done
    add ust_disabled "$("$work/bench-ust" 1 50000000 | sed -e 's/ns_per_event=//')"
    add lttfs_disabled "$(.build/release/ProducerBench disabled 1 50000000 "$lttfs" | sed -e 's/ns_per_event=//')"
    add lttfs_call "$(.build/release/ProducerBench disabled-call 1 50000000 "$lttfs" | sed -e 's/ns_per_event=//')"
    add lttfs_guarded "$(.build/release/ProducerBench disabled-guarded 1 50000000 "$lttfs" | sed -e 's/ns_per_event=//')"
    add lttfs_static "$(.build/release/ProducerBench disabled-static 1 50000000 "$lttfs" | sed -e 's/ns_per_event=//')"
    add lttfs_closure "$(.build/release/ProducerBench disabled-closure 1 50000000 "$lttfs" | sed -e 's/ns_per_event=//')"
    echo "   round $r of $rounds done"
done

read -r ticks_after steal_after < <(cpu_ticks)
steal_share=$(awk -v t=$((ticks_after - ticks_before)) -v s=$((steal_after - steal_before)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }')

stats() { # values -> "median min max"
    echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
row() { # label lttfs-key ust-key [noratio]
    read -r lm lmin lmax <<<"$(stats ${samples[$2]})"
    read -r um umin umax <<<"$(stats ${samples[$3]})"
    printf '%-52s %10s %10s %10s | %10s %10s %10s | %s\n' "$1" "$lm" "$lmin" "$lmax" "$um" "$umin" "$umax" \
        "$(awk -v a="$lm" -v b="$um" -v n="${4:-}" 'BEGIN { if (b > 0 && n == "") printf "%.2f", a / b; else print "-" }')"
}
rows_lost() { # label lttfs-prefix ust-prefix threads [noratio]: ns/event, then the events lost
    row "$1" "${2}_ns_$4" "${3}_ns_$4" "${5:-}"
    row "  events lost of $(($4 * events))" "${2}_lost_$4" "${3}_lost_$4"
}
echo
echo "== lttfs vs LTTng-UST 2.13, $rounds rounds interleaved, $events events per thread"
echo "   (8 x 256 KiB per CPU for both; each consumer writes to $outdir; lttfs clock: $(.build/release/ProducerBench clock 1 1 "$lttfs"))"
echo "   steal (CPU time the hypervisor took) during the rounds: ${steal_share}% of all CPU time"
printf '%-52s %10s %10s %10s | %10s %10s %10s | %s\n' "measure" "lttfs" "min" "max" "UST" "min" "max" "lttfs/UST"
for t in 1 2; do
    row "ns/event, flight recorder (overwrite), $t thread(s)" "lttfs_overwrite_ns_$t" "ust_overwrite_ns_$t"
done
for t in 1 2; do
    row "  the same, lttfs on CLOCK_MONOTONIC, $t thread(s)" "lttfs_mono_ns_$t" "ust_overwrite_ns_$t"
done
for t in 1 2; do
    rows_lost "ns/event, normal mode, discard when full, $t th." lttfs_discard ust_discard "$t"
done
for t in 1 2; do
    # Paced to UST's time by construction: only the losses say something.
    rows_lost "  discard, lttfs paced at UST's rate, $t th." lttfs_paced ust_discard "$t" noratio
done
for t in 1 2; do
    rows_lost "ns/event, normal mode, wait when full, $t th." lttfs_wait ust_wait "$t"
done
for t in 1 2; do
    rows_lost "  the same, consumer through the files, $t th." lttfs_files_wait ust_wait "$t"
done
for t in 1 2; do
    rows_lost "  the same, lttfs on CLOCK_MONOTONIC, $t th." lttfs_mono_wait ust_wait "$t"
done
for kind in c swift; do
    for t in 1 2; do
        row "$kind producer process, flight recorder, $t thread(s)" "${kind}_overwrite_ns_$t" "ust_overwrite_ns_$t"
    done
    for t in 1 2; do
        rows_lost "$kind producer process, wait when full, $t thread(s)" "${kind}_wait" ust_wait "$t"
    done
    read -r am amin amax <<<"$(stats ${samples[${kind}_allocs]})"
    printf '%-52s %10s %10s %10s |\n' "$kind producer process, allocations per event" "$am" "$amin" "$amax"
done
row "disabled marker / tracepoint, ns (String text, #record)" lttfs_disabled ust_disabled
row "disabled, bare record(n, text) / tracepoint" lttfs_call ust_disabled
row "disabled, StaticString text / tracepoint" lttfs_static ust_disabled
row "disabled, record { (n, text) } / tracepoint" lttfs_closure ust_disabled
row "disabled, if marker.isRecording / tracepoint" lttfs_guarded ust_disabled
# The disabled marker in instructions (callgrind), which neither this
# machine's load nor where a four-instruction loop falls in the cache lines
# moves: the instructions 1 M more events take, per event.
instructions() { # command with EVENTS where the event count goes
    local n counts=()
    for n in 1000000 2000000; do
        counts+=("$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "${@/#EVENTS/$n}" 2>&1 \
            | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')")
    done
    awk -v a="${counts[0]}" -v b="${counts[1]}" 'BEGIN { printf "%.1f", (b - a) / 1000000 }'
}
strip -g -o "$work/ProducerBench" .build/release/ProducerBench   # valgrind 3.19 cannot read Swift 6.3's DWARF
ust_instructions=$(instructions "$work/bench-ust" 1 EVENTS)
printf '%-52s %10s | %10s\n' "disabled, instructions per event: #record" \
    "$(instructions "$work/ProducerBench" disabled 1 EVENTS "$lttfs")" "$ust_instructions"
printf '%-52s %10s | %10s\n' "  record { (n, text) } / bare record(n, text)" \
    "$(instructions "$work/ProducerBench" disabled-closure 1 EVENTS "$lttfs") / $(instructions "$work/ProducerBench" disabled-call 1 EVENTS "$lttfs")" "$ust_instructions"
echo
echo "== drain MB/s, 1 MiB sub-buffers"
.build/release/DrainBench "$rounds" 2>/dev/null
echo
echo "== write_event"
./write-event.sh 200000
dump_events=${COMPARE_DUMP_EVENTS:-10000000}
if [ "$dump_events" -gt 0 ]; then
    echo
    echo "== reading and converting, $dump_events events"
    ./convert.sh "$dump_events"
fi
