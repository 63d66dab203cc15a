#!/usr/bin/env bash
# Installs every Debian 12 package that lpi-sweep's build and tests need
# (clang-14 and its sanitizer and libFuzzer runtimes for ci/fuzz.sh and
# ci/sanitize.sh, llvm-14 for the llvm-symbolizer that names their frames).
# Idempotent: packages already present are left as they are. Not here:
# slurm-wlm and munge, which only the Slurm test (tests/slurm) uses and which
# it installs itself when they are missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  libboost-program-options-dev libboost-log-dev
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  libgtest-dev googletest
  python3 python3-h5py python3-numpy python3-matplotlib
  clang-format-14
  clang-14 libclang-rt-14-dev llvm-14
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
