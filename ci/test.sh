#!/usr/bin/env bash
# The README's test command: installs the Debian packages, builds everything and
# runs every test through CTest. Used by .ci/run as is.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LPI_BUILD_DIR:-$root/build}
jobs=${LPI_JOBS:-$(nproc)}

bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLPI_WITH_TORCH=ON
cmake --build "$build" -j"$jobs"
cd "$build"
ctest --output-on-failure -j"$jobs" --timeout 900
