#!/usr/bin/env bash
# gpu-check.sh: everything ModelGrid measures on a lent GPU machine, in one
# call (../shared/reference/gpu_machine.md): record the machine, build against
# the machine's PyTorch LibTorch, run the GPU tests, measure, and write a
# results table (results.md) plus logs under the output folder.
#
#   scripts/gpu-check.sh [--out DIR] [--build-dir DIR] [--debs DIR] [--steps LIST]
#                        [--zoo-profile small|full] [--replicas N] [--jobs N] [--dry-run]
#   scripts/gpu-check.sh --fetch-debs DIR     (on the development machine, see below)
#
# Steps (--steps takes a comma-separated subset; default: all but `tests` and `dynamic`):
#   machine    os-release, g++, nvidia-smi, torch and CUDA versions -> machine.txt
#   deps       unpack the carried .deb files (--debs) into a private prefix
#   configure  cmake against python3's torch.utils.cmake_prefix_path
#   build      cmake --build
#   zoo        tools/zoo/generate.py --profile P (the models the tests and measurements use)
#   gpu-tests  ctest -L gpu (tests that need a GPU; they skip elsewhere)
#   tests      the whole ctest suite (long; opt-in)
#   accuracy   estimate vs measured peak on CUDA per zoo model, batch 1/8/32
#   context    device memory of one CUDA context per process (LAZY and EAGER module loading)
#   density    instances placed per strategy x isolation on a replicated zoo
#   swap       host<->device copy bandwidth (pinned, pageable) and each zoo
#              model's weights swapped out to pinned host memory and back
#              (scripts/swap_floor.py): times vs the bandwidth floor, outputs
#              bit-identical after the swap-in
#   dynamic    bench/dynamic_memory_bench.cc on cuda:0 (opt-in; needs the build's
#              dynamic_memory_bench and modelgrid-worker, and the zoo): the pinned
#              copy bandwidth (scripts/swap_floor.py's), then --section
#              oversubscription (21 models, 3 configurations x DYNAMIC_SECONDS)
#              and --section swap (DYNAMIC_REPS per zoo model: swap-in vs a cold
#              load, and each swap vs the pinned copy floor) -> dynamic_*_cuda.md;
#              about 2 minutes on an H200 with 16 cores at the defaults
# A command may run at most 10 minutes on the lent machine: split the steps
# over calls (the build folder stays between calls), e.g. first
# --steps machine,deps,configure,build then --steps gpu-tests,zoo,accuracy,context,density.
# The dynamic-memory bench in one call on a fresh machine:
#   BUILD_TARGETS="modelgrid-worker dynamic_memory_bench" scripts/gpu-check.sh \
#     --debs .cache/gpu-debs --jobs 16 --steps machine,deps,configure,build,zoo,dynamic
#
# Libraries the build needs that the GPU machine lacks come as .deb files:
# on the development machine `scripts/gpu-check.sh --fetch-debs .cache/gpu-debs`
# (apt-get download; .cache/ is git-ignored), carry that folder with the call,
# and pass `--debs .cache/gpu-debs` there: each .deb is unpacked with dpkg -x
# into BUILD/deps-prefix (never into /), CMake and pkg-config are pointed at it.
#
# Environment: OUT (default output folder), MODELGRID_NVIDIA_SMI (the
# nvidia-smi to use, default `nvidia-smi`), PYTHON (default python3);
# STRATEGIES, ISOLATIONS (space-separated subsets for the density step) and
# BUILD_TARGETS (build only these, e.g. "modelgrid modelgrid-worker") and
# DENSITY_SECONDS (load run per served configuration, default 20): the
# served density runs one `modelgrid serve` per pair, so split it over calls
# under the 10-minute limit, e.g. STRATEGIES=memory-optimized --steps density.
# DYNAMIC_SECONDS (timed seconds per over-subscription configuration, default
# 12) and DYNAMIC_REPS (swap section repetitions per model, default 3) size
# the dynamic step; a build without BUILD_TARGETS builds every target, the
# bench included.
# Exit codes: 0 every step ran and passed; 1 a step failed (see results.md);
# 2 bad arguments; 3 a prerequisite is missing (no nvidia-smi, no GPU, no
# CUDA-enabled torch, no cmake/ninja).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-$ROOT/gpu-results}"
BUILD_DIR="$ROOT/build-gpu"
DEBS_DIR=""
STEPS="machine,deps,configure,build,zoo,gpu-tests,accuracy,context,density,swap"
ZOO_PROFILE="small"
REPLICAS=8
JOBS="$(nproc 2>/dev/null || echo 4)"
DRY_RUN=0
FETCH_DEBS=""
NVIDIA_SMI="${MODELGRID_NVIDIA_SMI:-nvidia-smi}"
PYTHON="${PYTHON:-python3}"
ALL_STEPS="machine deps configure build zoo gpu-tests tests accuracy context density swap dynamic"
STRATEGIES="${STRATEGIES:-fill-first balance memory-optimized latency-sensitive optimal}"
ISOLATIONS="${ISOLATIONS:-model device}"
DENSITY_SECONDS="${DENSITY_SECONDS:-20}"
DYNAMIC_SECONDS="${DYNAMIC_SECONDS:-12}"
DYNAMIC_REPS="${DYNAMIC_REPS:-3}"
# Debian 12 packages the build needs beyond CMake, ninja, g++ and LibTorch
# (scripts/install-deps.sh), with the runtime libraries of the compiled ones.
DEB_PACKAGES=(
  pkgconf pkgconf-bin libpkgconf3
  nlohmann-json3-dev libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libcli11-dev libzip-dev libzip4 libxxhash-dev libxxhash0 libcpp-httplib-dev libcpp-httplib0.11
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev libbenchmark1debian
  protobuf-compiler libprotoc32 libprotobuf-dev libprotobuf32 libprotobuf-lite32
  # cpp-httplib.pc and libzip-dev name these in Requires.private / as dependencies:
  zlib1g-dev libssl-dev libssl3 libbrotli-dev libbrotli1
)

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

