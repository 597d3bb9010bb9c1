#!/usr/bin/env bash
# The VM test's disk image and seeds, from the cached rootfs (build-rootfs.sh) and a build of
# this project.
#
#   build-image.sh --rootfs DIR --build BUILD_DIR --out DIR --registry-dir DIR [--broken-seed]
#
# OUT/disk.img  raw ext4 (no partition table, root=/dev/vda) holding an ostree sysroot: release
#               4.14.1 committed (version metadata 4.14.1) and deployed in stateroot `rhcos`,
#               with lca installed the way the package installs it (`cmake --install --prefix
#               /usr` into the tree, lifecycle-agent.service enabled), site settings appended to
#               /etc/lca/lifecycle-agent.yaml, the seed pull secret in /etc/lca/secrets.
# Seeds         release 4.15.2 (the same Debian tree without lca, so the Upgrade must carry the
#               agent over; /usr/lib/lca-vm/release says 4.15.2 and a release-notes file is added
#               in /usr) deployed on a throwaway seed host where /etc/issue is edited,
#               /etc/lca-vm/seed-site.conf added, /etc/lca-vm/deprecated.conf deleted and
#               /var/lib/lca-vm/seed-data written; `lcactl seed create` turns it into a format-4
#               seed pushed to the registry of --registry-dir as ibu/seed:4.15.2. With
#               --broken-seed also ibu/seed:4.15.2-broken, the same tree whose kernel arguments
#               name a root device that does not exist (scenario 3: userspace never starts).
# The guest reaches the registry (127.0.0.1:PORT on the host) as 10.0.2.2:PORT through qemu's
# user networking; its registries.conf marks that address insecure (plain HTTP).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prog=build-image.sh
say() { printf '%s: [%4ds] %s\n' "$prog" "$SECONDS" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}

rootfs="" build="" out="" regdir="" broken=no
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rootfs | --build | --out | --registry-dir)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      case "$1" in
        --rootfs) rootfs=$2 ;;
        --build) build=$2 ;;
        --out) out=$2 ;;
        --registry-dir) regdir=$2 ;;
      esac
      shift 2
      ;;
    --broken-seed)
      broken=yes
      shift
      ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -d "$rootfs" && -d "$build" && -n "$out" && -d "$regdir" ]] ||
  die "usage: $prog --rootfs DIR --build BUILD_DIR --out DIR --registry-dir DIR [--broken-seed]"
