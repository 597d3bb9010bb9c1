#!/usr/bin/env bash
# Pre-caching 40 images (mixed sizes, 32 of them sharing an 8 MiB base layer) with our puller vs
# TALM's algorithm (fixed batches of 10) vs LCA's (a window of 10) vs a plain sequential loop,
# each into a fresh containers-storage, then the cost of a second run with every image present.
# Run twice in one go: on loopback and through an emulated far-edge link (25 ms each way,
# 100 Mbit/s, a TCP proxy inside the bench; tc netem is not available here). Not part of the
# default test run; results in docs/benchmarks.md.
#
#   bash tests/bench/precache.sh [BUILD_DIR] [--driver overlay|vfs] [--images N]
#
# The bench binary moves into a private mount namespace with a tmpfs over /var/lib, and podman
# uses its own --root/--runroot under a temp dir: the machine's /var/lib/containers is untouched.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shift || true
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bench=$build/tests/bench/precache_bench
if [ ! -x "$bench" ]; then
  cmake --build "$build" --target precache_bench >&2
fi
export HOME=${TMPDIR:-/tmp}/lca-precache-bench-home
mkdir -p "$HOME"
for link in loopback edge; do
  echo "== link: $link"
  "$bench" --link "$link" "$@"
done