die_usage() {
  echo "gpu-check: $1" >&2
  echo "run 'scripts/gpu-check.sh --help' for the options" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die_usage "--out needs a folder"; OUT_DIR="$2"; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || die_usage "--build-dir needs a folder"; BUILD_DIR="$2"; shift 2 ;;
    --debs) [ $# -ge 2 ] || die_usage "--debs needs a folder"; DEBS_DIR="$2"; shift 2 ;;
    --steps) [ $# -ge 2 ] || die_usage "--steps needs a list"; STEPS="$2"; shift 2 ;;
    --zoo-profile) [ $# -ge 2 ] || die_usage "--zoo-profile needs small or full"; ZOO_PROFILE="$2"; shift 2 ;;
    --replicas) [ $# -ge 2 ] || die_usage "--replicas needs a number"; REPLICAS="$2"; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die_usage "--jobs needs a number"; JOBS="$2"; shift 2 ;;
    --fetch-debs) [ $# -ge 2 ] || die_usage "--fetch-debs needs a folder"; FETCH_DEBS="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

case "$ZOO_PROFILE" in small|full) ;; *) die_usage "--zoo-profile must be small or full, not '$ZOO_PROFILE'" ;; esac
[[ "$REPLICAS" =~ ^[1-9][0-9]*$ ]] || die_usage "--replicas must be a positive number, not '$REPLICAS'"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die_usage "--jobs must be a positive number, not '$JOBS'"
[[ "$DYNAMIC_SECONDS" =~ ^[1-9][0-9]*$ ]] || die_usage "DYNAMIC_SECONDS must be a positive number, not '$DYNAMIC_SECONDS'"
[[ "$DYNAMIC_REPS" =~ ^[1-9][0-9]*$ ]] || die_usage "DYNAMIC_REPS must be a positive number, not '$DYNAMIC_REPS'"
IFS=',' read -r -a SELECTED <<< "$STEPS"
for s in "${SELECTED[@]}"; do
  [[ " $ALL_STEPS " == *" $s "* ]] || die_usage "unknown step '$s' (steps: $ALL_STEPS)"
