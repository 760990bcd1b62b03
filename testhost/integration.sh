#!/usr/bin/env bash
# testhost/integration.sh DIR: run every test binary in DIR verbosely, inside the test
# host (testhost/run.sh), and end with the count "N passed, M failed".
set -uo pipefail
dir=$(cd "$1" && pwd)
repo=$(pwd)
export NIXCFS_BIN=$repo/build/nixcfs NIXCFS_CRASH_BIN=$repo/build/nixcfs-crash NIXCFS_GUEST=$repo/guest
# Tests that boot test hosts of their own ran in make unit-test, outside; here they
# are not run at all (go test -skip), rather than skipped.
outside='^TestRunShGivesUpAfterThreeFailedBoots$'
out=$(mktemp)
status=0
for t in "$dir"/*.test; do
	pkgdir=$(basename "$t" .test | sed 's/^nixcfs_\{0,1\}//; s/_/\//g')
	[ -n "$pkgdir" ] || pkgdir=.
	echo "=== package ${pkgdir} (inside the test host)"
	# Each test binary runs in its package directory, as go test does.
	(cd "$repo/$pkgdir" && "$t" -test.v -test.count=1 -test.timeout=15m -test.skip "$outside") 2>&1 | tee -a "$out"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
passed=$(grep -cE '^\s*--- PASS' "$out")
failed=$(grep -cE '^\s*--- FAIL' "$out")
skipped=$(grep -cE '^\s*--- SKIP' "$out")
rm -f "$out"
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || { echo "integration: no test ran" >&2; status=1; }
# Inside the test host nothing may skip: a skipped test is an untested feature.
if [ "$skipped" -ne 0 ]; then
	echo "integration: ${skipped} tests skipped inside the test host" >&2
	status=1
fi
echo "integration: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit $status
