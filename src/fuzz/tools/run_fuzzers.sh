#!/usr/bin/env bash
# Builds the libFuzzer executables with clang in their own build folder and
# runs each for a while (src/fuzz/README.md).
#
#   src/fuzz/tools/run_fuzzers.sh [SECONDS_PER_FUZZER] [TARGET...]
#
# Defaults: 120 s each, every target (infer_request triton_config
# model_config device_spec). Environment: BUILD (default build-fuzz-clang),
# WORK (default $BUILD/fuzz-work: the grown corpora and crash artifacts),
# JOBS (default 2), RSS_MB (default 2048).
# New inputs go to $WORK/<target>/corpus, never into src/fuzz/corpus; a crash
# is left as $WORK/<target>/crash-* (copy it to src/fuzz/corpus/<target>/ so
# that fuzz_replay_test keeps it as a regression input once fixed).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
SECONDS_EACH="${1:-120}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(infer_request triton_config model_config device_spec)
BUILD="${BUILD:-$ROOT/build-fuzz-clang}"
WORK="${WORK:-$BUILD/fuzz-work}"
JOBS="${JOBS:-2}"
RSS_MB="${RSS_MB:-2048}"

declare -A DICT=([infer_request]=json [triton_config]=pbtxt [model_config]=yaml [device_spec]=device)

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMODELGRID_BUILD_FUZZERS=ON -DMODELGRID_BUILD_BENCH=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
fi
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]/%/_fuzzer}"

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$t/corpus"
  echo "=== $t: ${SECONDS_EACH}s"
  if ! (cd "$WORK/$t" && "$BUILD/bin/${t}_fuzzer" -max_total_time="$SECONDS_EACH" \
        -rss_limit_mb="$RSS_MB" -timeout=10 -print_final_stats=1 \
        -dict="$ROOT/src/fuzz/dict/${DICT[$t]}.dict" corpus "$ROOT/src/fuzz/corpus/$t"); then
    echo "=== $t: FOUND A CRASH: $(ls "$WORK/$t"/crash-* "$WORK/$t"/timeout-* "$WORK/$t"/oom-* 2>/dev/null)"
    status=1
  fi
done
exit $status