done
selected() { [[ ",$STEPS," == *",$1,"* ]]; }

if [ -n "$FETCH_DEBS" ]; then
  # On the development machine: download (not install) the packages above.
  mkdir -p "$FETCH_DEBS" && cd "$FETCH_DEBS" || exit 1
  echo "gpu-check: apt-get download ${DEB_PACKAGES[*]} into $FETCH_DEBS"
  apt-get download "${DEB_PACKAGES[@]}" || exit 1
  exit 0
fi

ZOO_DIR="$BUILD_DIR/zoo-$ZOO_PROFILE"
REPLICATED_DIR="$BUILD_DIR/zoo-replicated"
DEPS_PREFIX="$BUILD_DIR/deps-prefix"
LOG_DIR="$OUT_DIR/logs"
RESULTS="$OUT_DIR/results.md"

# dynamic_limit SECTION: seconds the dynamic step lets one bench section run
# (timeout), far above the expected time (3 x (DYNAMIC_SECONDS + ~4 s) for
# the over-subscription, 7 models x DYNAMIC_REPS x ~3-5 s for the swap), so
# that a hang cannot eat the call's 10 minutes.
dynamic_limit() {
  case "$1" in
    oversubscription) echo $((3 * DYNAMIC_SECONDS + 120)) ;;
    swap) echo $((7 * DYNAMIC_REPS * 8 + 60)) ;;
  esac
}

# ---------------------------------------------------------------- dry run
describe() {  # describe STEP: what the step runs, for --dry-run
  case "$1" in
    machine) echo "cat /etc/os-release; g++ --version; $NVIDIA_SMI; $PYTHON -c 'import torch; print(torch.__version__, torch.version.cuda)' > $OUT_DIR/machine.txt" ;;
    deps) echo "dpkg -x each ${DEBS_DIR:-<--debs DIR>}/*.deb into $DEPS_PREFIX (skipped without --debs); CMAKE_PREFIX_PATH, PKG_CONFIG_PATH, LD_LIBRARY_PATH point there" ;;
    configure) echo "cmake -S $ROOT -B $BUILD_DIR -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH=\"\$($PYTHON -c 'import torch;print(torch.utils.cmake_prefix_path)')[;$DEPS_PREFIX/usr]\" (expects MODELGRID_WITH_CUDA=ON)" ;;
    build) echo "cmake --build $BUILD_DIR -j $JOBS${BUILD_TARGETS:+ --target ${BUILD_TARGETS// / --target }} -- -k 0" ;;
    gpu-tests) echo "ctest --test-dir $BUILD_DIR -L gpu --output-on-failure" ;;
    tests) echo "ctest --test-dir $BUILD_DIR -j $JOBS --output-on-failure --timeout 900 (MODELGRID_TEST_ZOO=$BUILD_DIR/zoo-small)" ;;
    zoo) echo "$PYTHON tools/zoo/generate.py --profile $ZOO_PROFILE --out $ZOO_DIR" ;;
    accuracy) echo "$BUILD_DIR/bin/estimate_accuracy $ZOO_DIR --batches 1,8,32 --device cuda:0 (estimate on CUDA vs modelgrid-probe on cuda:0: caching-allocator reserved and allocated peaks, NVML process bytes; the seed's formula beside them)" ;;
    context) echo "per CUDA_MODULE_LOADING in LAZY EAGER: a $PYTHON process creates a CUDA context (torch.zeros(1, device='cuda')); $NVIDIA_SMI --query-compute-apps=pid,used_memory and memory.used before/after; then scripts/served_density.py serves $ZOO_DIR on cuda:0 (isolation model) and reports each worker's NVML-measured context_bytes" ;;
    swap) echo "$PYTHON scripts/swap_floor.py --zoo $ZOO_DIR --device cuda:0 (pinned/pageable copy GB/s; per model swap-out/in ms vs weight bytes / pinned host->device GB/s; bit-identical outputs)" ;;
    dynamic) echo "pinned host<->device GB/s (scripts/swap_floor.py's bandwidth(), best of 5); then $BUILD_DIR/bin/dynamic_memory_bench --device cuda:0 --zoo $ZOO_DIR --section oversubscription --seconds $DYNAMIC_SECONDS (at most $(dynamic_limit oversubscription) s) > $OUT_DIR/dynamic_oversubscription_cuda.md, and --section swap --reps $DYNAMIC_REPS --h2d-gb-s H --d2h-gb-s D (at most $(dynamic_limit swap) s) > $OUT_DIR/dynamic_swap_cuda.md; the grids' logs in $LOG_DIR/dynamic-*.log" ;;
    density) echo "replicate $ZOO_DIR x$REPLICAS into $REPLICATED_DIR; for strategy in $STRATEGIES, isolation in $ISOLATIONS: $BUILD_DIR/bin/modelgrid plan --repository $REPLICATED_DIR --strategy S --isolation I --json (placed / unplaced on the discovered GPUs), then scripts/served_density.py: modelgrid serve on cuda:0, a ${DENSITY_SECONDS}s load run across all ready models (507 / 5xx counted), utilization = held bytes / device bytes" ;;
  esac
}

