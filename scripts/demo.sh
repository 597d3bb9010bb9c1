#!/usr/bin/env bash
# The README's demo: builds lca, starts lifecycle-agent on a throwaway state dir and socket
# (never the machine's own /var/lib/lca or /run/lca), and drives it with lcactl alone,
# printing `lcactl status` at each step. It cleans up after itself.
#
# What it walks is what this build does. The control plane is complete; the Prep, Upgrade
# and Rollback bodies (stateroot from a seed, pre-cache, pivot) land with the following
# issues, and until then the agent fails Prep saying so rather than pretending.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${LCA_DEMO_SKIP_DEPS:-}" != 1 ]; then bash scripts/install-deps.sh; fi
build=${BUILD_DIR:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target lifecycle-agent lcactl

work=$(mktemp -d /tmp/lca-demo.XXXXXX)
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid"; wait "$agent_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

lcactl() { "$build/agent/cli/lcactl" --socket "$work/lca.sock" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ lcactl %s\n' "$*"; lcactl "$@"; }

# A kernel command line like a host's; this demo host is not booted from ostree.
echo "BOOT_IMAGE=/vmlinuz root=/dev/vda4 rw" > "$work/cmdline"
touch "$work/none.yaml"
"$build/agent/daemon/lifecycle-agent" --state-dir "$work/state" --socket "$work/lca.sock" \
  --sysroot "$work/sysroot" --proc-cmdline "$work/cmdline" --config "$work/none.yaml" \
  --config-dir "$work/etc" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do lcactl get ibu -o name >/dev/null 2>&1 && break; sleep 0.1; done

step "A fresh agent creates the ImageBasedUpgrade in Idle"
show get ibu
show status

step "Upgrade is not a valid next stage from Idle: the agent says so in status"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
lcactl wait ibu --for=condition=UpgradeInProgress=False --timeout=10s >/dev/null
show get ibu

step "Bad input is refused and nothing is stored"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Deploy"}}' || true
show patch ibu upgrade --type=merge -p '{"status":{"conditions":[]}}' || true

step "Prep with a seed: this build has no Prep handler yet, and the agent says so"
show patch ibu upgrade --type=merge \
  -p '{"spec":{"stage":"Prep","seedImageRef":{"version":"4.15.2","image":"127.0.0.1:5000/ibu/seed:4.15.2"}}}'
show wait ibu --for=condition=PrepCompleted=False --timeout=30s
show status

step "Abort: back to Idle"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
show wait ibu --for=condition=Idle --timeout=30s
show status

step "The agent's log"
cat "$work/agent.log"
echo
echo "demo: done"
