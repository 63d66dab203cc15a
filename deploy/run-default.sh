#!/usr/bin/env bash
# The main job on the embedded default, from a fresh Debian 12 machine:
# installs the packages, builds, and runs what the pipeline has so far.
#   - the relations data set (default ../shared/data/relations, or $LPI_RELATIONS)
#     tokenised with the OLMo tokenizer ($LPI_TOKENIZER): samples per relation.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
data="${LPI_SHARED_DATA:-$root/../shared/data}"
relations="${LPI_RELATIONS:-$data/relations}"
tokenizer="${LPI_TOKENIZER:-$data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json}"

bash "$root/deploy/install-deps.sh"
LPI_BUILD_DIR="$build" bash "$root/deploy/build.sh"

echo "== relations: $relations (tokenizer $tokenizer)"
"$build/bin/lpi-relations" --relations "$relations" --tokenizer "$tokenizer"