if [ "$DRY_RUN" -eq 1 ]; then
  echo "gpu-check: dry run; output folder $OUT_DIR, build folder $BUILD_DIR"
  echo "prerequisites: $NVIDIA_SMI sees a GPU; $PYTHON has torch with CUDA; cmake and ninja"
  n=0
  for s in $ALL_STEPS; do
    selected "$s" || continue
    n=$((n + 1))
    echo "step $n: $s: $(describe "$s")"
  done
  echo "results: $RESULTS (a table per step), logs: $LOG_DIR"
  exit 0
fi

# ---------------------------------------------------------------- prerequisites
prereq_fail() {
  echo "gpu-check: $1" >&2
  echo "gpu-check: this script needs a machine with an NVIDIA GPU (see ../shared/reference/gpu_machine.md); 'scripts/gpu-check.sh --dry-run' lists its steps" >&2
  exit 3
}
command -v "$NVIDIA_SMI" > /dev/null 2>&1 || prereq_fail "nvidia-smi not found ('$NVIDIA_SMI'): no NVIDIA driver on this machine"
"$NVIDIA_SMI" -L > /dev/null 2>&1 || prereq_fail "'$NVIDIA_SMI -L' failed: the driver sees no GPU"
command -v cmake > /dev/null 2>&1 || prereq_fail "cmake not found"
command -v ninja > /dev/null 2>&1 || prereq_fail "ninja not found"
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1 ||
  prereq_fail "'$PYTHON' has no torch with a usable CUDA device"
