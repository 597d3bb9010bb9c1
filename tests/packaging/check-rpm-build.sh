#!/usr/bin/env bash
# The whole package path, as CI runs it: scripts/build-rpm.sh (dist tarball -> rpmbuild, a full
# compile), rpmlint on the built rpm (no errors), then check-rpm-install.sh (the rpm installed
# into a temp root with its own database, every file in place).
# Usage: check-rpm-build.sh [OUTDIR]   (default: a temp dir, removed afterwards)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -n "${1:-}" ]; then
  out=$1
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

start=$(date +%s)
rpmfile=$(bash "$src/scripts/build-rpm.sh" "$out" | tail -n 1)
echo "check-rpm-build: built $(basename "$rpmfile") in $(($(date +%s) - start))s"

fail=0
lint=$(rpmlint -r "$src/rpm/lifecycle-agent.rpmlintrc" "$rpmfile" 2>&1) || true
echo "rpmlint $(basename "$rpmfile"): $(tail -n 1 <<<"$lint")"
grep -E ' [EW]: ' <<<"$lint" || true
if grep -q ' E: ' <<<"$lint"; then
  echo "FAIL: rpmlint reports errors on the rpm"
  fail=1
fi
bash "$here/check-rpm-install.sh" "$rpmfile" || fail=1
exit $fail
