#!/usr/bin/env bash
# The project's test command: installs what is missing, builds and runs
# every test (unit, model, stress, and real FUSE mounts), then checks that
# no lttfs mount is left.
#
#   run-tests.sh                     every test
#   run-tests.sh --thread-sanitizer  the suites that run the control files,
#                                    the trace life cycle and real mounts,
#                                    built with ThreadSanitizer (servers
#                                    included); any report fails the run.
#                                    C programs are not linked against the
#                                    instrumented producer library there
#                                    (it needs the sanitizer's runtime).
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
    TSAN_OPTIONS="log_path=$reports/report halt_on_error=0" \
        swift test --skip-build --sanitize=thread --scratch-path "$scratch" --filter "$suites" \
            --skip "cExample|forkedChild" 2>&1 \
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
