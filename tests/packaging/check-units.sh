#!/usr/bin/env bash
# The systemd side of the package, checked from the source tree (ctest label "packaging"):
#  * `systemd-analyze verify` of both units exits 0 and prints nothing (it only warns, exit 0,
#    on an unknown key or a bad value, so silence is the criterion), with our man pages on
#    MANPATH so the Documentation= lines are checked too;
#  * deliberately broken copies are rejected, so the check has teeth;
#  * systemd-tmpfiles creates /var/lib/lca and /run/lca 0700 under a throwaway --root;
#  * the unit names are the ones the Upgrade step carries and the daemon stops.
# Usage: check-units.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
problem() {
  echo "FAIL: $*" >&2
  fail=1
}

mkdir -p "$work/man/man1" "$work/man/man8"
cp "$src/docs/man/lcactl.1" "$work/man/man1/"
cp "$src/docs/man/lifecycle-agent.8" "$work/man/man8/"

# verify UNIT_FILE...: prints systemd-analyze's output; succeeds only on exit 0 and silence.
verify() {
  local out rc=0
  out=$(MANPATH=$work/man systemd-analyze verify --man=yes --generators=no "$@" 2>&1) || rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  [ "$rc" -eq 0 ] && [ -z "$out" ]
}

units=("$src/systemd/lifecycle-agent.service" "$src/systemd/lca-init-monitor.service")
for u in "${units[@]}"; do
  if verify "$u"; then echo "ok: systemd-analyze verify $(basename "$u")"; else problem "verify $(basename "$u")"; fi
done

# Broken copies under the real names (verify derives the unit name from the file name).
# broken NAME SED_EXPR WHAT: the edited copy must fail the same check.
broken() {
  local name=$1 expr=$2 what=$3 dir
  dir=$(mktemp -d -p "$work")
  sed "$expr" "$src/systemd/$name" >"$dir/$name"
  if cmp -s "$src/systemd/$name" "$dir/$name"; then
    problem "the edit '$expr' changed nothing in $name: the negative check is stale"
  elif verify "$dir/$name" >/dev/null; then
    problem "a $name with $what passed the check"
  else
    echo "ok: a $name with $what is rejected"
  fi
}
broken lifecycle-agent.service 's/^WatchdogSec=/WatchdogSecs=/' "a misspelt key"
broken lifecycle-agent.service 's/^Type=notify/Type=notfy/' "a bad Type="
broken lifecycle-agent.service 's|^ExecStart=/bin/sh|ExecStart=/nonexistent/sh|' "a missing executable"
broken lifecycle-agent.service 's|man:lifecycle-agent(8)|man:lifecycle-agent-nonexistent(8)|' "a missing man page"
broken lca-init-monitor.service 's|^ExecStopPost=/usr/bin/systemctl|ExecStopPost=/nonexistent/systemctl|' "a missing ExecStopPost executable"
broken lca-init-monitor.service '/^ExecStart=/d' "no ExecStart="

# What the units promise (the rest of the system relies on these exact settings).
expect() {
  local file=$1 line=$2
  if grep -qxF -- "$line" "$src/systemd/$file"; then :; else problem "$file lacks the line: $line"; fi
}
expect lifecycle-agent.service "Type=notify"
expect lifecycle-agent.service "Restart=on-failure"
expect lifecycle-agent.service "PrivateMounts=yes"
expect lca-init-monitor.service "ExecStopPost=/usr/bin/systemctl --no-reload disable lca-init-monitor.service"
grep -q '^WatchdogSec=' "$src/systemd/lifecycle-agent.service" || problem "lifecycle-agent.service has no WatchdogSec="
grep -q 'exec /usr/bin/lcactl init-monitor --monitor' "$src/systemd/lca-init-monitor.service" ||
  problem "lca-init-monitor.service does not run lcactl init-monitor --monitor"

# Unit names as the code uses them: agent_carry carries and enables these, the Upgrade
# init-monitor decision (agent/pivot/init_monitor_owner.hpp) stops the monitor by name.
for name in lifecycle-agent.service lca-init-monitor.service; do
  grep -qF "\"$name\"" "$src/agent/pivot/agent_carry.hpp" || problem "agent/pivot/agent_carry.hpp does not carry $name"
done
grep -qF '"lca-init-monitor.service"' "$src/agent/pivot/init_monitor_owner.hpp" ||
  problem "agent/pivot/init_monitor_owner.hpp does not name lca-init-monitor.service"

# tmpfiles.d: both directories, 0700 root, under a throwaway root.
troot=$work/tmpfiles-root
mkdir -p "$troot"
if systemd-tmpfiles --create --root="$troot" "$src/systemd/lca.tmpfiles"; then
  for d in var/lib/lca run/lca; do
    got=$(stat -c '%a %U' "$troot/$d" 2>/dev/null || echo missing)
    want="700 root"
    [ "$got" = "$want" ] && echo "ok: tmpfiles /$d $got" || problem "tmpfiles /$d: $got, want $want"
  done
else
  problem "systemd-tmpfiles --create failed on systemd/lca.tmpfiles"
fi

exit $fail
