#!/usr/bin/env bash
# The sanitizer stage of ci/test.sh (docs/RELIABILITY.md, "Sanitizers"): two
# clang builds with LPI_SANITIZE (cmake/LpiTargets.cmake), each of only the
# targets its tests need, and these tests in them:
#   ASan + UBSan, in LPI_ASAN_BUILD_DIR (default: LPI_BUILD_DIR or build/,
#     plus "-asan"): every torch-free GoogleTest suite; the MPI tests
#     mpi.sweep_loop.np2..4, mpi.h5.np2 and mpi.share.np4; the cases "train", "single",
#     "dry_run" and "changed" of tests/sweep/sweep_tests.sh on the
#     instrumented tools (lpi-pretrain trains both tiny trajectories,
#     lpi-sweep sweeps each in one process; a checkpoint replaced mid-run);
#     and one process sweeping the MoE trajectory with the ablation phase.
#   TSan, in LPI_TSAN_BUILD_DIR (default ...-tsan): test_loops (coordinator
#     and 2-5 worker threads over the in-process transport) and
#     test_reduction (the reduction's threads), repeated; the cases "single"
#     and "changed" and the ablation sweep again, on the trajectories the
#     ASan stage trained (coordinator, worker thread, the daemon's prefetch
#     thread).
# Left out (time): the libtorch GoogleTest suites and the sweep cases under
# mpirun (docs/RELIABILITY.md says which ran clean by hand).
# Under TSan libtorch, OpenMP and OpenBLAS run single-threaded: their own
# synchronisation is invisible to it (not instrumented). Suppressions, for
# third-party code only: ci/sanitize/tsan.supp, tests/fuzz/lsan.supp.
# Every report goes to a file (log_path) under BUILD/sanitize/reports/STEP/,
# so that none is lost in output a test script keeps to itself. A step fails
# on a non-zero exit or on any report; the script exits 1 if any step
# failed. It prints each step: what ran, its seconds, its result; the logs
# are in BUILD/sanitize/. LPI_SANITIZE_STAGES="asan" (or "tsan") runs one
# build only (the TSan sweeps need the trajectories of an earlier ASan run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=${LPI_BUILD_DIR:-$root/build}
asan=${LPI_ASAN_BUILD_DIR:-$base-asan}
tsan=${LPI_TSAN_BUILD_DIR:-$base-tsan}
stages=${LPI_SANITIZE_STAGES:-asan tsan}
jobs=$(($(nproc) < 2 ? $(nproc) : 2))
cxx=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$cxx" ]; then
  echo "sanitize: clang++ not found (deploy/install-deps.sh installs clang-14 and libclang-rt-14-dev)"
  exit 1
fi
# Without it the reports name addresses only (llvm-14, deploy/install-deps.sh).
symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)

# The GoogleTest suites under ASan + UBSan (BUILD/tests/...): all that need
# no libtorch. The libtorch suites (tests/worker) are left out: their ~20 s
# per file to compile, twice, would not fit; the sweeps run the engine.
asan_gtests=(
  common/test_core common/test_safetensors common/test_model_config common/test_hub_cache
  common/test_tokenizer common/test_relations common/test_world common/test_bpe_trainer
  coordinator/test_scheduler coordinator/test_loops coordinator/test_protocol
  coordinator/test_sweep_job coordinator/test_hub_job
  store/test_h5 store/test_schema store/test_store_reader
  analysis/test_metrics analysis/test_reduction
)
# lpi-tokenize: TokenizeCli runs it; lpi-pretrain and lpi-sweep: the sweeps.
asan_targets=(mpi_sweep_loop mpi_h5 mpi_share lpi-tokenize lpi-pretrain lpi-sweep)
asan_mpi='^mpi\.(sweep_loop\.np[234]|h5\.np2|share\.np4)$'
# Repeated: a race needs the threads to meet, which one run may not arrange.
# The two hung-worker cases wait out a 1 s unit timeout each: run once.
tsan_gtests=(
  "coordinator/test_loops --gtest_repeat=20 --gtest_filter=-*Hung*:*Silent*"
  "coordinator/test_loops --gtest_filter=*Hung*:*Silent*"
  "analysis/test_reduction --gtest_repeat=20"
)
tsan_targets=(lpi-sweep test_loops test_reduction)

