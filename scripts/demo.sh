#!/usr/bin/env bash
# The README's demo: builds lca, makes a throwaway ostree host "booted" at 4.14.1, a 4.15.2
# seed pushed to a loopback registry with a password, runs lifecycle-agent on throwaway roots
# and drives it with lcactl alone, printing `lcactl status` at each step. It never touches the
# machine's /sysroot, /var/lib/lca, /run/lca or /var/lib/containers, and cleans up after itself.
#
# What it walks is what this build does: Prep builds the new stateroot from the seed for real;
# pre-caching and the Upgrade/pivot land with the following issues, and until then the agent
# says so rather than pretending.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${LCA_DEMO_IN_NS:-}" != 1 ]; then
  if [ "${LCA_DEMO_SKIP_DEPS:-}" != 1 ]; then bash scripts/install-deps.sh; fi
  build=${BUILD_DIR:-build}
  case "$build" in /*) ;; *) build="$root/$build" ;; esac
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" --target lifecycle-agent lcactl
  # skopeo run as root keeps a cache in /var/lib/containers: give it a private, empty /var/lib.
  exec unshare --mount --propagation private env LCA_DEMO_IN_NS=1 BUILD_DIR="$build" bash -c \
    'mount -t tmpfs tmpfs /var/lib && exec bash "$0"' "$0"
fi

build=$BUILD_DIR
export OSTREE_SYSROOT_DEBUG=mutable-deployments  # throwaway sysroots: no immutable bits
work=$(mktemp -d /var/tmp/lca-demo.XXXXXX)
export HOME=$work/home XDG_RUNTIME_DIR=$work/home/run DOCKER_CONFIG=$work/home/.docker
mkdir -p "$XDG_RUNTIME_DIR" "$DOCKER_CONFIG"
agent_pid=""
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid"; wait "$agent_pid" || true
  fi
  "$root/scripts/testbed/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

lcactl() { "$build/agent/cli/lcactl" --socket "$work/lca.sock" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ lcactl %s\n' "$*"; lcactl "$@"; }

step "Test bed: a registry with a password, a host at 4.14.1, a seed host at 4.15.2"
addr=$("$root/scripts/testbed/registry.sh" start "$work/registry" --htpasswd seed:demo-secret | tail -1)
"$root/scripts/testbed/make-sysroot.sh" "$work/host" --version 4.14.1 >/dev/null 2>>"$work/testbed.log"
"$root/scripts/testbed/make-sysroot.sh" "$work/seedhost" --version 4.15.2 >/dev/null 2>>"$work/testbed.log"
seed_dep=$(ls -d "$work"/seedhost/sysroot/ostree/deploy/rhcos/deploy/*.0)
echo "configured on the seed host" >"$seed_dep/etc/seed-added.conf"
rm "$seed_dep/etc/deprecated.conf"
mkdir -p "$work/seedhost/sysroot/ostree/deploy/rhcos/var/lib/demo"
echo "data from the seed's /var" >"$work/seedhost/sysroot/ostree/deploy/rhcos/var/lib/demo/hello"
echo "registry $addr; host $work/host/sysroot booted with: $(cat "$work/host/cmdline")"

step "Build the seed with lcactl seed create and push it"
printf '$ lcactl seed create --sysroot %s --version 4.15.2 --image %s\n' \
  "$work/seedhost/sysroot" "$addr/ibu/seed:4.15.2"
"$build/agent/cli/lcactl" seed create --sysroot "$work/seedhost/sysroot" --version 4.15.2 \
  --image "$addr/ibu/seed:4.15.2" --authfile "$work/registry/auth.json" \
  --registries-conf "$work/registry/registries.conf" --policy "$work/registry/policy.json" \
  --karg rcupdate.rcu_normal_after_boot=0 --work-dir "$work" 2>/dev/null

step "Start lifecycle-agent on the throwaway host"
mkdir -p "$work/etc/secrets/seed-pull-secret"
cp "$work/registry/auth.json" "$work/etc/secrets/seed-pull-secret/.dockerconfigjson"
: >"$work/none.yaml"
"$build/agent/daemon/lifecycle-agent" --state-dir "$work/state" --socket "$work/lca.sock" \
  --sysroot "$work/host/sysroot" --proc-cmdline "$work/host/cmdline" --config "$work/none.yaml" \
  --config-dir "$work/etc" --registries-conf "$work/registry/registries.conf" \
  --signature-policy "$work/registry/policy.json" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do lcactl get ibu -o name >/dev/null 2>&1 && break; sleep 0.1; done
show get ibu
show status

step "Upgrade is not a valid next stage from Idle: the agent says so in status"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
lcactl wait ibu --for=condition=UpgradeInProgress=False --timeout=10s >/dev/null
show get ibu

step "Bad input is refused and nothing is stored"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Deploy"}}' || true
show patch ibu upgrade --type=merge -p '{"status":{"conditions":[]}}' || true

step "Prep: the new stateroot from the seed"
show patch ibu upgrade --type=merge -p "{\"spec\":{\"stage\":\"Prep\",\"seedImageRef\":{\"version\":\"4.15.2\",\"image\":\"$addr/ibu/seed:4.15.2\",\"pullSecretRef\":{\"name\":\"seed-pull-secret\"}}}}"
show wait ibu --for=condition=PrepCompleted --timeout=5m
show status
echo
echo "The host now (the booted deployment is still the default):"
ostree admin status --sysroot="$work/host/sysroot"
grep -h '^options' "$work"/host/sysroot/boot/loader/entries/*.conf | sed 's/^/  boot entry: /'
new=$(ls -d "$work"/host/sysroot/ostree/deploy/rhcos_4.15.2/deploy/*.0)
echo "  new /etc/seed-added.conf: $(cat "$new/etc/seed-added.conf")"
echo "  new /etc/deprecated.conf: $(test -e "$new/etc/deprecated.conf" && echo present || echo deleted, as the seed says)"
echo "  new /var/lib/demo/hello:  $(cat "$work/host/sysroot/ostree/deploy/rhcos_4.15.2/var/lib/demo/hello")"

step "Upgrade: this build has no Upgrade handler yet, and the agent says so"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
show wait ibu --for=condition=UpgradeCompleted=False --timeout=30s
show get ibu

step "Abort: back to Idle, the new stateroot removed"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
show wait ibu --for=condition=Idle --timeout=2m
show status
ostree admin status --sysroot="$work/host/sysroot"

step "The agent's log"
cat "$work/agent.log"
echo
echo "demo: done"
