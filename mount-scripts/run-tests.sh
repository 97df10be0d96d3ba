#!/usr/bin/env bash
# The project's test command: builds and runs every test (unit, model,
# stress, and real FUSE mounts), then checks that no lttfs mount is left.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
swift build --build-tests
swift test 2>&1 | tee .build/test.log || status=$?
# Swift Testing runs inside the same process as XCTest: make its summary
# visible even when XCTest finds no tests.
grep -E "^(✔|✘) Test run" .build/test.log || true

left=$(awk '$3 ~ /^fuse/ && $2 ~ /lttfs/ {print $2}' /proc/mounts || true)
if [ -n "$left" ]; then
    echo "FAIL: lttfs mounts left behind: $left" >&2
    for m in $left; do fusermount3 -u -z "$m" || true; done
    status=1
fi
exit $status
