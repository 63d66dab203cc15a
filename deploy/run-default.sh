#!/usr/bin/env bash
# The main job on the embedded default, from a fresh Debian 12 machine:
# installs the packages, builds, pre-trains the tiny OLMoE and the tiny dense
# OLMo on the synthetic world (or reuses complete runs under runs/), then
# loads every saved checkpoint again and prints its HIT@10.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
runs="${LPI_RUNS_DIR:-$root/runs}"

bash "$root/deploy/install-deps.sh"
LPI_BUILD_DIR="$build" bash "$root/deploy/build.sh" lpi-pretrain lpi-eval

for model in olmoe olmo; do
  echo "== pre-training tiny-$model (jobs/tiny-$model.ini) into $runs/tiny-$model"
  "$build/bin/lpi-pretrain" --job "$root/jobs/tiny-$model.ini" --out "$runs/tiny-$model"
done

echo "== HIT@10 of every saved checkpoint, reloaded from disk (lpi-eval)"
printf '%-24s %12s %12s\n' checkpoint tiny-olmoe tiny-olmo
checkpoints=$(cd "$runs/tiny-olmoe" && ls -d step*-tokens* | grep -v partial | sed 's/^step\([0-9]*\)-.*/\1 &/' | sort -n | cut -d' ' -f2)
for name in $checkpoints; do
  row=$(printf '%-24s' "$name")
  for model in olmoe olmo; do
    hit=$("$build/bin/lpi-eval" --model "$runs/tiny-$model/$name" --relations "$runs/tiny-$model/relations" \
          2>/dev/null | awk '$1 == "overall" { print $4 }')
    row+=$(printf ' %12s' "${hit:-missing}")
  done
  echo "$row"
done
