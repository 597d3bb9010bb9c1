#!/usr/bin/env bash
# Prep's stateroot phase, measured against the Go operator's pipeline and against the floor,
# in one run on one seed. Not part of the default test run.
#
#   bash tests/bench/prep.sh [BUILD_DIR]        (root; after scripts/test.sh or a build)
#
# The seed is a sysroot whose OS tree carries real files (this machine's /usr/share/locale and
# /usr/lib/python3, ~210 MiB), built into a format-4 seed with `lcactl seed create` and pushed to a
# loopback registry. Then, each on a fresh copy of the same 4.14.1 host:
#   ours      lifecycle-agent Prep, from the patch to PrepCompleted (fetch once into an OCI layout,
#             verify, extract each root file straight to its place, import, deploy)
#   pipeline  what lca-cli ibu-stateroot-setup does: podman pull, podman image mount, tar xzf
#             ostree.tgz, ostree pull-local, ostree admin os-init + deploy, tar xzf var.tgz and
#             etc.tgz
#   floor     skopeo copy of the same image + gunzip of its three tarballs to /dev/null
# and prints seconds, ratios and the peak extra disk each used. Everything runs in a private
# mount namespace with a tmpfs over /var/lib, so the machine's /var/lib/containers is untouched.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if [ "${LCA_BENCH_IN_NS:-}" != 1 ]; then
  exec unshare --mount --propagation private env LCA_BENCH_IN_NS=1 bash -c \
    'mount -t tmpfs tmpfs /var/lib && exec bash "$0" "$@"' "$0" "$build"
fi

export OSTREE_SYSROOT_DEBUG=mutable-deployments
lcactl=$build/agent/cli/lcactl
agent=$build/agent/daemon/lifecycle-agent
[ -x "$lcactl" ] && [ -x "$agent" ] || { echo "build first: scripts/test.sh" >&2; exit 1; }
bench=$(mktemp -d /var/tmp/lca-bench.XXXXXX)
# A fresh filesystem for each run (LCA_BENCH_FS=root: the root filesystem instead). This
# machine's root is ext4 without a journal, where creating an inode costs a buffer-cache lookup
# per free inode the allocator skips as deleted in the last 60 s (6 min while the inode table
# block is dirty: ext4's recently_deleted()). After a previous run or a test suite removed tens of
# thousands of files, creating files is 2-3x slower for minutes, and the more a contender's time
# is file creation (ours: ~7,500 objects in 0.8 s), the more it pays. A new, unjournaled ext4 on
# a loop device gives every run the same start; nothing else about the contenders changes.
loopdev=""
if [ "${LCA_BENCH_FS:-fresh}" = fresh ]; then
  truncate -s 8G "$bench.img"
  mkfs.ext4 -q -O ^has_journal -E lazy_itable_init=0 "$bench.img"
  loopdev=$(losetup --find --show --direct-io=on "$bench.img")
  mount -o discard "$loopdev" "$bench"
fi
export HOME=$bench/home XDG_RUNTIME_DIR=$bench/home/run DOCKER_CONFIG=$bench/home/.docker
mkdir -p "$XDG_RUNTIME_DIR" "$DOCKER_CONFIG"
echo "{}" >"$DOCKER_CONFIG/config.json"
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  "$root/scripts/testbed/registry.sh" stop "$bench/reg" >/dev/null 2>&1 || true
  if [ -n "$loopdev" ]; then umount "$bench"; losetup -d "$loopdev"; rm -f "$bench.img"; fi
  rm -rf "$bench"
}
trap cleanup EXIT
say() { printf '== %s\n' "$*" >&2; }

# Peak extra disk: sample the filesystem's used bytes while a command runs.
fs_used() { df --output=used -B1 "$bench" | tail -1; }
measure() {  # measure NAME CMD... -> sets secs_NAME, disk_NAME
  local name=$1; shift
  local base peak=0 sampler t0 t1
  sync
  sleep "${LCA_BENCH_SETTLE:-5}"  # the previous contender's writeback and discards, done
  base=$(fs_used)
  ( while :; do fs_used; sleep 0.2; done ) >"$bench/$name.df" &
  sampler=$!
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  peak=$(sort -n "$bench/$name.df" | tail -1)
  printf -v "secs_$name" '%.2f' "$(echo "$t1 - $t0" | bc -l)"
  printf -v "disk_$name" '%d' "$(( (peak - base) / 1048576 ))"
}

say "registry"
addr=$("$root/scripts/testbed/registry.sh" start "$bench/reg" 2>/dev/null | tail -1)
regconf=$bench/reg/registries.conf policy=$bench/reg/policy.json

