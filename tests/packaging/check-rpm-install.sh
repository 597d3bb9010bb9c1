#!/usr/bin/env bash
# Installs a built lifecycle-agent rpm into a throwaway root with its own rpm database and
# checks every file is in place (tests/packaging/expected-files.sh). The host's rpm database
# and files are never touched: --root puts both the files and the database (--dbpath is inside
# the root) under the temp dir. --nodeps: the temp root has none of the Requires installed;
# --noscripts: the scriptlets call systemctl, which has no business with a temp root.
# Usage: check-rpm-install.sh RPM     (default: the newest rpm under build/rpm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/expected-files.sh"
rpmfile=${1:-}
if [ -z "$rpmfile" ]; then
  rpmfile=$(ls -t "$here"/../../build/rpm/rpmbuild/RPMS/*/lifecycle-agent-[0-9]*.rpm 2>/dev/null | head -n 1 || true)
fi
if [ -z "$rpmfile" ] || [ ! -f "$rpmfile" ]; then
  echo "check-rpm-install.sh: no rpm given or found (run scripts/build-rpm.sh first)" >&2
  exit 2
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

rpm --root "$root" --dbpath /rpmdb --initdb
rpm --root "$root" --dbpath /rpmdb -i --nodeps --noscripts --notriggers "$rpmfile"
fail=0
check_tree "$root" || fail=1

# The database in the temp root knows the package and every file it installed is there.
if ! rpm --root "$root" --dbpath /rpmdb -q lifecycle-agent >/dev/null; then
  echo "the temp root's rpm database does not list lifecycle-agent"
  fail=1
fi
if ! out=$(rpm --root "$root" --dbpath /rpmdb -V --nodeps --noscripts lifecycle-agent 2>&1); then
  echo "rpm -V in the temp root:"
  echo "$out"
  fail=1
fi
# The config is %config(noreplace), the state dir is owned.
if ! rpm --root "$root" --dbpath /rpmdb -qc lifecycle-agent | grep -qx /etc/lca/lifecycle-agent.yaml; then
  echo "/etc/lca/lifecycle-agent.yaml is not a %config file"
  fail=1
fi
if ! rpm --root "$root" --dbpath /rpmdb -ql lifecycle-agent | grep -qx /var/lib/lca; then
  echo "the package does not own /var/lib/lca"
  fail=1
fi
if [ $fail -eq 0 ]; then
  echo "ok: $(basename "$rpmfile") installs every expected file into a temp root"
fi
exit $fail
