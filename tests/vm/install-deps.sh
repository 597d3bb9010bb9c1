#!/usr/bin/env bash
# The Debian 12 packages the VM test needs on the host, on top of the project's own
# (scripts/install-deps.sh: compilers, libraries, ostree, skopeo, docker-registry, ...).
# Idempotent: apt-get runs only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/vm/install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi
bash scripts/install-deps.sh

# qemu-system-x86 (TCG: no /dev/kvm needed), its BIOS and the virtio-net option ROM
# (ipxe-qemu, only a Recommends), mmdebstrap for the guest tree, e2fsprogs for mkfs.ext4 -d and
# debugfs, util-linux for unshare, ccache to rebuild quickly.
pkgs=(qemu-system-x86 seabios ipxe-qemu mmdebstrap debian-archive-keyring e2fsprogs util-linux
  perl ccache)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "tests/vm/install-deps.sh: all ${#pkgs[@]} VM packages present"
  exit 0
fi
echo "tests/vm/install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
