#!/usr/bin/env bash
# The parts of scripts/gpu-check.sh that need no GPU, run by CTest
# (gpu_check_dry_run, gpu_check_without_gpu):
#   gpu-check-test.sh dry-run   --dry-run exits 0 and lists every step in order
#   gpu-check-test.sh no-gpu    without nvidia-smi: exit code 3 and a clear message;
#                               bad arguments: exit code 2
set -u
SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gpu-check.sh"
fail() { echo "FAIL: $1"; echo "--- output:"; echo "$out"; exit 1; }

case "${1:-}" in
  dry-run)
    out="$(bash "$SCRIPT" --dry-run --out /tmp/gpu-check-dry 2>&1)"; rc=$?
    [ $rc -eq 0 ] || fail "--dry-run exited $rc"
    n=0
    for step in machine deps configure build zoo gpu-tests accuracy context density swap; do
      n=$((n + 1))
      echo "$out" | grep -q "^step $n: $step: " || fail "step $n is not '$step'"
    done
    echo "$out" | grep -q "^step [0-9]*: tests:" && fail "the full suite is opt-in, not a default step"
    echo "$out" | grep -q "torch.utils.cmake_prefix_path" || fail "configure does not use the machine's LibTorch"
    echo "$out" | grep -q "ctest --test-dir .* -L gpu" || fail "the GPU tests are not run"
    echo "$out" | grep -q "estimate_accuracy .*--batches 1,8,32" || fail "no estimate accuracy at batch 1/8/32"
    echo "$out" | grep -q "modelgrid plan --repository .*--strategy S --isolation I" || fail "no density step"
    echo "$out" | grep -q "estimate_accuracy .*--device cuda:0" || fail "the accuracy step does not measure on CUDA"
    echo "$out" | grep -q "^step [0-9]*: context: .*served_density.py" || fail "no worker context measured as served"
    echo "$out" | grep -q "^step [0-9]*: density: .*served_density.py.*load run" || fail "no served density with a load run"
    [ -e /tmp/gpu-check-dry ] && fail "--dry-run wrote into the output folder"
    out="$(bash "$SCRIPT" --dry-run --steps build,density 2>&1)"
    echo "$out" | grep -q "^step 1: build: " && echo "$out" | grep -q "^step 2: density: " &&
      ! echo "$out" | grep -q ": configure: " || fail "--steps does not select the steps"
    echo "PASS: dry run lists the steps"
    ;;
  no-gpu)
    out="$(MODELGRID_NVIDIA_SMI=/nonexistent/nvidia-smi bash "$SCRIPT" --out /tmp/gpu-check-nogpu-$$ 2>&1)"; rc=$?
    [ $rc -eq 3 ] || fail "exit code $rc, expected 3"
    echo "$out" | grep -q "nvidia-smi not found" || fail "the message does not say nvidia-smi is missing"
    echo "$out" | grep -q "needs a machine with an NVIDIA GPU" || fail "the message does not say what is needed"
    [ -e /tmp/gpu-check-nogpu-$$ ] && fail "wrote results without a GPU"
    out="$(bash "$SCRIPT" --bogus 2>&1)"; rc=$?
    [ $rc -eq 2 ] || fail "unknown argument: exit code $rc, expected 2"
    echo "$out" | grep -q "unknown argument '--bogus'" || fail "unknown argument not named"
    out="$(bash "$SCRIPT" --steps build,flash 2>&1)"; rc=$?
    [ $rc -eq 2 ] && echo "$out" | grep -q "unknown step 'flash'" || fail "unknown step accepted"
    out="$(bash "$SCRIPT" --replicas 0 --dry-run 2>&1)"; rc=$?
    [ $rc -eq 2 ] || fail "--replicas 0 accepted"
    echo "PASS: no GPU gives exit code 3 and says why; bad arguments give 2"
    ;;
  *)
    echo "usage: gpu-check-test.sh dry-run|no-gpu" >&2
    exit 2
    ;;
esac
