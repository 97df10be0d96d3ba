#!/usr/bin/env bash
# The project's test command: installs what is missing, builds and runs
# every test (unit, model, stress, and real FUSE mounts), then checks that
# no lttfs mount is left.
#
#   run-tests.sh                     every test, then the allocation check
#                                    (lttfs-alloc-check, release build)
#   run-tests.sh --thread-sanitizer  the suites that run the control files,
#                                    the trace life cycle and real mounts,
#                                    built with ThreadSanitizer (servers
#                                    included); any report fails the run.
#                                    C programs are not linked against the
#                                    instrumented producer library there
#                                    (it needs the sanitizer's runtime): the
#                                    tests that build one are named cProgram*.
set -euo pipefail
cd "$(dirname "$0")/.."
./mount-scripts/install-deps.sh

status=0
if [ "${1:-}" = "--thread-sanitizer" ]; then
    scratch=.build-tsan
    suites='ControlFileTests|EndToEndTests|TrustTests|ConsumerABITests|FileSystemLogicTests|RoundTripTests|RelayStressTests|PrimitiveTests|SharedBufferTests|ProducerProcessTests|SystemTests|LTTConsumerTests|WriterTests|ConversionTests|LossTests'
    reports=$(mktemp -d /tmp/lttfs-tsan.XXXXXX)
    swift build --build-tests --sanitize=thread --scratch-path "$scratch"
    # Every process (the test runner, each lttfs server it starts) writes
    # its reports to a file of its own there; none may appear.
    # atexit_sleep_ms=0: TSan's default second of sleep at each exit while
    # another thread lives would sit on every server's shutdown the tests
    # time (its reports are written all the same).
    TSAN_OPTIONS="log_path=$reports/report halt_on_error=0 atexit_sleep_ms=0" \
        swift test --skip-build --sanitize=thread --scratch-path "$scratch" --filter "$suites" \
            --skip "cProgram" 2>&1 \
        | tee "$scratch/test.log" || status=$?
    if [ -n "$(ls -A "$reports")" ] || grep -q "ThreadSanitizer" "$scratch/test.log"; then
        echo "FAIL: ThreadSanitizer reports:" >&2
        cat "$reports"/* >&2 2>/dev/null || true
        status=1
    fi
    rm -rf "$reports"
    log=$scratch/test.log
else
    swift build --build-tests
    swift test 2>&1 | tee .build/test.log || status=$?
    log=.build/test.log
    # Heap allocations per event on every path that records (typed marker,
    # #record, closure form, pack walk, dynamic arguments, write_event, the
    # C library), counted on the recording thread, in the optimized build
    # that users run (a debug build allocates where the optimizer does
    # not): each must be 0.
    swift build -c release --product lttfs-alloc-check
    allocations=$(.build/release/lttfs-alloc-check 100000) || status=1
    echo "$allocations"
    if ! grep -q "available=1" <<<"$allocations" || grep "allocations=" <<<"$allocations" | grep -vq "allocations=0 "; then
        echo "FAIL: heap allocations per event (lttfs-alloc-check)" >&2
        status=1
    fi
fi
# Swift Testing runs inside the same process as XCTest: make its summary
# visible even when XCTest finds no tests.
grep -E "^(✔|✘) Test run" "$log" || true

left=$(awk '$3 ~ /^fuse/ && $2 ~ /lttfs/ {print $2}' /proc/mounts || true)
if [ -n "$left" ]; then
    echo "FAIL: lttfs mounts left behind: $left" >&2
    for m in $left; do fusermount3 -u -z "$m" || true; done
    status=1
fi
exit $status
