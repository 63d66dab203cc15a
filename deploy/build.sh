#!/usr/bin/env bash
# Configures and builds lpi-sweep into LPI_BUILD_DIR (default: build/),
# Release, with every component; arguments name the targets to build (default:
# all). Re-running it rebuilds only what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLPI_WITH_TORCH=ON >/dev/null
if [ "$#" -gt 0 ]; then
  cmake --build "$build" -j"$(nproc)" --target "$@"
else
  cmake --build "$build" -j"$(nproc)"
fi
