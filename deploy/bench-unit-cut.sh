#!/usr/bin/env bash
# What cutting a checkpoint's prompts into small units costs (docs/PERFORMANCE.md,
# "Unit size"): two random checkpoints of the wide-moe shape (d 256, 4 layers,
# 16 experts x 256, top-4, V 50,304: the projection tiles dominate, as at the
# real size) swept with the OLMoE job's settings at 4 and at 64 prompts a unit,
# one process, attribution and (the job's) ablation; prints both times, per
# phase, and their ratio, and checks that the two stores hold the same results.
#   bash deploy/bench-unit-cut.sh [--select R1,R2] [--threads K] [--work DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${LPI_TOOLS_DIR:-${LPI_BUILD_DIR:-$root/build}/bin}
data=${LPI_SHARED_DATA:-$root/../shared/data}
select=country_capital_city,country_language,occupation_gender threads=$(nproc) work=/tmp/lpi-bench-cut
while [ $# -gt 0 ]; do
  case $1 in
    --select) select=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "bench-unit-cut: unknown option $1" >&2; exit 2 ;;
  esac
done
tokenizer=$data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json
rm -rf "$work" && mkdir -p "$work/revisions"
for seed in 1 2; do
  "$bin/lpi-make-checkpoint" --shape wide-moe --seed "$seed" --stddev 0.05 --tokenizer "$tokenizer" \
    --out "$work/revisions/step${seed}000-tokens${seed}B" >/dev/null
done
for n in 64 4; do
  start=$(date +%s.%N)
  "$bin/lpi-sweep" --job "$root/jobs/olmoe-1b-7b.ini" --store "$work/cut$n.h5" --threads "$threads" \
    --model.revisions="$work/revisions" --relations.folder="$data/relations" \
    --relations.select="$select" --attribution.device=cpu --attribution.dtype=float32 \
    --units.prompts_per_unit="$n" >"$work/cut$n.log" 2>&1 || { tail -n 20 "$work/cut$n.log"; exit 1; }
  end=$(date +%s.%N)
  seconds[$n]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  echo "$n prompts a unit: ${seconds[$n]} s ($(grep -o "[0-9]* units, [0-9]* prompts in [0-9.]* s" "$work/cut$n.log"))"
done
awk -v a="${seconds[4]}" -v b="${seconds[64]}" 'BEGIN { printf "ratio 4 / 64: %.3f\n", a / b }'
# The units differ (their flags and sums); every per-prompt result must be the
# same bits, the per-checkpoint means too up to the order of the units' sums.
/usr/bin/python3 "$root/tests/sweep/check_store.py" cut "$work/cut64.h5" "$work/cut4.h5"
[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