if [ -n "$DEBS_DIR" ] && ! ls "$DEBS_DIR"/*.deb > /dev/null 2>&1; then
  prereq_fail "--debs '$DEBS_DIR' holds no .deb file"
fi

mkdir -p "$OUT_DIR" "$LOG_DIR" || exit 1
STATUS_ROWS=()
FAILED=0
SECTIONS="$OUT_DIR/.sections.md"
: > "$SECTIONS"

# run_step NAME FUNCTION: runs FUNCTION with its output in logs/NAME.log and
# records pass/fail and the time in the results table.
run_step() {
  local name="$1" fn="$2" start end rc
  start=$(date +%s)
  echo "gpu-check: step $name (log: $LOG_DIR/$name.log)"
  "$fn" > "$LOG_DIR/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  if [ $rc -eq 0 ]; then
    STATUS_ROWS+=("| $name | ok | $((end - start)) |")
  else
    STATUS_ROWS+=("| $name | FAILED (exit $rc; logs/$name.log) | $((end - start)) |")
    FAILED=1
    tail -n 20 "$LOG_DIR/$name.log" | sed 's/^/    /'
  fi
  return $rc
}

section() { printf '\n## %s\n\n' "$1" >> "$SECTIONS"; }

# ---------------------------------------------------------------- environment from the carried debs
use_deps_prefix() {
  [ -d "$DEPS_PREFIX/usr" ] || return 0
  local arch_lib="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu"
  export PKG_CONFIG_PATH="$arch_lib/pkgconfig:$DEPS_PREFIX/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$arch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$DEPS_PREFIX/usr/bin:$PATH"
  EXTRA_PREFIX=";$DEPS_PREFIX/usr"
}
EXTRA_PREFIX=""

step_machine() {
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "--- /etc/os-release"; cat /etc/os-release
    echo "--- g++ --version"; g++ --version | head -1
    echo "--- cmake --version"; cmake --version | head -1
    echo "--- nvidia-smi"; "$NVIDIA_SMI"
    echo "--- torch"
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))'
    echo "--- cmake_prefix_path"; "$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)'
  } | tee "$OUT_DIR/machine.txt"
}

step_deps() {
  if [ -z "$DEBS_DIR" ]; then
    echo "no --debs: using the libraries installed on this machine"
    return 0
  fi
  rm -rf "$DEPS_PREFIX" && mkdir -p "$DEPS_PREFIX" || return 1
  local deb
  for deb in "$DEBS_DIR"/*.deb; do
    echo "dpkg -x $deb"
    dpkg -x "$deb" "$DEPS_PREFIX" || return 1
  done
  # The .pc files say prefix=/usr: make them point into the private prefix.
  find "$DEPS_PREFIX" -name '*.pc' -exec sed -i "s|^prefix=/usr\$|prefix=$DEPS_PREFIX/usr|" {} +
  use_deps_prefix
}

step_configure() {
  local torch_prefix
  torch_prefix="$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)')" || return 1
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$torch_prefix$EXTRA_PREFIX" || return 1
  grep -q 'MODELGRID_WITH_CUDA=ON' "$LOG_DIR/configure.log" ||
    { echo "gpu-check: configured, but MODELGRID_WITH_CUDA is not ON: the LibTorch found has no CUDA"; return 1; }
}

# -k 0: a failed build lists every error in one call (device time is scarce).
# BUILD_TARGETS (space-separated) builds only those targets (a short call).
step_build() {
  local targets=()
  [ -n "${BUILD_TARGETS:-}" ] && for t in $BUILD_TARGETS; do targets+=(--target "$t"); done
  cmake --build "$BUILD_DIR" -j "$JOBS" "${targets[@]}" -- -k 0
}

step_gpu_tests() {
  ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure -V
  local rc=$?
  section "GPU tests (ctest -L gpu)"
  grep -E '^ *[0-9]+/[0-9]+ Test|tests passed|SKIPPED|^GPU [0-9]+:' "$LOG_DIR/gpu-tests.log" | sed 's/^/    /' >> "$SECTIONS"
  return $rc
}

step_tests() {
  MODELGRID_TEST_ZOO="$BUILD_DIR/zoo-small" ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 900
}

step_zoo() { "$PYTHON" "$ROOT/tools/zoo/generate.py" --profile "$ZOO_PROFILE" --out "$ZOO_DIR"; }

step_accuracy() {
  section "Estimate accuracy on CUDA (batch 1, 8, 32)"
  local tool="$BUILD_DIR/bin/estimate_accuracy"
  # modelgrid-probe measures on cuda:0 when the build has CUDA (probe.h):
  # the caching allocator's peaks and NVML's bytes for the probe process.
  "$tool" "$ZOO_DIR" --batches 1,8,32 --device cuda:0 | tee "$OUT_DIR/estimate_accuracy_cuda.md" || return 1
  cat "$OUT_DIR/estimate_accuracy_cuda.md" >> "$SECTIONS"
}

# gpu_used_mib: memory.used of GPU 0 in MiB.
gpu_used_mib() { "$NVIDIA_SMI" --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' '; }

# context_once LOADING: one process with a CUDA context; prints a table row.
context_once() {
  local loading="$1" fifo ready pid before after apps=""
  fifo="$(mktemp -u)" && mkfifo "$fifo" || return 1
  ready="$(mktemp)"
  before="$(gpu_used_mib)"
  CUDA_MODULE_LOADING="$loading" "$PYTHON" -c '
import os, sys, torch
torch.zeros(1, device="cuda")
torch.cuda.synchronize()
print(os.getpid(), flush=True)
sys.stdin.read()' < "$fifo" > "$ready" &
  pid=$!
  exec 7> "$fifo"  # holds the child's stdin open until we close it
  for _ in $(seq 1 600); do
    [ -s "$ready" ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  if [ ! -s "$ready" ]; then
    exec 7>&-
    wait "$pid"
    rm -f "$fifo" "$ready"
    echo "gpu-check: the CUDA_MODULE_LOADING=$loading process did not create a context" >&2
    return 1
  fi
  sleep 1
  after="$(gpu_used_mib)"
  # NVML lists host PIDs: inside a container they differ from $pid, so take
  # every compute process (the machine is ours alone).
  apps="$("$NVIDIA_SMI" --query-compute-apps=pid,used_memory --format=csv,noheader,nounits | tr -d ' ' | paste -sd ';')"
  exec 7>&-
  wait "$pid"
  rm -f "$fifo" "$ready"
  echo "| $loading | $((after - before)) | ${apps:-none} |"
}

step_context() {
  section "CUDA context per process (PyTorch $("$PYTHON" -c 'import torch;print(torch.__version__)'))"
  {
    echo "One python3 process creating a CUDA context with torch.zeros(1, device='cuda'); GPU 0."
    echo
    echo "| CUDA_MODULE_LOADING | memory.used delta MiB | compute apps (pid,MiB) |"
    echo "|---|---:|---|"
  } >> "$SECTIONS"
  local loading row
  for loading in LAZY EAGER; do
    row="$(context_once "$loading")" || return 1
    echo "$row" | tee -a "$SECTIONS"
  done
  # The figure placement charges: modelgrid-worker's own context, measured
  # by the grid through NVML (per-process bytes minus the caching
  # allocator's reserve) once each worker has loaded (MeasureWorkerContext).
  {
    echo
    echo "modelgrid-worker (isolation model, one worker per $ZOO_PROFILE-zoo model on cuda:0; context_bytes as /v2/modelgrid/models reports it):"
    echo
    echo "| device | strategy | isolation | models | ready | requests | 2xx | 507 | 5xx other | held bytes | device bytes | utilization | contexts |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  } >> "$SECTIONS"
  "$PYTHON" "$ROOT/scripts/served_density.py" --modelgrid "$BUILD_DIR/bin/modelgrid" \
      --repository "$ZOO_DIR" --device cuda:0 --isolation model --seconds 10 \
      --json "$LOG_DIR/context-worker.json" 2>> "$LOG_DIR/context-worker.log" | tee -a "$SECTIONS"
  return "${PIPESTATUS[0]}"
}

step_swap() {
  section "Swap floor: copy bandwidth and weights swapped to pinned host memory and back (scripts/swap_floor.py)"
  "$PYTHON" "$ROOT/scripts/swap_floor.py" --zoo "$ZOO_DIR" --device cuda:0 \
      --json "$LOG_DIR/swap_floor.json" | tee -a "$SECTIONS"
  return "${PIPESTATUS[0]}"
}

# The pinned host->device and device->host GB/s (the best over 64 MiB, 256
# MiB and 1 GiB, as scripts/swap_floor.py measures them), as "H2D D2H".
pinned_bandwidth() {
  "$PYTHON" - "$ROOT/scripts" << 'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import swap_floor
pinned = [r for r in swap_floor.bandwidth("cuda:0", 5) if r["pinned"]]
print(f'{max(r["h2d_gb_s"] for r in pinned):.2f} {max(r["d2h_gb_s"] for r in pinned):.2f}')
PYEOF
}

# dynamic_section NAME ARGS...: one section of the bench on cuda:0, its
# tables into dynamic_NAME_cuda.md and the results, the grids' logs into
# logs/dynamic-NAME.log.
dynamic_section() {
  local name="$1" limit rc why
  shift
  limit="$(dynamic_limit "$name")"
  echo "gpu-check: dynamic_memory_bench --section $name (at most $limit s)"
  timeout -k 10 "$limit" "$BUILD_DIR/bin/dynamic_memory_bench" --device cuda:0 --zoo "$ZOO_DIR" \
      --section "$name" "$@" > "$OUT_DIR/dynamic_${name}_cuda.md" 2> "$LOG_DIR/dynamic-$name.log"
  rc=$?
  tee -a "$SECTIONS" < "$OUT_DIR/dynamic_${name}_cuda.md"
  if [ $rc -ne 0 ]; then
    why="exit $rc"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="stopped after $limit s (timeout)"; fi
    printf '\n%s section: %s; the last lines of logs/dynamic-%s.log:\n\n' "$name" "$why" "$name" |
      tee -a "$SECTIONS"
    tail -n 15 "$LOG_DIR/dynamic-$name.log" | sed 's/^/    /' | tee -a "$SECTIONS"
  fi
  return $rc
}

# Dynamic memory on cuda:0 (bench/dynamic_memory_bench.cc, docs/benchmarks.md
# "Dynamic memory"): over-subscription against refusing and against
# evict-by-unload, and swap-in vs cold load with each swap against the pinned
# copy bandwidth measured just before (by a process that has exited by then).
step_dynamic() {
  local bw="" h2d="" d2h="" rc=0 bw_args=()
  if [ ! -x "$BUILD_DIR/bin/dynamic_memory_bench" ] || [ ! -x "$BUILD_DIR/bin/modelgrid-worker" ]; then
    echo "gpu-check: $BUILD_DIR/bin/dynamic_memory_bench or modelgrid-worker is not built" \
      "(BUILD_TARGETS=\"modelgrid-worker dynamic_memory_bench\", or no BUILD_TARGETS)"
    return 1
  fi
  [ -d "$ZOO_DIR/resnet18" ] || { echo "gpu-check: no zoo in $ZOO_DIR: run the zoo step first"; return 1; }
  section "Dynamic memory on cuda:0 (bench/dynamic_memory_bench.cc --device cuda:0)"
  bw="$(pinned_bandwidth)" && read -r h2d d2h <<< "$bw"
  if [ -n "$d2h" ]; then
    echo "Pinned host->device $h2d GB/s, device->host $d2h GB/s (scripts/swap_floor.py's bandwidth(), best of 5, measured just before the bench)." |
      tee -a "$SECTIONS"
    bw_args=(--h2d-gb-s "$h2d" --d2h-gb-s "$d2h")
  else
    echo "Pinned copy bandwidth not measured (scripts/swap_floor.py's bandwidth() failed: see logs/dynamic.log): no swap-vs-floor table." |
      tee -a "$SECTIONS"
  fi
  dynamic_section oversubscription --seconds "$DYNAMIC_SECONDS" || rc=1
  dynamic_section swap --reps "$DYNAMIC_REPS" "${bw_args[@]}" || rc=1
  return $rc
}

replicate_zoo() {
  rm -rf "$REPLICATED_DIR" && mkdir -p "$REPLICATED_DIR" || return 1
  local model name k
  for model in "$ZOO_DIR"/*/; do
    name="$(basename "$model")"
    for k in $(seq 1 "$REPLICAS"); do
      cp -al "$model" "$REPLICATED_DIR/${name}_r$k" 2> /dev/null || cp -a "$model" "$REPLICATED_DIR/${name}_r$k" || return 1
    done
  done
}

