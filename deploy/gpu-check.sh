#!/usr/bin/env bash
# Every GPU check of lpi-sweep in one run, for a machine with a CUDA device
# (meant to finish well within 10 minutes on one H100/H200). From the
# project's root:
#   bash deploy/gpu-check.sh [OUT]
# OUT (default $OUT, else ./gpu-check-out) receives the logs and figures.
#
# 1. Builds against the CUDA libtorch of the Python torch package (its
#    cmake_prefix_path), with the CUDA kernels (LPI_WITH_CUDA=ON): the whole
#    project when the Debian packages of ../shared/device/fetch-debs.sh were
#    carried as .debs/ (unpacked with unpack-debs.sh, copied to
#    .device/unpack-debs.sh beside them), else the engine alone
#    (LPI_ENGINE_ONLY=ON: libtorch, no MPI, HDF5 or Boost) when GoogleTest is
#    installed there.
# 2. The CUDA tests: the kernels against double precision and their batch
#    invariance (test_cuda_kernels), the engine on the device against the CPU
#    (test_cuda_engine), and the CPU engine suite for reference.
# 3. With the full build: a sweep of a tiny trajectory on cuda and on the
#    CPU, their stores compared within tolerance (tests/sweep/check_store.py
#    close).
#    Shared loads of GPU weights between 4 ranks (tests/worker/mpi_share
#    --device cuda): ncclBroadcast with 4 GPUs or more, else host memory.
# 4. lpi-bench at both real shapes on the device (bf16 weights).
# Exits non-zero when a step fails; every step's log is in OUT.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-${OUT:-$root/gpu-check-out}}
mkdir -p "$out"
build=${LPI_GPU_BUILD_DIR:-$root/build-gpu}
py=${PYTHON:-python3}
failed=0
step() { echo "== $(date +%T) $*" | tee -a "$out/summary.txt"; }
run() {  # run NAME command...: logs to OUT/NAME.log, records the outcome
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "   $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
  [ "$rc" = 0 ] || { failed=1; tail -n 20 "$out/$name.log"; }
  return "$rc"
}

step "device"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "   nvidia-smi failed" | tee -a "$out/summary.txt"
torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)') || {
  echo "gpu-check: no Python torch ($py): its CUDA libtorch is what this builds against"; exit 2; }
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "devices", torch.cuda.device_count())' | tee -a "$out/summary.txt"

prefix=$torch_prefix
engine_only=ON
if [ -d "$root/.debs" ] && [ -f "$root/.device/unpack-debs.sh" ]; then
  step "unpacking the carried Debian packages"
  if eval "$(bash "$root/.device/unpack-debs.sh" "$root/.debs" /tmp/pfx)"; then
    prefix="$torch_prefix;${CMAKE_PREFIX_PATH:-}"
    engine_only=OFF
  else
    echo "   unpack-debs.sh failed: the engine alone is built" | tee -a "$out/summary.txt"
  fi
fi

step "configure (LPI_ENGINE_ONLY=$engine_only, LPI_WITH_CUDA=ON)"
run configure cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLPI_WITH_TORCH=ON \
  -DLPI_WITH_CUDA=ON -DLPI_ENGINE_ONLY="$engine_only" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CUDA_ARCHITECTURES="${LPI_CUDA_ARCHITECTURES:-90}" || exit 1
targets=(lpi-bench test_cuda_kernels test_cuda_engine test_gated_lpi)
[ "$engine_only" = OFF ] && targets+=(lpi-sweep lpi-pretrain lpi-attribute mpi_share)
step "build ${targets[*]}"
run build cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" || exit 1

step "CUDA tests"
run test_cuda_kernels "$build/tests/worker/test_cuda_kernels"
run test_cuda_engine "$build/tests/worker/test_cuda_engine"
run test_gated_lpi "$build/tests/worker/test_gated_lpi"
# A skipped CUDA test on a GPU machine is a failure here.
if grep -q "SKIPPED" "$out/test_cuda_kernels.log" "$out/test_cuda_engine.log"; then
  echo "   CUDA tests skipped on a GPU machine:" | tee -a "$out/summary.txt"
  grep -h "not run" "$out"/test_cuda_*.log | head -n 3 | tee -a "$out/summary.txt"
  failed=1
fi

if [ "$engine_only" = OFF ]; then
  step "a tiny sweep on cuda against the CPU"
  work=$out/sweep
  mkdir -p "$work"
  run pretrain "$build/bin/lpi-pretrain" --job "$root/tests/sweep/fixtures/sweep-moe.ini" \
    --out "$work/moe"
  job=$work/job.ini
  printf '[job]\nname = gpu\n[model]\nname = gpu\nrevisions = %s\n[relations]\nfolder = %s\n[units]\nprompts_per_unit = 8\n' \
    "$work/moe" "$work/moe/relations" >"$job"
  run sweep_cpu "$build/bin/lpi-sweep" --job "$job" --store "$work/cpu.h5"
  run sweep_cuda "$build/bin/lpi-sweep" --job "$job" --store "$work/cuda.h5" \
    --attribution.device=cuda --profile
  grep -m 2 "profile: checkpoint" "$out/sweep_cuda.log" | sed 's/^/   /' | tee -a "$out/summary.txt"
  run compare "$py" "$root/tests/sweep/check_store.py" close "$work/cpu.h5" "$work/cuda.h5" 1e-4
  rm -rf "$work/moe"

  # Shared loads with the weights on the GPUs: ncclBroadcast needs a GPU per
  # rank (NCCL refuses two ranks on one device), so with one GPU the group
  # goes through host memory and only that path is checked here.
  gpus=$("$py" -c 'import torch; print(torch.cuda.device_count())')
  step "shared loads on cuda ($gpus GPU(s); ncclBroadcast $([ "$gpus" -ge 4 ] && echo "checked" || echo "not checked: fewer than 4 GPUs"))"
  run share_cuda mpirun --allow-run-as-root --oversubscribe -np 4 \
    "$build/tests/worker/mpi_share" --device cuda
fi

step "lpi-bench at the real shapes on cuda (bf16 weights)"
for shape in olmoe-1b-7b olmo-7b; do
  run "bench_$shape" "$build/bin/lpi-bench" --shape "$shape" --device cuda --dtype bfloat16 \
    --prompts 64 --reference-prompts 1
  grep -E "prompts/s|projection|peak" "$out/bench_$shape.log" | head -n 10 | sed 's/^/   /' |
    tee -a "$out/summary.txt"
done

step "done: $([ "$failed" = 0 ] && echo "every check passed" || echo "FAILED (see above)")"
exit "$failed"
