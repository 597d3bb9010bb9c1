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
# Tests must never touch the machine's container storage (skopeo/podman run as root default to
# it): if it is absent now, it must still be absent afterwards.
had_containers=$([ -e /var/lib/containers ] && echo yes || echo no)
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600
if [ "$had_containers" = no ] && [ -e /var/lib/containers ]; then
  echo "test.sh: a test created the machine's /var/lib/containers (run skopeo/podman in a" \
    "private mount namespace or with their own roots)" >&2
  exit 1
fi