step_density() {
  replicate_zoo || return 1
  local count
  count="$(find "$REPLICATED_DIR" -mindepth 1 -maxdepth 1 -type d | wc -l)"
  section "Density: $count models ($REPLICAS copies of the $ZOO_PROFILE zoo), modelgrid plan on the discovered GPUs"
  {
    echo "| strategy | isolation | placed | unplaced | GPU instances | CPU instances | GPU committed MiB | GPU total MiB |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
  } >> "$SECTIONS"
  local strategy isolation json rc=0
  for strategy in $STRATEGIES; do
    for isolation in $ISOLATIONS; do
      json="$LOG_DIR/plan-$strategy-$isolation.json"
      if ! "$BUILD_DIR/bin/modelgrid" plan --repository "$REPLICATED_DIR" --strategy "$strategy" \
            --isolation "$isolation" --json > "$json"; then
        echo "| $strategy | $isolation | plan failed (logs/plan-$strategy-$isolation.json) | | | | | |" >> "$SECTIONS"
        rc=1
        continue
      fi
      "$PYTHON" - "$json" "$strategy" "$isolation" >> "$SECTIONS" << 'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
gpu = [d for d in j["devices"] if d["device"].startswith("cuda:")]
on_gpu = sum(1 for a in j["placed"] if a["device"].startswith("cuda:"))
mib = lambda b: b // (1 << 20)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {len(j['placed'])} | {len(j['unplaced'])} | {on_gpu} | "
      f"{len(j['placed']) - on_gpu} | {mib(sum(d['committed_bytes'] for d in gpu))} | "
      f"{mib(sum(d['total_bytes'] for d in gpu))} |")
