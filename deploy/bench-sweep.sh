#!/usr/bin/env bash
# Sweep benchmark on the embedded default (run deploy/run-default.sh first):
# the tiny OLMoE and OLMo trajectories swept with 1 and 2 worker daemons
# under mpirun (and in one process), printing units/s, prompts/s and where
# the workers' time went (compute, waiting for a checkpoint load, writing the
# store, waiting on the coordinator). Stores go to a scratch folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
runs="${LPI_RUNS_DIR:-$root/runs}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for model in olmoe olmo; do
  job=(--job "$root/jobs/sweep-tiny-$model.ini" --model.revisions="$runs/tiny-$model"
       --relations.folder="$runs/tiny-$model/relations" --progress-every 600)
  for ppu in 50 10; do
    for ranks in 1 2 3; do
      store="$scratch/$model-$ppu-$ranks.h5"
      if [ "$ranks" = 1 ]; then
        launch=("$build/bin/lpi-sweep")
        how="one process"
      else
        launch=(mpirun -np "$ranks" --oversubscribe "$build/bin/lpi-sweep")
        how="mpirun -np $ranks"
      fi
      line=$("${launch[@]}" "${job[@]}" --units.prompts_per_unit="$ppu" --store "$store" 2>&1 |
             grep "this run.s attribution:" | sed "s/.*this run.s attribution: //")
      echo "tiny-$model, $ppu prompts/unit, $how: $line"
    done
  done
done