[[ "$(id -u)" -eq 0 ]] || die "run as root (ostree trees keep their owners)"
export OSTREE_SYSROOT_DEBUG=mutable-deployments # host-side trees: no immutable bits to undo
lcactl=$build/agent/cli/lcactl
[[ -x "$lcactl" ]] || die "no $lcactl: build the project first"
addr=$(cat "$regdir/address") || die "no registry running from $regdir"
port=${addr##*:}
guest_addr=10.0.2.2:$port

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
rm -rf "$work"
mkdir -p "$work"

copy_rootfs() {
  cp -a "$rootfs" "$1"
  rm -f "$1/.complete"
}

# What both releases have: the test's step service, the network, the release marker.
guest_common() {
  local t=$1 release=$2
  install -D -m 0755 "$here/guest/lca-vm-step" "$t/usr/libexec/lca-vm/lca-vm-step"
  install -D -m 0644 "$here/guest/lca-vm-step.service" "$t/usr/lib/systemd/system/lca-vm-step.service"
  install -D -m 0644 "$here/guest/10-vm.network" "$t/etc/systemd/network/10-vm.network"
  mkdir -p "$t/usr/lib/lca-vm" "$t/etc/lca-vm"
  echo "$release" >"$t/usr/lib/lca-vm/release"
  printf '# shipped by both releases; the seed host deletes it\n' >"$t/etc/lca-vm/deprecated.conf"
  echo lca-vm >"$t/etc/hostname"
  systemctl --root="$t" --quiet enable lca-vm-step.service systemd-networkd.service
  # serial-getty's vhangup() would take ttyS0 away from the step's output (VM-BOOT.md).
  systemctl --root="$t" --quiet mask serial-getty@ttyS0.service
}

# ostree's shape: /etc -> /usr/etc, no /boot content, empty /dev /run /tmp, /var moved to $2.
shape() {
  local t=$1 var=$2
  rm -rf "${t:?}"/dev/* "$t"/run/* "$t"/tmp/* "$t"/boot/* "$t"/proc/* "$t"/sys/*
  # Debian's /vmlinuz and /initrd.img links point into the emptied /boot.
  rm -f "$t"/vmlinuz "$t"/vmlinuz.old "$t"/initrd.img "$t"/initrd.img.old
  mv "$t/etc" "$t/usr/etc"
  mkdir -p "$t/sysroot"
  ln -s sysroot/ostree "$t/ostree"
  mv "$t/var" "$var"
  mkdir "$t/var"
}

# new_sysroot DIR: an empty sysroot with stateroot rhcos, BLS entries only.
new_sysroot() {
  mkdir -p "$1"
  ostree admin init-fs "$1" >/dev/null
  ostree --repo="$1/ostree/repo" config set sysroot.bootloader none
  ostree admin os-init --sysroot="$1" rhcos >/dev/null
}

commit() { # commit REPO BRANCH VERSION TREE
  ostree --repo="$1" commit --bootable -b "$2" --add-metadata-string=version="$3" \
    -s "Release $3" --tree=dir="$4" >/dev/null
}

# --- 4.14.1: the booted release, with lca installed -----------------------------------------
say "tree 4.14.1: copying the rootfs, installing lca from $build"
a=$work/tree-4.14.1
copy_rootfs "$a"
guest_common "$a" 4.14.1
DESTDIR=$a cmake --install "$build" --prefix /usr >"$work/install.log" ||
  die "cmake --install failed: $(tail -n 5 "$work/install.log")"
for f in usr/bin/lifecycle-agent usr/bin/lcactl usr/lib/systemd/system/lifecycle-agent.service \
  usr/lib/systemd/system/lca-init-monitor.service etc/lca/lifecycle-agent.yaml; do
  [[ -e "$a/$f" ]] || die "cmake --install did not install /$f"
done
systemctl --root="$a" --quiet enable lifecycle-agent.service
# Every library the binaries need must be in the guest (guest-packages.txt).
missing=$(chroot "$a" ldd /usr/bin/lifecycle-agent /usr/bin/lcactl | grep 'not found' || true)
[[ -z "$missing" ]] || die "the guest lacks libraries of lca (add their packages to guest-packages.txt): $missing"
# Site settings, as an admin would add them.
cat >>"$a/etc/lca/lifecycle-agent.yaml" <<EOF

# --- added by tests/vm/build-image.sh for the VM test ---
# The seed registry on the host's loopback, plain HTTP (qemu user networking: 10.0.2.2).
registriesConf: /etc/lca-vm/registries.conf
# The test registry holds no images for the seed's containers.list; podman is not installed.
precacheDisabled: true
logLevel: debug
EOF
cat >"$a/etc/lca-vm/registries.conf" <<EOF
# containers-registries.conf(5) v2: the VM test's seed registry speaks plain HTTP.
[[registry]]
location = "$guest_addr"
insecure = true
EOF
user_pass=$(cat "$regdir/credentials")
install -d -m 0700 "$a/etc/lca/secrets" "$a/etc/lca/secrets/seed-pull-secret"
(
  umask 077
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$guest_addr" "$(printf '%s' "$user_pass" | base64 -w0)" \
    >"$a/etc/lca/secrets/seed-pull-secret/.dockerconfigjson"
)
cat >"$a/etc/lca-vm/env" <<EOF
SEED_IMAGE=$guest_addr/ibu/seed:4.15.2
SEED_IMAGE_BROKEN=$guest_addr/ibu/seed:4.15.2-broken
EOF
shape "$a" "$work/var-4.14.1"

# --- 4.15.2: the seed's release, without lca -------------------------------------------------
say "tree 4.15.2"
b=$work/tree-4.15.2
copy_rootfs "$b"
guest_common "$b" 4.15.2
mkdir -p "$b/usr/share/lca-vm"
echo "Release 4.15.2: a file only the new release has." >"$b/usr/share/lca-vm/release-notes-4.15.2.txt"
shape "$b" "$work/var-4.15.2"

# --- the target: 4.14.1 deployed in stateroot rhcos -----------------------------------------
say "sysroot: committing 4.14.1 and deploying it in stateroot rhcos"
sr=$work/sysroot
new_sysroot "$sr"
commit "$sr/ostree/repo" rhcos/4.14.1 4.14.1 "$a"
ostree admin deploy --sysroot="$sr" --os=rhcos --karg=root=/dev/vda --karg=rw rhcos/4.14.1 >/dev/null
cp -a "$work/var-4.14.1/." "$sr/ostree/deploy/rhcos/var/"
rm -rf "$a" "$work/var-4.14.1"

# --- the seed host: 4.15.2 deployed, then configured -----------------------------------------
say "seed host: committing 4.15.2, deploying, editing /etc and /var"
sh=$work/seedhost
new_sysroot "$sh"
commit "$sh/ostree/repo" rhcos/4.15.2 4.15.2 "$b"
ostree admin deploy --sysroot="$sh" --os=rhcos --karg=root=/dev/vda --karg=rw rhcos/4.15.2 >/dev/null
dep=$(ls -d "$sh"/ostree/deploy/rhcos/deploy/*.0)
echo "edited on the seed host" >>"$dep/etc/issue"
echo "added on the seed host" >"$dep/etc/lca-vm/seed-site.conf"
rm "$dep/etc/lca-vm/deprecated.conf"
seedvar=$sh/ostree/deploy/rhcos/var
cp -a "$work/var-4.15.2/." "$seedvar/"
mkdir -p "$seedvar/lib/lca-vm"
echo "from the seed host's /var" >"$seedvar/lib/lca-vm/seed-data"
rm -rf "$b" "$work/var-4.15.2"

# skopeo 1.9 run as root writes a cache into /var/lib/containers: keep the machine's untouched.
seed_create() { # seed_create TAG KARG...
  local tag=$1
  shift
  local kargs=()
  for k in "$@"; do kargs+=(--karg "$k"); done
  say "lcactl seed create -> $addr/ibu/seed:$tag (kargs: $*)"
  unshare --mount --propagation private -- bash -c 'mount -t tmpfs tmpfs /var/lib && exec "$@"' _ \
    "$lcactl" seed create --sysroot "$sh" --version 4.15.2 --image "$addr/ibu/seed:$tag" \
    --authfile "$regdir/auth.json" --registries-conf "$regdir/registries.conf" \
    --policy "$regdir/policy.json" --work-dir "$work" "${kargs[@]}" >>"$work/seed-create.log" 2>&1 ||
    die "lcactl seed create failed: $(tail -n 5 "$work/seed-create.log")"
}
seed_create 4.15.2 root=/dev/vda rw
if [[ "$broken" == yes ]]; then
  # No /dev/vdz: the initramfs waits rd.timeout for it, then powers off (rd.shell=0).
  seed_create 4.15.2-broken root=/dev/vdz rw rd.timeout=30 rd.retry=20 rd.shell=0 rd.emergency=poweroff
fi
rm -rf "$sh"

# --- the disk ---------------------------------------------------------------------------------
say "disk.img: mkfs.ext4 -d (no loop device)"
rm -f "$out/disk.img"
truncate -s 10G "$out/disk.img"
mkfs.ext4 -q -L root -d "$sr" "$out/disk.img" || die "mkfs.ext4 -d failed"
rm -rf "$sr"
say "done: $out/disk.img ($(du -h "$out/disk.img" | cut -f1) allocated)"
rm -rf "$work"
