#!/usr/bin/env bash
# Installs the Debian 12 packages Prism needs to build and test, when missing.
# Idempotent: does nothing (and needs no network) when everything is there.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libucx-dev ucx-utils
  libhdf5-openmpi-dev libhdf5-dev hdf5-tools
  libboost-serialization-dev libhwloc-dev hwloc
  libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  python3
  gnuplot-nox   # the plots of benchmarks/bsp/sweep.sh (PNG through its cairo terminal)
  iproute2      # `ip netns`: the fake hosts of tests/netns (docs/multi-host-test.md)
)
# The Slurm tests start a throw-away local cluster (tests/slurm).
if [ "${PRISM_WITH_SLURM:-1}" = 1 ]; then PACKAGES+=(slurm-wlm munge); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[prism setup] all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "[prism setup] installing: ${missing[*]}"
apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}"
}
# A fresh image may have no package lists yet: update once and retry.
if ! apt_install; then
  $SUDO apt-get update -q -o DPkg::Lock::Timeout=600
  apt_install
fi
