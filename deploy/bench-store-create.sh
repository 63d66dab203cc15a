#!/usr/bin/env bash
# The real jobs' stores at their real size: `lpi-sweep --dry-run` (the grid and
# the store's size) and, with --create, `lpi-sweep --create-only` timed (every
# dataset of the schema created, nothing computed), on stand-in trajectories
# with the real checkpoint counts and the paper's 906 prompts: each checkpoint
# folder holds the real model's config.json and a placeholder for the weights
# (lpi-make-checkpoint --config-only), which is all a dry run and a creation
# read. OLMoE-1B-7B: 244 checkpoints, every 5000 steps to 1.22M; OLMo-7B: the
# steps of shared/data/OLMo-7B.csv.
#   bash deploy/bench-store-create.sh [--create] [--dtype float32|bfloat16|float16] [--work DIR]
# --dtype: the job's [store] per_prompt_dtype (default: the job's, float32).
# The stores are sparse until written: created with --skip-space-check, they
# take megabytes on disk whatever their size.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${LPI_TOOLS_DIR:-${LPI_BUILD_DIR:-$root/build}/bin}
data=${LPI_SHARED_DATA:-$root/../shared/data}
create=0 dtype="" work=/tmp/lpi-bench-store
while [ $# -gt 0 ]; do
  case $1 in
    --create) create=1; shift ;;
    --dtype) dtype=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "bench-store-create: unknown option $1" >&2; exit 2 ;;
  esac
done
tokenizer=$data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json
for need in "$data/relations" "$tokenizer" "$data/OLMo-7B.csv"; do
  [ -e "$need" ] || { echo "bench-store-create: $need is missing (set LPI_SHARED_DATA)" >&2; exit 2; }
done
# trajectory SHAPE FOLDER STEP...: one stand-in folder per step (4M tokens a step).
trajectory() {
  local shape=$1 folder=$2 template=$2/.template
  shift 2
  rm -rf "$folder" && mkdir -p "$folder"
  "$bin/lpi-make-checkpoint" --shape "$shape" --out "$template" --config-only --tokenizer "$tokenizer"
  for step in "$@"; do
    local c=$folder/step$step-tokens$((step * 4 / 1000))B
    mkdir -p "$c"
    cp "$template"/* "$c/"
  done
  rm -rf "$template"
}
olmoe_steps=$(seq 5000 5000 1220000)
olmo_steps=$(tail -n +2 "$data/OLMo-7B.csv" | cut -d, -f1 | sort -un)
for model in olmoe-1b-7b olmo-7b; do
  if [ "$model" = olmoe-1b-7b ]; then steps=$olmoe_steps; else steps=$olmo_steps; fi
  revisions=$work/$model
  # shellcheck disable=SC2086
  trajectory "$model" "$revisions" $steps
  args=(--job "$root/jobs/$model.ini" --model.revisions="$revisions" --relations.folder="$data/relations")
  [ -n "$dtype" ] && args+=(--store.per_prompt_dtype="$dtype")
  store=$work/$model.h5
  rm -f "$store" "$store.partial" "$store.lock"
  echo "== $model: $(ls "$revisions" | wc -l) checkpoints"
  "$bin/lpi-sweep" "${args[@]}" --store "$store" --dry-run | grep -E "units|store size|checkpoints"
  if [ "$create" = 1 ]; then
    if "$bin/lpi-sweep" "${args[@]}" --store "$store" --create-only --skip-space-check; then
      echo "   file: $(du -h --apparent-size "$store" | cut -f1) apparent, $(du -h "$store" | cut -f1) on disk"
      "$bin/lpi-sweep" --status --store "$store" | sed -n 1,2p
    fi
    rm -f "$store" "$store.lock"
  fi
done
rm -rf "$work"
