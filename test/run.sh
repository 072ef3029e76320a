#!/usr/bin/env bash
# `npm test`: build what is stale, install the system tools the tests use,
# run the core's C++ unit tests, then the vitest suite. Both always run; the
# exit status is non-zero if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/Release/blocksmith.node ] || [ ! -x build/Release/core_tests ] || [ binding.gyp -nt build/Makefile ]; then
  npx node-gyp rebuild -j 2 || exit 1
else
  npx node-gyp build -j 2 >/dev/null || exit 1
fi
npx tsc -p tsconfig.json || exit 1
bash test/setup.sh || exit 1

echo "== core unit tests (C++)"
build/Release/core_tests
native_status=$?

echo "== vitest"
npx vitest run "$@"
vitest_status=$?

[ $native_status -eq 0 ] && [ $vitest_status -eq 0 ]
