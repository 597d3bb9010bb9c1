#!/usr/bin/env bash
# Installs every Debian package lca's build, tests and demo need. Idempotent: it only runs
# apt-get when something is missing, and then runs `apt-get update` once.
set -euo pipefail

build_pkgs=(
  cmake g++ make pkg-config
  libostree-dev libglib2.0-dev libsystemd-dev
  libboost-dev libboost-filesystem-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libarchive-dev
  libgtest-dev libgmock-dev libyaml-cpp-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev libisal-dev libtomlplusplus-dev
)
run_pkgs=(
  ostree skopeo podman umoci docker-registry apache2-utils
  etcd-server etcd-client rpm systemd iproute2 curl ca-certificates python3
  e2fsprogs mount  # tests/support/small_fs.hpp: full-filesystem tests
  zsh  # tests/unit/cli_test runs lcactl's zsh completion in a real zsh
  openssl python3-yaml  # tests/support/kube_apiserver: the Kubernetes API server stand-in
)
# The Kubernetes API server stand-in's tests drive the real kubectl. Machine images carry a
# recent one at /usr/bin/kubectl (1.32); where it is missing Debian 12's kubernetes-client
# (kubectl 1.20) stands in, and the tests skip the few checks that need kubectl >= 1.23.
if [ ! -x /usr/bin/kubectl ]; then
  run_pkgs+=(kubernetes-client)
fi
# Packaging (tests/packaging, scripts/build-rpm.sh): rpmbuild and rpmspec come with rpm,
# find-debuginfo with debugedit; rpmlint; systemd-analyze with systemd; groff and man render
# and check the man pages.
pkg_pkgs=(rpm debugedit rpmlint systemd groff-base man-db)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${build_pkgs[@]}" "${run_pkgs[@]}" "${pkg_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#build_pkgs[@]}+${#run_pkgs[@]}+${#pkg_pkgs[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
