#!/usr/bin/env bash
# The real-shape benchmark (docs/PERFORMANCE.md, "Real shapes"): writes a
# random checkpoint with the widths of OLMoE-1B-7B or OLMo-7B and LAYERS
# layers as sharded bf16 safetensors (lpi-make-checkpoint, beside a copy of
# the OLMo tokenizer), sweeps it with the shipped job of that model
# (jobs/olmoe-1b-7b.ini or jobs/olmo-7b.ini: 64 prompts a unit, frozen lens,
# gold targets) under --profile, and prints the lease's profile per
# checkpoint and per layer: load, forward, lens, projection, log-sum-exp,
# store, peak memory.
#   bash deploy/bench-real-shape.sh SHAPE LAYERS [options]
#     SHAPE: olmoe-1b-7b or olmo-7b
#     --device cpu|cuda        (default cpu)
#     --dtype float32|bfloat16 (default float32 on cpu, the job's bfloat16 on cuda)
#     --select R1,R2           relations (default country_capital_city,country_language: 48 prompts;
#                              "" for the paper's 12, 906 prompts)
#     --threads K              lpi-sweep's CPU threads (default: the cores)
#     --work DIR               where the checkpoint and store go (default /tmp/lpi-bench-real)
#     --keep                   keep the checkpoint and the store
# Needs the relations and tokenizer fixtures: LPI_SHARED_DATA (default ../shared/data).
# Shards of LPI_SHARD_MB MiB (default 1024).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${LPI_TOOLS_DIR:-${LPI_BUILD_DIR:-$root/build}/bin}
data=${LPI_SHARED_DATA:-$root/../shared/data}
shape=${1:?usage: bench-real-shape.sh SHAPE LAYERS [options]}
layers=${2:?usage: bench-real-shape.sh SHAPE LAYERS [options]}
shift 2
device=cpu dtype="" select=country_capital_city,country_language threads=$(nproc)
work=/tmp/lpi-bench-real keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --select) select=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "bench-real-shape: unknown option $1" >&2; exit 2 ;;
  esac
done
case $shape in
  olmoe-1b-7b) job=$root/jobs/olmoe-1b-7b.ini ;;
  olmo-7b) job=$root/jobs/olmo-7b.ini ;;
  *) echo "bench-real-shape: SHAPE must be olmoe-1b-7b or olmo-7b, not '$shape'" >&2; exit 2 ;;
esac
[ -z "$dtype" ] && { [ "$device" = cpu ] && dtype=float32 || dtype=bfloat16; }
tokenizer=$data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json
for need in "$data/relations" "$tokenizer"; do
  [ -e "$need" ] || { echo "bench-real-shape: $need is missing (set LPI_SHARED_DATA)" >&2; exit 2; }
done
revisions=$work/$shape-l$layers
store=$work/$shape-l$layers.h5
mkdir -p "$revisions"
rm -f "$store" "$store.partial" "$store.lock"
ckpt=$revisions/step1000-tokens4B
echo "== $(date +%T) writing $ckpt"
rm -rf "$ckpt"
"$bin/lpi-make-checkpoint" --shape "$shape" --layers "$layers" --out "$ckpt" --tokenizer "$tokenizer" \
  --shard-mb "${LPI_SHARD_MB:-1024}"
echo "== $(date +%T) sweeping it with $job on $device in $dtype, $threads thread(s)"
"$bin/lpi-sweep" --job "$job" --store "$store" --profile --threads "$threads" \
  --model.revisions="$revisions" --relations.folder="$data/relations" \
  --relations.select="$select" --attribution.device="$device" --attribution.dtype="$dtype" \
  >"$work/$shape-l$layers.log" 2>&1 || { tail -n 20 "$work/$shape-l$layers.log"; exit 1; }
grep -E "profile:|this run's attribution" "$work/$shape-l$layers.log" | sed 's/^.*\] //; s/^[^ ]* [^ ]* \[rank [0-9]*\] //'
ls -l "$store" | awk '{ printf "store: %.1f MB\n", $5 / 1e6 }'
[ "$keep" = 1 ] || rm -rf "$ckpt" "$store"