say "seed host (4.15.2 with ~210 MiB of real files) and the seed"
seedtmp=/var/lib/lca-bench-seed  # the private tmpfs: deleting it later costs the disk nothing
mkdir -p "$seedtmp/extra"
cp -a /usr/share/locale /usr/lib/python3 "$seedtmp/extra/"
"$root/scripts/testbed/make-sysroot.sh" "$seedtmp/seedhost" --version 4.15.2 --extra-tree "$seedtmp/extra" >/dev/null 2>&1
rm -rf "$seedtmp/extra"
sdep=$(ls -d "$seedtmp"/seedhost/sysroot/ostree/deploy/rhcos/deploy/*.0)
echo "seed edit" >"$sdep/etc/seed-added.conf"
rm -f "$sdep/etc/deprecated.conf"
"$lcactl" seed create --sysroot "$seedtmp/seedhost/sysroot" --version 4.15.2 \
  --image "$addr/ibu/seed:4.15.2" --registries-conf "$regconf" --policy "$policy" \
  --work-dir "$bench" >/dev/null
unpacked=$(du -sb "$seedtmp/seedhost/sysroot/ostree/repo" | cut -f1)
rm -rf "$seedtmp/seedhost"

say "hosts at 4.14.1"
"$root/scripts/testbed/make-sysroot.sh" "$bench/host0" --version 4.14.1 >/dev/null 2>&1
for h in ours pipeline; do cp -a "$bench/host0" "$bench/host-$h"; done

# The floor first also warms the registry's files in the page cache for both contenders.
floor() {
  skopeo copy --policy "$policy" --registries-conf "$regconf" --quiet \
    "docker://$addr/ibu/seed:4.15.2" "oci:$bench/floor:seed"
  local layer
  layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); d=m["manifests"][0]["digest"].split(":")[1]; mm=json.load(open(sys.argv[2]+"/blobs/sha256/"+d)); print(mm["layers"][0]["digest"].split(":")[1])' "$bench/floor/index.json" "$bench/floor")
  for f in ostree.tgz var.tgz etc.tgz; do
    tar -xOf "$bench/floor/blobs/sha256/$layer" "$f" | gzip -dc >/dev/null
  done
}
say "floor: fetch + gunzip"
measure floor floor
rm -rf "$bench/floor"

pipeline() {
  local sysroot=$bench/host-pipeline/sysroot store=$bench/podman tmp mnt csum
  local P=(podman --root "$store/root" --runroot "$store/run" --storage-driver vfs
           --registries-conf "$regconf")
  "${P[@]}" pull --quiet --tls-verify=false "$addr/ibu/seed:4.15.2" >/dev/null
  mnt=$("${P[@]}" image mount "$addr/ibu/seed:4.15.2")
  tmp=$(mktemp -d "$bench/pipeline.XXXXXX")
  mkdir "$tmp/ostree"
  tar xzf "$mnt/ostree.tgz" -C "$tmp/ostree"
  ostree --repo="$sysroot/ostree/repo" pull-local "$tmp/ostree" >/dev/null
  csum=$(python3 -c 'import json,sys; d=[d for d in json.load(open(sys.argv[1]))["deployments"] if d["booted"]][0]; print(d["id"].rsplit("-",1)[1].split(".")[0])' "$mnt/rpm-ostree.json")
  ostree admin os-init --sysroot="$sysroot" rhcos_4.15.2 >/dev/null
  ostree admin deploy --sysroot="$sysroot" --os=rhcos_4.15.2 --no-prune --karg-append=ibu=4.15.2 "$csum" >/dev/null
  local dep
  dep=$(ls -d "$sysroot"/ostree/deploy/rhcos_4.15.2/deploy/*.0)
  tar xzf "$mnt/var.tgz" -C "$sysroot/ostree/deploy/rhcos_4.15.2"
  tar xzf "$mnt/etc.tgz" -C "$dep"
  "${P[@]}" image umount "$addr/ibu/seed:4.15.2" >/dev/null
  "${P[@]}" rmi "$addr/ibu/seed:4.15.2" >/dev/null
  rm -rf "$tmp"
  sync
}
say "pipeline: podman pull + mount + tar + pull-local + deploy + tar"
measure pipeline pipeline

ours() {
  local w=$bench/agent
  mkdir -p "$w/etc/secrets/s"
  cp "$bench/reg/auth.json" "$w/etc/secrets/s/.dockerconfigjson" 2>/dev/null ||
    echo '{"auths":{}}' >"$w/etc/secrets/s/.dockerconfigjson"
  : >"$w/none.yaml"
  "$agent" --state-dir "$w/state" --socket "$w/lca.sock" --sysroot "$bench/host-ours/sysroot" \
    --proc-cmdline "$bench/host-ours/cmdline" --config-dir "$w/etc" --config "$w/none.yaml" \
    --registries-conf "$regconf" --signature-policy "$policy" --precache-disabled \
    2>"$w/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do "$lcactl" --socket "$w/lca.sock" get ibu -o name >/dev/null 2>&1 && break; sleep 0.05; done
  "$lcactl" --socket "$w/lca.sock" patch ibu upgrade --type=merge -p "{\"spec\":{\"stage\":\"Prep\",\"seedImageRef\":{\"version\":\"4.15.2\",\"image\":\"$addr/ibu/seed:4.15.2\",\"pullSecretRef\":{\"name\":\"s\"}}}}" >/dev/null
  "$lcactl" --socket "$w/lca.sock" wait ibu --for=condition=PrepCompleted --timeout=5m >/dev/null || {
    "$lcactl" --socket "$w/lca.sock" status >&2; cat "$w/agent.log" >&2; return 1; }
  sync
}
say "ours: lifecycle-agent Prep"
measure ours ours
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
steps=$(grep -o 'step prep\.[a-z-]* done in [0-9]* ms' "$bench/agent/agent.log" | sed 's/^step //' | tr '\n' ';')

ratio() { echo "scale=2; $1 / $2" | bc -l; }
cat <<EOT

Prep stateroot phase, one seed ($(numfmt --to=iec "$unpacked") ostree repo unpacked), $(nproc) cores, ${LCA_BENCH_FS:-fresh} filesystem
  floor     ${secs_floor}s   peak extra disk ${disk_floor} MiB   (skopeo copy + gunzip to /dev/null)
  pipeline  ${secs_pipeline}s   peak extra disk ${disk_pipeline} MiB   (podman pull/mount, tar, pull-local, deploy)
  ours      ${secs_ours}s   peak extra disk ${disk_ours} MiB   (lifecycle-agent Prep)
  ours / pipeline = $(ratio "$secs_ours" "$secs_pipeline")   (target <= 0.5)
  ours / floor    = $(ratio "$secs_ours" "$secs_floor")   (target <= 1.3)
  our steps: ${steps}
EOT
