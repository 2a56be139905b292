#!/usr/bin/env bash
# Builds the libFuzzer targets with clang >= 16 in their own build directory and runs each for
# FUZZ_SECONDS (default 60) over its seed corpus. Exits non-zero on a crash, a sanitizer report or
# a broken invariant (the reproducer is left in $FUZZ_BUILD_DIR/artifacts/).
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_BUILD_DIR build directory (default <repo>/build-fuzz)
#   FUZZ_CXX       clang++ to use (default: the newest clang++-NN >= 16 on PATH)
#   FUZZ_JOBS      parallel build and fuzz jobs (default 2)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$repo/build-fuzz}
jobs=${FUZZ_JOBS:-2}

cxx=${FUZZ_CXX:-}
if [[ -z $cxx ]]; then
  for v in 19 18 17 16; do
    if command -v "clang++-$v" >/dev/null; then cxx=clang++-$v; break; fi
  done
fi
if [[ -z $cxx ]]; then
  echo "fuzz: no clang++ >= 16 found; on Debian 12: apt-get install clang-16 libclang-rt-16-dev" >&2
  exit 1
fi
cc=${cxx/clang++/clang}

cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" -DTENSORINIT_FUZZ=ON >/dev/null

status=0
for src in "$repo"/tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  ninja -C "$build" -j"$jobs" "$name"
  seeds="$repo/tests/fuzz/corpus"
  work="$build/corpus/$name"        # grows across runs; the seeds in the repo stay as they are
  artifacts="$build/artifacts/$name/"
  mkdir -p "$work" "$artifacts"
  dict=()
  [[ -f $repo/tests/fuzz/${name#fuzz_}.dict ]] && dict=(-dict="$repo/tests/fuzz/${name#fuzz_}.dict")
  echo "fuzz: $name for ${seconds}s"
  if ! "$build/tests/$name" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "$seeds" \
      > "$build/$name.log" 2>&1; then
    tail -n 60 "$build/$name.log" >&2
    echo "fuzz: $name FAILED; reproducers in $artifacts" >&2
    status=1
  else
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$build/$name.log" || true
    echo "fuzz: $name passed"
  fi
done
exit $status