EOF
    done
  done
  # Density as served: the same replicated zoo through `modelgrid serve` on
  # cuda:0 alone, per strategy and isolation: models ready, a load run across
  # all of them (zero 507 / 5xx expected), and the memory utilization reached.
  {
    echo
    echo "Served on cuda:0 (scripts/served_density.py: serve, a ${DENSITY_SECONDS}s load run across every ready model, SIGTERM):"
    echo
    echo "| device | strategy | isolation | models | ready | requests | 2xx | 507 | 5xx other | held bytes | device bytes | utilization | contexts |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  } >> "$SECTIONS"
  for strategy in $STRATEGIES; do
    for isolation in $ISOLATIONS; do
      if ! "$PYTHON" "$ROOT/scripts/served_density.py" --modelgrid "$BUILD_DIR/bin/modelgrid" \
            --repository "$REPLICATED_DIR" --device cuda:0 --strategy "$strategy" \
            --isolation "$isolation" --seconds "$DENSITY_SECONDS" \
            --json "$LOG_DIR/served-$strategy-$isolation.json" \
            2>> "$LOG_DIR/served-$strategy-$isolation.log" >> "$SECTIONS"; then
        echo "| cuda:0 | $strategy | $isolation | failed or errors: logs/served-$strategy-$isolation.log | | | | | | | | | |" >> "$SECTIONS"
        rc=1
      fi
    done
  done
  return $rc
}

# ---------------------------------------------------------------- run
use_deps_prefix
BUILD_OK=1
for s in $ALL_STEPS; do
  selected "$s" || continue
  case "$s" in
    configure|build)
      run_step "$s" "step_${s//-/_}" || BUILD_OK=0 ;;
    gpu-tests|tests|accuracy|density|dynamic)
      if [ "$BUILD_OK" -eq 0 ]; then
        STATUS_ROWS+=("| $s | skipped (the build failed) | 0 |")
        continue
      fi
      run_step "$s" "step_${s//-/_}" ;;
    *)
      run_step "$s" "step_${s//-/_}" ;;
  esac
done

{
  echo "# gpu-check results"
  echo
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "GPU: $("$NVIDIA_SMI" --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  echo "torch: $("$PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2> /dev/null)"
  echo "steps: $STEPS"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---:|"
  printf '%s\n' "${STATUS_ROWS[@]}"
  cat "$SECTIONS"
} > "$RESULTS"
rm -f "$SECTIONS"
echo "gpu-check: results in $RESULTS"
exit $FAILED
