#!/usr/bin/env bash
# The README's demo: builds lca, makes a throwaway ostree host "booted" at 4.14.1, a 4.15.2
# seed pushed to a loopback registry with a password, runs lifecycle-agent on throwaway roots
# and drives it with lcactl, printing `lcactl status` at each step. It never touches the
# machine's /sysroot, /var/lib/lca, /run/lca or /var/lib/containers, and cleans up after itself.
#
# Two runs: Prep -> Upgrade -> (simulated) reboot -> Idle, then an upgrade whose post-pivot hook
# is broken, which the init monitor rolls back after initMonitorTimeoutSeconds: 5, and Idle
# aborts. A reboot is simulated: the agent's reboot command records the
# request; the demo stops the agent, boots the default boot entry's options line and starts the
# agent again with that stateroot's var/lib/lca as its state dir (/var/lib/lca on a real host).
# The seed's image list is not in the demo registry, so pre-caching is switched off here.
# In run 1 the agent runs in Kubernetes mode (--kubeconfig) against the API server stand-in
# (tests/support/kube_apiserver; no kube-apiserver here), and its Prep is driven by the real
# kubectl as on a cluster (docs/kubernetes.md); the demo fails if the stand-in cannot start.
#
# The setup is quiet (a line per phase; the output of a failing phase is shown); every command
# of the demo itself is printed, quoted so it can be pasted, above its own output.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source "$root/scripts/demo-lib.sh"

