#!/usr/bin/env bash
# The test command of the README: configure, build, run the default suite with ctest.
# BUILD_DIR (default ./build) and JOBS (default: the number of cores) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLCA_WERROR=ON
cmake --build "$build" -j "$jobs"
# Tests build throwaway ostree sysroots; without this ostree marks deployments immutable and
# temp dirs cannot be removed.
export OSTREE_SYSROOT_DEBUG=mutable-deployments
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600
