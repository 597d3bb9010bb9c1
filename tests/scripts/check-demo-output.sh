#!/usr/bin/env bash
# The stable part of the demo's output (scripts/demo-lib.sh): the "$ command" lines it prints
# above each command's output must be what the golden file says, and each must read back in a
# shell as the very words the demo ran (so it can be pasted); a failing setup phase shows its
# log's tail; and demo.sh prints no command line of its own.
# Usage: check-demo-output.sh SOURCE_DIR (LCA_GOLDEN_OUT=FILE also copies the lines it made
# there, to review before updating the golden file).
set -euo pipefail
src=$(cd "$1" && pwd)
source "$src/scripts/demo-lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -z "${LCA_GOLDEN_OUT:-}" ] || trap 'cp "$work/actual" "$LCA_GOLDEN_OUT"; rm -rf "$work"' EXIT
fail=0
problem() {
  echo "FAIL: $*" >&2
  fail=1
}

# The demo's commands, with its fixed parts and a stand-in for its temp dir and registry.
w=/var/tmp/lca-demo.AbC123
addr=127.0.0.1:5000
commands=(
  "lcactl patch ibu upgrade --type=merge -p $(shell_quote '{"spec":{"stage":"Upgrade"}}')"
  "lcactl patch ibu upgrade --type=merge -p $(shell_quote "$(prep_patch "$addr" "" "")")"
  "kubectl patch imagebasedupgrades.lca.openshift.io upgrade --type=merge -n openshift-lifecycle-agent -p $(shell_quote "$(prep_patch "$addr" "" "")")"
  "kubectl wait ibu/upgrade --for=condition=PrepCompleted --timeout=5m"
  "lcactl patch ibu upgrade --type=merge -p $(shell_quote "$(prep_patch "$addr" \
    ',"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":5}' \
    ',"metadata":{"annotations":{"auto-rollback-on-failure.lca.openshift.io/post-reboot-config":"Disabled"}}')")"
  "lcactl wait ibu --for=condition=UpgradeCompleted=False --timeout=2m"
  "lcactl annotate ibu upgrade lca.openshift.io/manual-cleanup-done="
  "ostree admin status --sysroot=$w/host/sysroot"
  "lcactl seed create --sysroot $w/seedhost/sysroot --image $addr/ibu/seed:4.15.2 --karg rcupdate.rcu_normal_after_boot=0"
  "lcactl patch ibu upgrade --type=merge -p $(shell_quote "{\"metadata\":{\"annotations\":{\"note\":\"it's a test\"}}}")"
  "printf %s $(shell_quote 'a b' '' '$HOME' 'x*' '#c' '~')"
)
: >"$work/actual"
for c in "${commands[@]}"; do
  eval "words=($c)"
  echo_command "${words[@]}" >>"$work/actual"
  # Pasted into a shell, the line gives back the same words.
  line=$(echo_command "${words[@]}")
  eval "again=(${line#\$ })"
  [ "${again[*]@Q}" = "${words[*]@Q}" ] || problem "does not read back: $line"
done
golden=$src/tests/golden/demo-commands.txt
if ! diff -u "$golden" "$work/actual"; then
  problem "the demo's command lines differ from $golden (above)"
else
  echo "ok: $(wc -l <"$golden") command lines as in the golden file, each reads back as its words"
fi

# The Prep patches are JSON.
for extra in "" ',"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":5}'; do
  prep_patch "$addr" "$extra" "" | python3 -c 'import json, sys; json.load(sys.stdin)' ||
    problem "prep_patch with '$extra' is not JSON"
done

# A failing phase: its log's tail and the exit status; a passing one: silence.
out=$( (quietly "$work/ok.log" echo fine) 2>&1)
[ -z "$out" ] || problem "quietly printed on success: $out"
rc=0
out=$( (quietly "$work/bad.log" bash -c 'echo line1; echo "the cause" >&2; exit 3') 2>&1) || rc=$?
[ "$rc" = 3 ] || problem "quietly exited $rc, not the command's 3"
expected="demo: failed (exit 3): bash -c 'echo line1; echo \"the cause\" >&2; exit 3'
--- last lines of $work/bad.log ---
line1
the cause"
[ "$out" = "$expected" ] || problem "quietly on failure printed:
$out"

# demo.sh prints command lines only through echo_command (quoted), never by hand.
if grep -nE "printf '\\\$ |echo \"?\\\$ " "$src/scripts/demo.sh"; then
  problem "scripts/demo.sh prints a command line by hand (above)"
fi
exit $fail