# The sanitizers' options. Every report to a file, symbolised.
san_common() {  # REPORTS
  echo "log_path=$1/report${symbolizer:+:external_symbolizer_path=$symbolizer}"
}
asan_env() {  # REPORTS
  local common
  common=$(san_common "$1")
  # Leaks are checked except in the processes that start Open MPI (LEAKS=0
  # below): MPI_Finalize leaves leaks of the components it has dlclose()d,
  # whose frames no suppression can name.
  local checks=detect_leaks=${LEAKS:-1}:detect_stack_use_after_return=1
  checks+=:check_initialization_order=1:strict_init_order=1
  echo "ASAN_OPTIONS=$common:$checks"
  echo "UBSAN_OPTIONS=$common:print_stacktrace=1:halt_on_error=1"
  # libhdf5's own leaks on damaged files, as in ci/fuzz.sh (the file says why).
  echo "LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
}
tsan_env() {  # REPORTS
  local common
  common=$(san_common "$1")
  echo "TSAN_OPTIONS=$common:second_deadlock_stack=1:suppressions=$root/ci/sanitize/tsan.supp"
  # libtorch's OpenMP pool and OpenBLAS's pthreads pool synchronise in code
  # that TSan does not see: one thread each (and lpi-sweep's --threads 1).
  echo "OMP_NUM_THREADS=1"
  echo "OPENBLAS_NUM_THREADS=1"
}
mpi_env() {  # mpirun as root, more ranks than cores (as tests/CMakeLists.txt sets)
  echo "OMPI_ALLOW_RUN_AS_ROOT=1"
  echo "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  echo "OMPI_MCA_rmaps_base_oversubscribe=1"
}

