#!/usr/bin/env bash
# Sanitizer runs (AddressSanitizer + UndefinedBehaviorSanitizer, clang).
#   test/asan.sh unit   the core's C++ unit tests, built instrumented (CI runs this)
#   test/asan.sh full   unit, then the addon built instrumented in a copy of the
#                       tree (build/asan/tree) and the whole vitest suite run
#                       against it with the ASan runtime preloaded into node
#                       (`npm run test:asan`).
# With CORE_TESTS_JSON_ASAN=FILE the unit results are written as JSON.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}
shift || true

command -v clang++ >/dev/null 2>&1 || {
  [ "$(id -u)" = 0 ] || { echo "asan: clang is missing (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null; } || exit 1
}
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
out=build/asan
mkdir -p "$out/obj"

# Unit tests: the core and its tests, instrumented, one executable.
objs=()
tests=$(ls native/tests/*.cc)
[ -f /usr/include/rbd/librbd.h ] && [ -f /usr/include/rados/librados.h ] || tests=$(echo "$tests" | grep -v test_librbd_api)
for src in $(find native/core -name '*.cc' | sort) $tests; do
  obj="$out/obj/$(echo "$src" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find native/core native/tests -name '*.h' -newer "$obj" | head -1)" ]; then
    clang++ -std=c++20 "${san[@]}" -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -Inative -c "$src" -o "$obj" || exit 1
  fi
  objs+=("$obj")
done
clang++ "${san[@]}" "${objs[@]}" -pthread -ldl -o "$out/core_tests" || exit 1
echo "== core unit tests under ASan+UBSan"
CORE_TESTS_JSON=${CORE_TESTS_JSON_ASAN:-} ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$out/core_tests"
unit=$?
[ "$mode" = unit ] && exit $unit

# The addon, instrumented, in a copy of the tree so build/Release stays normal.
tree=$out/tree
rm -rf "$tree" && mkdir -p "$tree"
git ls-files -z | grep -zv '^bench/' | xargs -0 cp --parents -t "$tree" || exit 1
ln -s "$PWD/node_modules" "$tree/node_modules"
runtime=$(clang++ -print-file-name=libclang_rt.asan-x86_64.so)
(
  cd "$tree" &&
    CC=clang CXX=clang++ CFLAGS="${san[*]}" CXXFLAGS="${san[*]}" LDFLAGS="-shared-libasan ${san[*]}" \
      npx node-gyp rebuild -j 2 >build.log 2>&1 || { tail -30 build.log; exit 1; }
  npx tsc -p tsconfig.json || exit 1
  echo "== vitest with the instrumented addon ($runtime preloaded)"
  # Node itself leaks by design at exit: leaks are checked in the unit tests.
  LD_PRELOAD=$runtime ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 npx vitest run "$@"
)
full=$?
[ $unit -eq 0 ] && [ $full -eq 0 ]
