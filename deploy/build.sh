#!/usr/bin/env bash
# Configures and builds lpi-sweep into BUILD_DIR (default: build/), Release,
# with every component. Re-running it rebuilds only what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LPI_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLPI_WITH_TORCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
