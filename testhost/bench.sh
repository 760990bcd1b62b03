#!/usr/bin/env bash
# testhost/bench.sh DIR: run the benchmarks of every test binary in DIR, inside the
# test host, printing the figures.
set -uo pipefail
dir=$(cd "$1" && pwd)
repo=$(pwd)
export NIXCFS_BIN=$repo/build/nixcfs NIXCFS_GUEST=$repo/guest
status=0
for t in "$dir"/*.test; do
	pkgdir=$(basename "$t" .test | sed 's/^nixcfs_\{0,1\}//; s/_/\//g')
	echo "=== benchmarks of ${pkgdir:-.} (inside the test host)"
	(cd "$repo/${pkgdir:-.}" && "$t" -test.run '^$' -test.bench . -test.benchmem -test.benchtime "${BENCHTIME:-1s}") || status=1
done
exit $status
