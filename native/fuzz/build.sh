#!/usr/bin/env bash
# Builds the libFuzzer harnesses (native/fuzz/fuzz_*.cc) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer into build/fuzz/.
# Installs clang and its runtime (Debian clang, libclang-rt-14-dev) when
# missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null 2>&1 || ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' |
    "$CXX" -x c++ -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "fuzz: clang with libFuzzer is missing (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null; }
fi

out=build/fuzz
mkdir -p "$out/obj"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -Inative
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)
# The core, instrumented for coverage (the rbd glue too: librbd is loaded at run time, so it links without it).
objs=()
for src in $(find native/core -name '*.cc' | sort); do
  obj="$out/obj/$(echo "${src#native/core/}" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find native/core -name '*.h' -newer "$obj" | head -1)" ]; then
    "$CXX" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done
for harness in native/fuzz/fuzz_*.cc; do
  name=$(basename "$harness" .cc)
  "$CXX" "${flags[@]}" -fsanitize=fuzzer "$harness" "${objs[@]}" -pthread -ldl -o "$out/$name"
done
echo "fuzz: built $(ls "$out"/fuzz_* | wc -l) harnesses in $out"