if [ "${LCA_DEMO_IN_NS:-}" != 1 ]; then
  build=${BUILD_DIR:-build}
  case "$build" in /*) ;; *) build="$root/$build" ;; esac
  mkdir -p "$build"
  if [ "${LCA_DEMO_SKIP_DEPS:-}" != 1 ]; then
    demo_phase "Debian packages (scripts/install-deps.sh; log: $build/demo-deps.log)"
    quietly "$build/demo-deps.log" bash scripts/install-deps.sh
  fi
  demo_phase "configuring (cmake; log: $build/demo-build.log)"
  quietly "$build/demo-build.log" cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  demo_phase "building lifecycle-agent and lcactl (a first build takes minutes; see the README)"
  quietly "$build/demo-build.log" cmake --build "$build" -j "$(nproc)" --target lifecycle-agent lcactl
  demo_phase "running the demo in a private mount namespace"
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
stop_agent() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid"; wait "$agent_pid" || true
  fi
  agent_pid=""
}
kube_pid=""
cleanup() {
  stop_agent
  if [ -n "$kube_pid" ]; then kill -TERM "$kube_pid" 2>/dev/null || true; wait "$kube_pid" || true; fi
  "$root/scripts/testbed/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

lcactl() { "$build/agent/cli/lcactl" --socket "$work/lca.sock" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# show ARG...: `lcactl ARG...` under its "$ lcactl ..." line; run COMMAND...: any other command.
show() {
  echo_command lcactl "$@"
  lcactl "$@"
}
run() {
  echo_command "$@"
  "$@"
}
# The real kubectl against the stand-in, its discovery cache under the demo's HOME.
kubectl() { "$kubectl_bin" --kubeconfig "$work/kube/kubeconfig" --cache-dir "$HOME/.kube/cache" "$@"; }
kshow() {
  echo_command kubectl "$@"
  kubectl "$@"
}

# The Kubernetes API server stand-in (tests/support/kube_apiserver, as the tests start it) on
# 127.0.0.1 and a port the kernel picks: its own CA and server certificate (openssl), a token
# for kubectl and one for the agent (a service account's, read from a file), two kubeconfigs.
start_kube() {
  local k=$work/kube port="" kc_tok kc_agent
  kubectl_bin=$(type -P kubectl) || {
    echo "demo: kubectl is missing (scripts/install-deps.sh installs kubernetes-client)" >&2
    exit 1
  }
  mkdir -p "$k/data"
  quietly "$k/openssl.log" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout "$k/ca.key" -out "$k/ca.crt" -days 1 -subj /CN=demo-kube-ca
  quietly "$k/openssl.log" openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$k/server.key" -out "$k/server.csr" -subj /CN=kube-apiserver
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$k/server.ext"
  quietly "$k/openssl.log" openssl x509 -req -in "$k/server.csr" -CA "$k/ca.crt" \
    -CAkey "$k/ca.key" -CAcreateserial -out "$k/server.crt" -days 1 -extfile "$k/server.ext"
  kc_tok=$(openssl rand -hex 16) kc_agent=$(openssl rand -hex 16)
  (umask 077
    printf '{"tokens":{"%s":{"user":"kube:admin"},"%s":{"user":"%s"}}}\n' "$kc_tok" "$kc_agent" \
      system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent >"$k/tokens.json"
    printf '%s\n' "$kc_agent" >"$k/agent-token")
  local res=$root/tests/support/kube_apiserver/resources
  python3 "$root/tests/support/kube_apiserver" --port 0 --cert "$k/server.crt" \
    --key "$k/server.key" --tokens "$k/tokens.json" --data-dir "$k/data" \
    --ready-file "$k/ready" --resources "$res/core.json" --resources "$res/openshift.json" \
    --resources "$res/lca.json" >"$k/server.log" 2>&1 &
  kube_pid=$!
  for _ in $(seq 300); do
    port=$(cat "$k/ready" 2>/dev/null || true)
    [ -n "$port" ] && break
    kill -0 "$kube_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "demo: the Kubernetes API server stand-in did not start; its log:" >&2
    tail -n 40 "$k/server.log" >&2
    exit 1
  fi
  write_kubeconfig "$k/kubeconfig" "$port" "token: $kc_tok"
  write_kubeconfig "$k/agent-kubeconfig" "$port" "tokenFile: agent-token"
  echo "Kubernetes API server stand-in https://127.0.0.1:$port"
}
write_kubeconfig() {  # write_kubeconfig FILE PORT USER_LINE
  (umask 077
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: sno\n  cluster:\n    server: %s\n    certificate-authority: ca.crt\nusers:\n- name: user\n  user:\n    %s\ncontexts:\n- name: sno\n  context: {cluster: sno, user: user}\ncurrent-context: sno\n' \
      "https://127.0.0.1:$2" "$3" >"$1")
}

step "Test bed: a registry with a password and a seed host at 4.15.2"
addr=$("$root/scripts/testbed/registry.sh" start "$work/registry" --htpasswd seed:demo-secret | tail -1)
"$root/scripts/testbed/make-sysroot.sh" "$work/seedhost" --version 4.15.2 >/dev/null 2>>"$work/testbed.log"
seed_dep=$(ls -d "$work"/seedhost/sysroot/ostree/deploy/rhcos/deploy/*.0)
echo "configured on the seed host" >"$seed_dep/etc/seed-added.conf"
rm "$seed_dep/etc/deprecated.conf"
mkdir -p "$work/seedhost/sysroot/ostree/deploy/rhcos/var/lib/demo"
echo "data from the seed's /var" >"$work/seedhost/sysroot/ostree/deploy/rhcos/var/lib/demo/hello"
echo "registry $addr"
start_kube

step "Build the seed with lcactl seed create and push it"
echo "(in the commands below, lcactl is $(shell_quote "$build/agent/cli/lcactl" --socket "$work/lca.sock"))"
show seed create --sysroot "$work/seedhost/sysroot" --version 4.15.2 \
  --image "$addr/ibu/seed:4.15.2" --authfile "$work/registry/auth.json" \
  --registries-conf "$work/registry/registries.conf" --policy "$work/registry/policy.json" \
  --karg rcupdate.rcu_normal_after_boot=0 --work-dir "$work" 2>>"$work/seed.log"

# The host the agent runs on: $host (made by make-sysroot.sh), booted with $cmdline.
host="" cmdline="" boots=0 agent_kubeconfig=""
start_agent() {
  local stateroot
  stateroot=$(sed -n 's/.*ostree=\([^ ]*\).*/\1/p' "$cmdline" | cut -d/ -f4)
  "$build/agent/daemon/lifecycle-agent" --sysroot "$host/sysroot" --proc-cmdline "$cmdline" \
    --state-dir "$host/sysroot/ostree/deploy/$stateroot/var/lib/lca" --socket "$work/lca.sock" \
    --config "$work/lca.yaml" --config-dir "$work/etc" --hooks-dir "$host/hooks" \
    --registries-conf "$work/registry/registries.conf" \
    --signature-policy "$work/registry/policy.json" --precache-disabled \
    --reboot-command "$work/bin/reboot" --systemctl-command "$work/bin/systemctl" \
    ${agent_kubeconfig:+--kubeconfig "$agent_kubeconfig"} 2>>"$work/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do lcactl get ibu -o name >/dev/null 2>&1 && return; sleep 0.1; done
  echo "demo: lifecycle-agent did not start; see $work/agent.log" >&2
  exit 1
}
# The simulated reboot: the default entry (highest ostree-N) becomes the kernel command line.
reboot_host() {
  stop_agent
  local entry
  entry=$(ls "$host"/sysroot/boot/loader/entries/ostree-*.conf | sort -t- -k2 -n | tail -1)
  boots=$((boots + 1))
  cmdline=$work/cmdline-$boots
  sed -n 's/^options //p' "$entry" >"$cmdline"
  echo "-- reboot: booting $(basename "$entry"): $(cat "$cmdline")"
  start_agent
}
wait_reboot_request() {
  for _ in $(seq 600); do
    [ "$(cat "$work/reboots.log" 2>/dev/null | wc -l)" -gt "$1" ] && return
    sleep 0.2
  done
  echo "demo: no reboot was requested" >&2
  exit 1
}
new_host() {
  host=$work/$1
  "$root/scripts/testbed/make-sysroot.sh" "$host" --version 4.14.1 >/dev/null 2>>"$work/testbed.log"
  mkdir -p "$host/hooks/pre-pivot.d" "$host/hooks/post-pivot.d"
  cmdline=$host/cmdline
}
hook() {  # hook PHASE NAME BODY
  printf '#!/bin/sh\n%s\n' "$3" >"$host/hooks/$1.d/$2"
  chmod 0755 "$host/hooks/$1.d/$2"
}

