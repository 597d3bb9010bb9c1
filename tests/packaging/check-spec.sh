#!/usr/bin/env bash
# rpm/lifecycle-agent.spec without building it: its Version is the project's, it parses with
# this host's rpm (also where the systemd macros are missing: the spec's fallbacks), the
# scriptlets come out as shell, and rpmlint finds no error in it.
# Usage: check-spec.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
spec=$src/rpm/lifecycle-agent.spec
fail=0

project=$(sed -n 's/^project(lca VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
specv=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
if [ -z "$project" ] || [ "$project" != "$specv" ]; then
  echo "FAIL: spec Version '$specv' differs from CMakeLists.txt's project VERSION '$project'"
  fail=1
else
  echo "ok: Version $specv"
fi

if ! parsed=$(rpmspec -P "$spec" 2>&1); then
  echo "FAIL: rpmspec -P:"
  echo "$parsed"
  exit 1
fi
# Every scriptlet must have become shell: a macro left unexpanded would run as a command
# named "%systemd_post" and fail at install time.
if grep -nE '^%(systemd_|tmpfiles_)' <<<"$parsed"; then
  echo "FAIL: unexpanded systemd macros in the parsed spec"
  fail=1
fi
# Where this rpm lacks the systemd macros, the spec's fallbacks must be what came out.
if [ "$(rpm --eval '%{?systemd_post:defined}')" != defined ]; then
  for want in 'systemctl --no-reload preset lifecycle-agent.service' \
    'systemctl --no-reload disable --now lifecycle-agent.service lca-init-monitor.service' \
    'systemctl try-restart lifecycle-agent.service' 'systemd-tmpfiles --create lca.conf'; do
    if ! grep -qF "$want" <<<"$parsed"; then
      echo "FAIL: the parsed spec has no '$want' (the fallback systemd macros)"
      fail=1
    fi
  done
fi
for d in '/usr/lib/systemd/system/lifecycle-agent.service' '/usr/lib/tmpfiles.d/lca.conf'; do
  grep -qF "$d" <<<"$parsed" || { echo "FAIL: the parsed %files has no $d"; fail=1; }
done
# lca-init-monitor.service is never enabled by the package (only the Upgrade step does, in
# the new deployment): no preset/enable of it in %post.
post=$(awk '/^%post$/{p=1;next} /^%(preun|postun|files)/{p=0} p' <<<"$parsed")
if grep -q 'lca-init-monitor' <<<"$post"; then
  echo "FAIL: %post touches lca-init-monitor.service"
  fail=1
fi

# The filters are for the built rpm; on the spec alone they are unused, which is no error.
out=$(rpmlint --ignore-unused-rpmlintrc -r "$src/rpm/lifecycle-agent.rpmlintrc" "$spec" 2>&1) || true
echo "rpmlint $(basename "$spec"): $(tail -n 1 <<<"$out")"
if grep -q ' E: ' <<<"$out"; then
  grep ' E: ' <<<"$out"
  echo "FAIL: rpmlint reports errors on the spec"
  fail=1
fi
exit $fail
