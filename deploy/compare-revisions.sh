#!/usr/bin/env bash
# Stores written by another revision and by this tree, compared bit for bit:
# the safety net of a refactor that must not change results.
#   deploy/compare-revisions.sh REV [TRAJECTORIES]
# builds lpi-sweep and lpi-attribute of REV (a git worktree under
# $LPI_COMPARE_DIR, default /tmp/lpi-compare), sweeps the MoE and dense
# trajectories in TRAJECTORIES (default: the ones tests/sweep trains, in
# build/tests/sweep/work; run `ctest -R sweep.train` first) with both, one
# process and mpirun -np 3, ablation on, and checks every object, attribute,
# dtype, chunking and value (tests/sweep/check_store.py identical), then the
# attribution file of the last MoE checkpoint (h5diff).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:?usage: deploy/compare-revisions.sh REV [TRAJECTORIES]}
traj=${2:-$root/build/tests/sweep/work}
dir=${LPI_COMPARE_DIR:-/tmp/lpi-compare}
py=/usr/bin/python3
mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ -d "$traj/moe" ] && [ -d "$traj/dense" ] || { echo "no trajectories in $traj"; exit 2; }
if [ ! -d "$dir/src" ]; then git -C "$root" worktree add --detach "$dir/src" "$rev" >/dev/null; fi
git -C "$dir/src" checkout -q --detach "$rev"
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DLPI_WITH_TORCH=ON \
  -DLPI_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir/build" -j"$(nproc)" --target lpi-sweep lpi-attribute >/dev/null
bash "$root/deploy/build.sh" lpi-sweep lpi-attribute >/dev/null
declare -A bin=([old]="$dir/build/bin" [new]="${LPI_BUILD_DIR:-$root/build}/bin")
out=$dir/stores
rm -rf "$out" && mkdir -p "$out"
for m in moe dense; do
  printf '[job]\nname = cmp-%s\n[model]\nname = cmp-%s\nrevisions = %s\n[relations]\nfolder = %s\n[units]\nprompts_per_unit = 3\n[ablation]\nenabled = true\n' \
    "$m" "$m" "$traj/$m" "$traj/$m/relations" >"$out/job-$m.ini"
  for v in old new; do
    "${bin[$v]}/lpi-sweep" --progress-every 600 --job "$out/job-$m.ini" --store "$out/$v-$m-1.h5" 2>/dev/null
    mpirun -np 3 --oversubscribe "${bin[$v]}/lpi-sweep" --progress-every 600 --job "$out/job-$m.ini" \
      --store "$out/$v-$m-3.h5" 2>/dev/null
  done
  for s in 1 3; do "$py" "$root/tests/sweep/check_store.py" identical "$out/old-$m-$s.h5" "$out/new-$m-$s.h5"; done
done
last=$(ls -d "$traj"/moe/step* | sort -V | tail -1)
for v in old new; do
  "${bin[$v]}/lpi-attribute" --model "$last" --relations "$traj/moe/relations" --out "$out/attr-$v.h5" >/dev/null
done
h5diff "$out/attr-old.h5" "$out/attr-new.h5"
echo "attribution files of $(basename "$last"): identical (h5diff)"
echo "compare-revisions: $rev and this tree write the same stores"
