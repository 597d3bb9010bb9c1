#!/usr/bin/env bash
# The guest's Debian bookworm root filesystem, built once with mmdebstrap and cached.
#
#   build-rootfs.sh CACHE_DIR
#
# Prints the cached directory (CACHE_DIR/rootfs-<key>) as the last line of stdout. The key is
# the sha256 of the package list and of the customize hook, so a changed package list or recipe
# builds a new one; an existing complete one (it has a .complete stamp) is reused as is.
#
# Recipe (../shared/docs/VM-BOOT.md): minbase + the package list, docs/man/locales excluded,
# an initramfs with dracut's ostree module at usr/lib/modules/$KVER/initramfs.img, the kernel at
# usr/lib/modules/$KVER/vmlinuz (where ostree looks for them), and kernel modules a qemu guest
# never loads (GPUs, Wi-Fi, sound, media, InfiniBand, ...) removed: they are most of the tree's
# size, and every byte of the tree is committed, deployed, tarred into the seed, fetched and
# extracted again under TCG. Root mode (ostree-owned files must keep uid 0).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prog=build-rootfs.sh
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: $prog CACHE_DIR"
cache=$1
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Runs inside mmdebstrap's customize phase with $1 = the new root.
customize=$(
  cat <<'HOOK_EOF'
set -eu
root=$1
kver=$(ls "$root/usr/lib/modules" | head -n 1)
[ -n "$kver" ] || { echo "no kernel modules in $root" >&2; exit 1; }
chroot "$root" depmod -a "$kver"
chroot "$root" dracut -f --no-hostonly --add ostree \
  --omit "plymouth i18n lvm dm mdraid crypt btrfs multipath nfs iscsi nbd fcoe network" \
  --filesystems ext4 "/usr/lib/modules/$kver/initramfs.img" "$kver"
cp "$root/boot/vmlinuz-$kver" "$root/usr/lib/modules/$kver/vmlinuz"
rm -rf "$root"/boot/*
m=$root/usr/lib/modules/$kver/kernel
rm -rf "$m/sound" "$m/drivers/gpu" "$m/drivers/media" "$m/drivers/infiniband" \
  "$m/drivers/net/wireless" "$m/drivers/net/ethernet" "$m/drivers/staging" "$m/drivers/isdn" \
  "$m/drivers/bluetooth" "$m/drivers/iio" "$m/drivers/usb" "$m/drivers/hid" "$m/drivers/mtd" \
  "$m/drivers/thunderbolt" "$m/drivers/video" "$m/drivers/scsi" "$m/drivers/target" \
  "$m/drivers/misc" "$m/drivers/nfc" "$m/drivers/atm" "$m/drivers/can" \
  "$m/drivers/net/can" "$m/drivers/net/usb" "$m/drivers/net/wwan" "$m/drivers/net/ieee802154" \
  "$m/net/wireless" "$m/net/mac80211" "$m/net/bluetooth" "$m/fs/nls" "$m/fs/ocfs2" "$m/fs/gfs2" \
  "$m/fs/btrfs" "$m/fs/xfs" "$m/fs/f2fs" "$m/fs/nfs" "$m/fs/nfsd" "$m/fs/ceph" "$m/fs/smb"
chroot "$root" depmod -a "$kver"
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*
HOOK_EOF
)

packages=$(grep -v '^[[:space:]]*#' "$here/guest-packages.txt" | xargs | tr ' ' ',')
key=$(printf '%s\n%s\n' "$packages" "$customize" | sha256sum | cut -c1-16)
out=$cache/rootfs-$key
if [[ -f "$out/.complete" ]]; then
  say "cached rootfs $out"
  printf '%s\n' "$out"
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "run as root (mmdebstrap root mode)"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found (tests/vm/install-deps.sh)"

# The machine's apt sources (a snapshot or a local mirror on CI), else deb.debian.org.
mirrors=()
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  [[ -s "$f" ]] && grep -q bookworm "$f" && mirrors+=("$f")
done
[[ ${#mirrors[@]} -gt 0 ]] || mirrors=(http://deb.debian.org/debian)

tmp=$out.tmp
rm -rf "$tmp"
say "building $out with mmdebstrap (sources: ${mirrors[*]}); takes minutes"
start=$SECONDS
# INITRD=No: the kernel's and dracut's own postinst runs (/etc/kernel/postinst.d/dracut) would
# build two initramfs images that the hook below replaces anyway: minutes under load.
INITRD=No mmdebstrap --variant=minbase --mode=root --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="$customize" \
  bookworm "$tmp" "${mirrors[@]}" >&2 || die "mmdebstrap failed"
touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
say "built $out in $((SECONDS - start)) s ($(du -sh "$out" | cut -f1))"
printf '%s\n' "$out"
