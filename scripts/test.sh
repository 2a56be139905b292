#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it needs, builds
# with -Werror, runs the unit tests under ASan+UBSan, fuzzes the header parser briefly, then runs
# every unit and integration test (ctest) against the release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh

echo "== sanitizer build (ASan + UBSan): unit tests"
BUILD_DIR=build-asan BUILD_TYPE=Debug NINJA_TARGETS=tensorinit_tests \
  bash scripts/build.sh -DTENSORINIT_WERROR=ON -DTENSORINIT_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build-asan/tests/tensorinit_tests --no-intro=true

if [ -x tests/fuzz/run.sh ] || [ -f tests/fuzz/run.sh ]; then
  echo "== fuzzing the safetensors header parser (${FUZZ_SECONDS:=30}s)"
  FUZZ_SECONDS=$FUZZ_SECONDS bash tests/fuzz/run.sh
fi

echo "== release build (-Werror): unit and integration tests"
BUILD_DIR=build bash scripts/build.sh -DTENSORINIT_WERROR=ON
ctest --test-dir build --output-on-failure
