#!/usr/bin/env bash
# The study trajectories (docs/RESULTS.md): a MoE and a dense model big enough
# to test the paper's three findings, two training seeds each, on the same
# world. Trains them (or reuses complete runs under runs/study), sweeps every
# checkpoint of each under mpirun with the masking experiment (heads 1, 3,
# 10), analyses each seed's pair with the paper's ranges mapped by its own
# rule (step / 1000: 10K-70K -> 10-70, ..., 1.2M -> 1200), and writes per seed
# the CSV files, figures and report, and over both seeds the study summary
# (runs/study/analysis/study.md): Tables 2-4 per seed with their bootstrap
# intervals, the mean and the spread over seeds.
#
#   bash deploy/run-study.sh                  # both seeds
#   LPI_STUDY_SEEDS="1" bash deploy/run-study.sh
#   LPI_STUDY_STEPS=50 bash deploy/run-study.sh --train-only   # time 50 steps
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
runs="${LPI_STUDY_DIR:-$root/runs/study}"
seeds="${LPI_STUDY_SEEDS:-1 2}"
ranks="${LPI_RANKS:-3}"
train_only=0
[ "${1:-}" = "--train-only" ] && train_only=1

bash "$root/deploy/install-deps.sh"
LPI_BUILD_DIR="$build" bash "$root/deploy/build.sh" lpi-pretrain lpi-sweep lpi-analyze lpi-query
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p "$runs"

# A shorter trajectory for timing (LPI_STUDY_STEPS): its own folder and job copy.
suffix=""
if [ -n "${LPI_STUDY_STEPS:-}" ]; then
  suffix="-steps$LPI_STUDY_STEPS"
fi

# One training a core (a training runs on one thread: on this 2-core machine
# two threads train slower than one), the seeds of a model side by side.
train() {
  local model=$1 seed=$2 job="$root/jobs/study-$1.ini"
  if [ -n "$suffix" ]; then
    job="$runs/study-$model$suffix.ini"
    sed "s/^steps = .*/steps = $LPI_STUDY_STEPS/" "$root/jobs/study-$model.ini" >"$job"
  fi
  local out="$runs/study-$model-s$seed$suffix" log="$runs/train-$model-s$seed$suffix.log"
  local start
  start=$(date +%s.%N)
  if ! "$build/bin/lpi-pretrain" --job "$job" --seed "$seed" --out "$out" >"$log" 2>&1; then
    echo "run-study: training $out failed: $(tail -3 "$log")" >&2
    return 1
  fi
  echo "study-$model seed $seed: $(tail -1 "$log"); $(awk -v a="$start" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", b - a }') s wall" | tee -a "$runs/training-times$suffix.txt"
}
jobs_at_once="${LPI_STUDY_JOBS:-$(nproc)}"
for model in olmoe olmo; do
  echo "== pre-training study-$model (jobs/study-$model.ini), seeds $seeds, into $runs/study-$model-s*"
  pids=()
  for seed in $seeds; do
    train "$model" "$seed" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs_at_once" ]; then
      wait "${pids[0]}"
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
done
[ "$train_only" = 1 ] && exit 0

for seed in $seeds; do
  for model in olmoe olmo; do
    store="$runs/sweep-study-$model-s$seed.h5"
    job=(--job "$root/jobs/sweep-study-$model.ini" --job.name="sweep-study-$model-s$seed"
         --model.name="study-$model-s$seed" --model.revisions="$runs/study-$model-s$seed"
         --relations.folder="$runs/study-$model-s$seed/relations")
    if [ -f "$store" ]; then
      echo "== $store exists: resuming it"
      mpirun -np "$ranks" --oversubscribe "$build/bin/lpi-sweep" --resume --store "$store" "${job[@]}"
    else
      echo "== sweeping study-$model seed $seed into $store"
      mpirun -np "$ranks" --oversubscribe "$build/bin/lpi-sweep" "${job[@]}" --store "$store"
    fi
  done
done

# The paper's ranges and steps / 1000. The consolidation range (Table 2's R_t)
# starts after the paper's dip at 200K; the overlap compares 100K with 300K.
analysis="$runs/analysis"
mkdir -p "$analysis"
stores=()
for seed in $seeds; do
  pair=("$runs/sweep-study-olmoe-s$seed.h5" "$runs/sweep-study-olmo-s$seed.h5")
  stores+=("${pair[@]}")
  echo "== lpi-analyze, seed $seed"
  "$build/bin/lpi-analyze" --store "${pair[0]}" --store "${pair[1]}" --range 10:70 --range 100:600 \
    --range 10:600 --range 10:1200 --consolidation 200:1200 --overlap 100:300 --overlap 70:1200 \
    --ablation-min-hit 0.1 --snapshot 100 --snapshot 600 --snapshot 1200 \
    --csv "$analysis/s$seed" >"$analysis/tables-s$seed.txt"
  cat "$analysis/tables-s$seed.txt"
  /usr/bin/python3 "$root/analysis/scripts/figures.py" "${pair[@]}" --out "$analysis/s$seed/figures"
  /usr/bin/python3 "$root/analysis/scripts/report.py" "${pair[@]}" --step-scale 1000 \
    --out "$analysis/s$seed/report.md" --figures "$analysis/s$seed/figures" >/dev/null
done
/usr/bin/python3 "$root/analysis/scripts/study_summary.py" "${stores[@]}" --out "$analysis/study.md"
echo "== the study: $analysis/study.md, per seed $analysis/s*/report.md"