mkdir -p "$work/etc/secrets/seed-pull-secret" "$work/bin"
cp "$work/registry/auth.json" "$work/etc/secrets/seed-pull-secret/.dockerconfigjson"
# The agent's and the init monitor's config: logs for reading (time, level, message).
echo "logFormat: human" >"$work/lca.yaml"
printf '#!/bin/sh\necho "reboot requested: $*" >&2\necho "$*" >>"%s"\n' "$work/reboots.log" >"$work/bin/reboot"
printf '#!/bin/sh\necho "$*" >>"%s"\n' "$work/systemctl.log" >"$work/bin/systemctl"
chmod 0755 "$work/bin/reboot" "$work/bin/systemctl"

step "Run 1: start lifecycle-agent on a host at 4.14.1, mirrored to the API server stand-in"
new_host host
agent_kubeconfig=$work/kube/agent-kubeconfig
hook post-pivot 10-hello 'echo "post-pivot hook: running in $LCA_BOOTED_STATEROOT"'
start_agent
# The agent creates the CR on the stand-in from the node's object once it has connected.
for _ in $(seq 100); do kubectl get ibu upgrade >/dev/null 2>&1 && break; sleep 0.1; done
show status

step "Upgrade is not a valid next stage from Idle: the agent says so in status"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
lcactl wait ibu --for=condition=UpgradeInProgress=False --timeout=10s >/dev/null
show get ibu

step "Bad input is refused and nothing is stored"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Deploy"}}' || true
show patch ibu upgrade --type=merge -p '{"status":{"conditions":[]}}' || true

step "Prep, driven from the cluster with kubectl: the new stateroot from the seed"
echo "(in the commands below, kubectl is $(shell_quote "$kubectl_bin" --kubeconfig "$work/kube/kubeconfig" --cache-dir "$HOME/.kube/cache"))"
kshow patch imagebasedupgrades.lca.openshift.io upgrade --type=merge -n openshift-lifecycle-agent \
  -p "$(prep_patch "$addr" "" "")"
kshow wait ibu/upgrade --for=condition=PrepCompleted --timeout=5m
kshow get ibu
show status
echo
echo "The host now (the booted deployment is still the default):"
run ostree admin status --sysroot="$host/sysroot"
new=$(ls -d "$host"/sysroot/ostree/deploy/rhcos_4.15.2/deploy/*.0)
echo "  new /etc/seed-added.conf: $(cat "$new/etc/seed-added.conf")"
echo "  new /etc/deprecated.conf: $(test -e "$new/etc/deprecated.conf" && echo present || echo deleted, as the seed says)"
echo "  new /var/lib/demo/hello:  $(cat "$host/sysroot/ostree/deploy/rhcos_4.15.2/var/lib/demo/hello")"

step "Upgrade: hand over to the new stateroot, pin the old deployment, set the default, reboot"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
wait_reboot_request 0
run ostree admin status --sysroot="$host/sysroot"
reboot_host
show wait ibu --for=condition=UpgradeCompleted --timeout=2m
show status

step "Idle: finalize removes the old stateroot and the pin"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
show wait ibu --for=condition=Idle --timeout=2m
show status
run ostree admin status --sysroot="$host/sysroot"
stop_agent

step "Run 2: a broken post-pivot hook, initMonitorTimeoutSeconds 5: the init monitor rolls back"
new_host host2
agent_kubeconfig=""  # run 2 is the node alone: lcactl over the local socket
hook post-pivot 10-broken 'echo "post-pivot hook: the new release does not come up" >&2; exit 1'
start_agent
# post-reboot-config Disabled: the hook's failure does not roll back by itself; the init
# monitor's timeout does.
show patch ibu upgrade --type=merge -p "$(prep_patch "$addr" ',"autoRollbackOnFailure":{"initMonitorTimeoutSeconds":5}' \
  ',"metadata":{"annotations":{"auto-rollback-on-failure.lca.openshift.io/post-reboot-config":"Disabled"}}')"
show wait ibu --for=condition=PrepCompleted --timeout=5m
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
wait_reboot_request 1
reboot_host
show wait ibu --for=condition=UpgradeCompleted=False --timeout=2m
show status
echo "What lca-init-monitor.service runs after the pivot:"
monitor=(init-monitor --monitor --config "$work/lca.yaml" --sysroot "$host/sysroot"
  --state-dir "$host/sysroot/ostree/deploy/rhcos_4.15.2/var/lib/lca" --proc-cmdline "$cmdline"
  --reboot-command "$work/bin/reboot")
echo_command lcactl "${monitor[@]}"
lcactl "${monitor[@]}" 2>&1 | sed 's/^/  /'
reboot_host
show wait ibu --for=condition=UpgradeCompleted=False --timeout=1m
show status

step "Idle: abort removes the new stateroot and the pin"
show patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
show wait ibu --for=condition=Idle --timeout=2m
show status
run ostree admin status --sysroot="$host/sysroot"
stop_agent

step "The agent's log (logFormat: human; under systemd it goes to the journal)"
cat "$work/agent.log"
echo
echo "demo: done"
