#!/usr/bin/env bash
# The main job on the embedded default, from a fresh Debian 12 machine:
# installs the packages, builds, pre-trains the tiny OLMoE and the tiny dense
# OLMo on the synthetic world (or reuses complete runs under runs/), then
# sweeps every saved checkpoint of both under mpirun (rank 0 the coordinator,
# two worker daemons) into one HDF5 store per model (Gated-LPI, then the
# masking experiment), prints a summary of each store, and runs the reduction
# phase: lpi-analyze into each store's /analysis group and runs/analysis/*.csv,
# the paper's Figures 1-5 and a one-page report with Tables 2-4. A store that
# exists is resumed (or left as it is if complete).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
runs="${LPI_RUNS_DIR:-$root/runs}"

bash "$root/deploy/install-deps.sh"
LPI_BUILD_DIR="$build" bash "$root/deploy/build.sh" lpi-pretrain lpi-sweep lpi-analyze lpi-query
ranks="${LPI_RANKS:-3}"
mpi_flags=(--oversubscribe)
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

for model in olmoe olmo; do
  echo "== pre-training tiny-$model (jobs/tiny-$model.ini) into $runs/tiny-$model"
  "$build/bin/lpi-pretrain" --job "$root/jobs/tiny-$model.ini" --out "$runs/tiny-$model"
done

for model in olmoe olmo; do
  store="$runs/sweep-tiny-$model.h5"
  job=(--job "$root/jobs/sweep-tiny-$model.ini" --model.revisions="$runs/tiny-$model"
       --relations.folder="$runs/tiny-$model/relations")
  if [ -f "$store" ]; then
    echo "== $store exists: resuming it (lpi-sweep --resume)"
    mpirun -np "$ranks" "${mpi_flags[@]}" "$build/bin/lpi-sweep" --resume --store "$store" "${job[@]}"
  else
    echo "== sweeping tiny-$model: mpirun -np $ranks lpi-sweep --job jobs/sweep-tiny-$model.ini --store $store"
    mpirun -np "$ranks" "${mpi_flags[@]}" "$build/bin/lpi-sweep" "${job[@]}" --store "$store"
  fi
done

for model in olmoe olmo; do
  echo
  echo "== the store of tiny-$model (analysis/scripts/sweep_summary.py)"
  /usr/bin/python3 "$root/analysis/scripts/sweep_summary.py" "$runs/sweep-tiny-$model.h5"
done

# The paper's step ranges (10K-70K, 100K-600K, 10K-600K, 10K-1.2M) scaled to
# the tiny trajectories' 700 steps: the same numbers, in steps; its
# consolidation (after 200K) and its overlap of 100K with 300K likewise (113
# and 282: the tiny trajectories' checkpoints nearest to 100 and 300).
analysis="$runs/analysis"
stores=("$runs/sweep-tiny-olmoe.h5" "$runs/sweep-tiny-olmo.h5")
echo
echo "== the reduction phase: lpi-analyze --store ${stores[*]} (tables also in $analysis/tables.txt)"
mkdir -p "$analysis"
"$build/bin/lpi-analyze" --store "${stores[0]}" --store "${stores[1]}" --range 10:70 --range 100:600 \
  --range 10:600 --range 10:700 --consolidation 200:700 --overlap 113:282 --ablation-min-hit 0.1 \
  --snapshot 113 --snapshot 382 --snapshot 700 --csv "$analysis" >"$analysis/tables.txt"
/usr/bin/python3 "$root/analysis/scripts/figures.py" "${stores[@]}" --out "$analysis/figures"
echo
echo "== the report ($analysis/report.md): the paper's Tables 2-4 for the tiny trajectories"
/usr/bin/python3 "$root/analysis/scripts/report.py" "${stores[@]}" --out "$analysis/report.md" \
  --figures "$analysis/figures"
