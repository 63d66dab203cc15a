#!/usr/bin/env bash
# The README's test command: installs the Debian packages, builds everything and
# runs every test through CTest, then the sanitizer builds' tests (ci/sanitize.sh)
# and the fuzzers (ci/fuzz.sh). .ci/run runs exactly this.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LPI_BUILD_DIR:-$root/build}

bash "$root/deploy/install-deps.sh"
LPI_BUILD_DIR="$build" bash "$root/deploy/build.sh"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 900
LPI_BUILD_DIR="$build" bash "$root/ci/sanitize.sh"
bash "$root/ci/fuzz.sh"