failed=()
# step KIND NAME command...: runs the command under KIND's options (asan or
# tsan), its output in BUILD/sanitize/NAME.log; prints its seconds and
# result. Fails on a non-zero exit or on any sanitizer report.
step() {
  local kind=$1 name=$2 build=$asan
  shift 2
  [ "$kind" = tsan ] && build=$tsan
  local id
  id=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._=-' '_')
  local log=$build/sanitize/$id.log reports=$build/sanitize/reports/$id env=()
  rm -rf "$reports" && mkdir -p "$reports"
  mapfile -t env < <("${kind}_env" "$reports"; mpi_env)
  local t0=$SECONDS rc
  # A subshell whose status is not tested, so that set -e holds in it.
  set +e
  (
    set -e
    export "${env[@]}"
    "$@"
  ) >"$log" 2>&1
  rc=$?
  set -e
  # allocator_may_return_null=1 (test_store_reader) notes each refused
  # allocation in a report file of its own: a warning, not a finding.
  grep -LvE '^==[0-9]+==WARNING: AddressSanitizer failed to allocate 0x[0-9a-f]+ bytes$' \
    -r "$reports" | xargs -r rm -f || true
  local found result=ok
  found=$(find "$reports" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    result="FAILED (exit $rc, $found sanitizer report(s))"
    failed+=("$kind: $name")
  fi
  printf 'sanitize: %s %-66s %4d s  %s\n' "$kind" "$name" $((SECONDS - t0)) "$result"
  [ "$result" = ok ] && return 0
  local f
  for f in $(find "$reports" -type f | head -n 3); do
    grep -E "ERROR|WARNING|runtime error|SUMMARY" "$f" | head -n 4 | sed 's/^/    /'
    echo "    report: $f"
  done
  [ "$found" -eq 0 ] && tail -n 15 "$log" | sed 's/^/    /'
  echo "    log: $log"
}

# gtest BUILD SUITE ARG...: the suite's binary (BUILD/tests/SUITE) in its
# folder, as CTest runs it.
gtest() {
  local build=$1 suite=$2
  shift 2
  local asan_options=${ASAN_OPTIONS:-}
  # libhdf5 asks malloc for sizes read from the damaged files that
  # StoreReader.FuzzRegressionInputs replays: it gets NULL, which it checks
  # (as in ci/fuzz.sh; tests/fuzz/README.md).
  [ "$suite" = store/test_store_reader ] && asan_options+=:allocator_may_return_null=1
  cd "$build/tests/$(dirname "$suite")"
  LPI_TOOLS_DIR=$build/bin ASAN_OPTIONS=$asan_options "./$(basename "$suite")" "$@"
}

# sweep_case BIN CASE: a case of tests/sweep/sweep_tests.sh on the tools in BIN.
sweep_work=$asan/tests/sweep/sanitize-work
sweep_case() {
  LPI_TOOLS_DIR=$1 SWEEP_WORK=$sweep_work MPIEXEC=mpirun PYTHON=/usr/bin/python3 \
    bash "$root/tests/sweep/sweep_tests.sh" "$2"
}

# sweep_ablation BIN: one process sweeps the MoE trajectory that the case
# "train" made, attribution then ablation: the worker thread loads and
# prefetches checkpoints, then evaluates under the masks that rank 0 wrote.
sweep_ablation() {
  local bin=$1 job=$sweep_work/sanitize-ablation.ini store=$sweep_work/sanitize-ablation.h5
  cat >"$job" <<EOF
[job]
name = sweep-test-moe
[model]
name = sweep-test-moe
revisions = $sweep_work/moe
[relations]
folder = $sweep_work/moe/relations
[units]
prompts_per_unit = 1
[ablation]
enabled = true
EOF
  rm -f "$store"
  "$bin/lpi-sweep" --progress-every 60 --job "$job" --store "$store"
  /usr/bin/python3 "$root/tests/sweep/check_store.py" complete "$store"
  /usr/bin/python3 "$root/tests/sweep/check_store.py" ablation "$store"
}

# build_stage KIND BUILD SANITIZERS TARGET...: configures and builds.
build_stage() {
  local kind=$1 build=$2 sanitizers=$3
  shift 3
  local t0=$SECONDS log=$build/sanitize/build.log
  mkdir -p "$build/sanitize"
  if cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLPI_WITH_TORCH=ON -DLPI_WITH_CUDA=OFF -DLPI_WITH_NCCL=OFF -DLPI_SANITIZE="$sanitizers" >"$log" 2>&1 &&
    cmake --build "$build" -j"$jobs" --target "$@" >>"$log" 2>&1; then
    printf 'sanitize: %s %-66s %4d s  ok\n' "$kind" "build ($# targets)" $((SECONDS - t0))
    return 0
  fi
  printf 'sanitize: %s %-66s %4d s  FAILED\n' "$kind" "build ($# targets)" $((SECONDS - t0))
  tail -n 30 "$log" | sed 's/^/    /'
  echo "    log: $log"
  failed+=("$kind: build")
  return 1
}

start=$SECONDS
if [[ " $stages " == *" asan "* ]]; then
  targets=("${asan_targets[@]}")
  for t in "${asan_gtests[@]}"; do targets+=("$(basename "$t")"); done
  if build_stage asan "$asan" address,undefined "${targets[@]}"; then
    for t in "${asan_gtests[@]}"; do step asan "$(basename "$t")" gtest "$asan" "$t"; done
    LEAKS=0 step asan "ctest -R '$asan_mpi'" \
      ctest --test-dir "$asan" -R "$asan_mpi" --output-on-failure --timeout 300
    step asan "sweep_tests.sh train" sweep_case "$asan/bin" train
    for c in single dry_run changed; do
      LEAKS=0 step asan "sweep_tests.sh $c" sweep_case "$asan/bin" "$c"
    done
    LEAKS=0 step asan "lpi-sweep, one process, with the ablation" sweep_ablation "$asan/bin"
  fi
fi

if [[ " $stages " == *" tsan "* ]] && build_stage tsan "$tsan" thread "${tsan_targets[@]}"; then
  for t in "${tsan_gtests[@]}"; do
    read -r -a args <<<"$t"
    step tsan "$(basename "$t")" gtest "$tsan" "${args[@]}"
  done
  if [ -d "$sweep_work/moe" ] && [ -d "$sweep_work/dense" ]; then
    for c in single changed; do step tsan "sweep_tests.sh $c" sweep_case "$tsan/bin" "$c"; done
    step tsan "lpi-sweep, one process, with the ablation" sweep_ablation "$tsan/bin"
  else
    echo "sanitize: tsan: no trajectories in $sweep_work to sweep (the ASan stage's train makes them)"
    failed+=("tsan: sweeps")
  fi
fi

echo "sanitize: $((SECONDS - start)) s in all"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'sanitize: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "sanitize: no finding"
