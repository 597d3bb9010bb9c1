#!/usr/bin/env bash
# `cmake --install BUILD_DIR --prefix /usr` into a throwaway DESTDIR gives the complete tree the
# rpm ships (tests/packaging/expected-files.sh), with nothing else in it.
# Usage: check-install-tree.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/expected-files.sh"
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

DESTDIR=$dest cmake --install "$build" --prefix /usr >/dev/null
fail=0
check_tree "$dest" || fail=1

# Nothing unexpected: every installed file is one of the expected ones.
expected=$(lca_expected_files | cut -f1 | sort)
while IFS= read -r f; do
  rel=${f#"$dest"/}
  if ! grep -qxF "$rel" <<<"$expected"; then
    echo "unexpected file in the install tree: /$rel"
    fail=1
  fi
done < <(find "$dest" -type f | sort)

if [ $fail -eq 0 ]; then
  echo "ok: cmake --install --prefix /usr gives the expected tree:"
  (cd "$dest" && find . -mindepth 1 \( -type f -o -type d -empty \) | sort | sed 's|^\.|  |')
fi
exit $fail
