#!/usr/bin/env bash
# A throwaway ostree sysroot "booted" at an OS release, for tests (never the machine's /sysroot).
#
#   make-sysroot.sh DIR [--version 4.14.1] [--stateroot rhcos] [--size-mb N]
#                       [--branch rhcos/VERSION] [--timestamp "2024-01-01 00:00:00 +0000"]
#     DIR/os-repo   archive repo holding the release commit on BRANCH (metadata version=VERSION)
#     DIR/sysroot   init-fs --modern, sysroot.bootloader=none, stateroot STATEROOT, that commit
#                   deployed with kargs "root=LABEL=root rw"
#     DIR/cmdline   the default BLS entry's options line: what a bootloader would pass to the
#                   kernel, including ostree=/ostree/boot.N/... (the agent resolves the booted
#                   deployment from it)
#     DIR/sysroot/ostree/deploy/STATEROOT/var/lib/kubelet/config.json  a minimal pull secret
#     DIR/sysroot/ostree/deploy/STATEROOT/var/lib/containers/          empty
#   --size-mb N adds N MiB of random-but-compressible filler under usr/share/doc/filler.
#   --extra-tree SRC copies the directory SRC into the tree as usr/share/extra (real files for
#   benchmarks: many small and large files, as an OS has).
#
#   make-sysroot.sh --commit-only REPO --version V --branch B [--tree-changes] [--from REF]
#                   [--timestamp TS]
#     Commits a NEWER release into REPO (created as an archive repo if missing). Its tree is the
#     one of REF (default: the ref in REPO with the highest version metadata, other than B; a
#     fresh tree if REPO has none). Without --tree-changes the tree is identical and only the
#     metadata differs; with it: usr/bin/release prints V, usr/{etc,lib}/os-release say
#     VERSION_ID=V, usr/etc/deprecated.conf is removed, usr/share/doc/release-notes.txt added.
#     The timestamp defaults to REF's plus one day.
#
# Progress goes to stderr; the last line on stdout is the commit checksum (the deployed one in
# the first form).
set -euo pipefail

prog=$(basename "$0")
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}
usage() {
  cat >&2 <<EOF
usage: $prog DIR [--version 4.14.1] [--stateroot rhcos] [--size-mb N] [--extra-tree SRC] [--branch B] [--timestamp TS]
       $prog --commit-only REPO --version V --branch B [--tree-changes] [--from REF] [--timestamp TS]
EOF
  exit 2
}

# Nothing may become immutable (chattr +i) or the caller cannot delete DIR afterwards.
case ",${OSTREE_SYSROOT_DEBUG:-}," in
  *,mutable-deployments,*) ;;
  *) export OSTREE_SYSROOT_DEBUG="${OSTREE_SYSROOT_DEBUG:+$OSTREE_SYSROOT_DEBUG,}mutable-deployments" ;;
esac
unset SOURCE_DATE_EPOCH OSTREE_SYSROOT OSTREE_REPO

readonly kver="5.14.0-284.25.1.el9_2.x86_64"
readonly base_timestamp="2024-01-01 00:00:00 +0000"

# Scratch directory of either mode, removed on any exit.
work=""
trap '[[ -z "$work" ]] || rm -rf "$work"' EXIT

command -v ostree >/dev/null 2>&1 || die "ostree not found (apt-get install ostree)"

write_os_release() {
  local tree=$1 version=$2 f
  for f in "$tree/usr/lib/os-release" "$tree/usr/etc/os-release"; do
    cat >"$f" <<EOF
NAME="Red Hat Enterprise Linux CoreOS"
ID="rhcos"
ID_LIKE="rhel fedora"
VERSION="$version"
VERSION_ID="$version"
PRETTY_NAME="Red Hat Enterprise Linux CoreOS $version (Test)"
OSTREE_VERSION="$version"
EOF
  done
}

write_release_bin() {
  local tree=$1 version=$2
  printf '#!/bin/sh\necho "%s"\n' "$version" >"$tree/usr/bin/release"
  chmod 0755 "$tree/usr/bin/release"
}

# An OS-looking tree for release VERSION in TREE; SIZE_MB MiB of filler when > 0.
make_tree() {
  local tree=$1 version=$2 size_mb=$3
  mkdir -p "$tree/usr/bin" "$tree/usr/lib/modules/$kver" "$tree/usr/etc/containers" \
    "$tree/usr/etc/sysconfig" "$tree/usr/share/doc"
  echo "a kernel for $kver" >"$tree/usr/lib/modules/$kver/vmlinuz"
  echo "an initramfs for $kver" >"$tree/usr/lib/modules/$kver/initramfs.img"
  printf '#!/bin/sh\necho "a shell"\n' >"$tree/usr/bin/sh"
  chmod 0755 "$tree/usr/bin/sh"
  write_release_bin "$tree" "$version"
  write_os_release "$tree" "$version"
  echo "localhost" >"$tree/usr/etc/hostname"
  cat >"$tree/usr/etc/containers/registries.conf" <<'EOF'
unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
short-name-mode = "enforcing"
EOF
  printf 'root:x:0:0:root:/root:/bin/bash\n' >"$tree/usr/etc/passwd"
  printf 'root:x:0:\n' >"$tree/usr/etc/group"
  printf 'Red Hat Enterprise Linux CoreOS (test)\n' >"$tree/usr/etc/motd"
  printf 'KUBELET_EXTRA_ARGS=""\n' >"$tree/usr/etc/sysconfig/kubelet"
  # The newer release (--tree-changes) deletes this one.
  printf '# removed in the next release\nlegacy=true\n' >"$tree/usr/etc/deprecated.conf"
  printf 'Test OS documentation.\n' >"$tree/usr/share/doc/README"
  if [[ "$size_mb" -gt 0 ]]; then
    mkdir -p "$tree/usr/share/doc/filler"
    local text i j f
    text=$(printf 'filler text that compresses well, line %04d\n' $(seq 1 128))
    for ((i = 1; i <= size_mb; i++)); do
      f=$(printf '%s/usr/share/doc/filler/blob-%04d.txt' "$tree" "$i")
      # ~half random base64 (compresses to ~75%), half repeated text (compresses to nothing).
      {
        head -c 393216 /dev/urandom | base64 -w 76
        for ((j = 0; j < 96; j++)); do printf '%s\n' "$text"; done
      } >"$f"
      truncate -s 1048576 "$f"
    done
  fi
}

# The changes a newer release makes to TREE.
apply_tree_changes() {
  local tree=$1 version=$2
  write_release_bin "$tree" "$version"
  write_os_release "$tree" "$version"
  rm -f "$tree/usr/etc/deprecated.conf"
  mkdir -p "$tree/usr/share/doc"
  printf 'Release %s: usr/etc/deprecated.conf removed.\n' "$version" >"$tree/usr/share/doc/release-notes.txt"
}

# Prints the checksum. Extra arguments go to ostree commit (the tree source).
commit() {
  local repo=$1 branch=$2 version=$3 timestamp=$4
  shift 4
  ostree --repo="$repo" commit --bootable --owner-uid=0 --owner-gid=0 \
    --add-metadata-string=version="$version" --timestamp="$timestamp" \
    -b "$branch" -s "Release $version" "$@" ||
    die "ostree commit of $branch into $repo failed"
}

metadata_version() {
  local v
  v=$(ostree --repo="$1" show --print-metadata-key=version "$2" 2>/dev/null) || return 0
  v=${v#\'}
  printf '%s\n' "${v%\'}"
}

main_sysroot() {
  local dir="" version=4.14.1 stateroot=rhcos size_mb=0 branch="" timestamp=$base_timestamp
  local extra_tree=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --version | --stateroot | --size-mb | --branch | --timestamp | --extra-tree)
        [[ $# -ge 2 && -n "$2" ]] || usage
        case "$1" in
          --version) version=$2 ;;
          --stateroot) stateroot=$2 ;;
          --size-mb) size_mb=$2 ;;
          --branch) branch=$2 ;;
          --timestamp) timestamp=$2 ;;
          --extra-tree) extra_tree=$2 ;;
        esac
        shift 2
        ;;
      -*) usage ;;
      *)
        [[ -z "$dir" ]] || usage
        dir=$1
        shift
        ;;
    esac
  done
  [[ -n "$dir" ]] || usage
  [[ "$size_mb" =~ ^[0-9]+$ ]] || die "--size-mb must be a number, got '$size_mb'"
  [[ "$stateroot" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad stateroot name '$stateroot'"
  branch=${branch:-rhcos/$version}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [[ "$dir" != / ]] || die "DIR must not be /"
  [[ ! -e "$dir/sysroot" ]] || die "$dir/sysroot already exists"
  [[ ! -e "$dir/os-repo" ]] || die "$dir/os-repo already exists"

  work=$(mktemp -d "$dir/.make-sysroot.XXXXXX")

  say "building the $version tree with ${size_mb} MiB of filler"
  make_tree "$work/tree" "$version" "$size_mb"
  if [[ -n "$extra_tree" ]]; then
    [[ -d "$extra_tree" ]] || die "--extra-tree $extra_tree is not a directory"
    say "adding $extra_tree as usr/share/extra"
    cp -a "$extra_tree" "$work/tree/usr/share/extra" || die "copying $extra_tree failed"
  fi
  ostree --repo="$dir/os-repo" init --mode=archive || die "ostree init $dir/os-repo failed"
  local csum
  csum=$(commit "$dir/os-repo" "$branch" "$version" "$timestamp" --tree=dir="$work/tree")
  say "committed $branch ($version) = $csum into $dir/os-repo"

  local sysroot=$dir/sysroot repo=$dir/sysroot/ostree/repo
  mkdir -p "$sysroot"
  ostree admin init-fs --modern "$sysroot" >&2 || die "ostree admin init-fs failed"
  ostree --repo="$repo" config set sysroot.bootloader none || die "setting sysroot.bootloader failed"
  ostree admin os-init --sysroot="$sysroot" "$stateroot" >&2 || die "ostree admin os-init failed"
  ostree --repo="$repo" pull-local "$dir/os-repo" "$branch" >&2 || die "pull-local failed"
  ostree admin deploy --sysroot="$sysroot" --os="$stateroot" \
    --karg=root=LABEL=root --karg=rw "$branch" >&2 || die "ostree admin deploy failed"
  say "deployed $branch in stateroot $stateroot of $sysroot"

  # The default entry has the highest number in its name (ostree-<n>-<stateroot>.conf, n counts
  # down from the number of deployments).
  local entry options
  entry=$(find "$sysroot/boot/loader/entries" -maxdepth 1 -name 'ostree-*.conf' | sort -V | tail -n 1)
  [[ -n "$entry" ]] || die "no BLS entry under $sysroot/boot/loader/entries"
  options=$(sed -n 's/^options[[:space:]]\{1,\}//p' "$entry")
  [[ "$options" == *ostree=* ]] || die "no ostree= in the options of $entry"
  printf '%s\n' "$options" >"$dir/cmdline"
  say "wrote $dir/cmdline from $(basename "$entry"): $options"

  local var=$sysroot/ostree/deploy/$stateroot/var
  mkdir -p "$var/lib/kubelet" "$var/lib/containers"
  (
    umask 077
    printf '{"auths":{"quay.io":{"auth":"%s","email":"test@example.com"}}}\n' \
      "$(printf 'test:secret' | base64 -w0)" >"$var/lib/kubelet/config.json"
  )
  say "wrote the pull secret $var/lib/kubelet/config.json and $var/lib/containers/"
  printf '%s\n' "$csum"
}

main_commit_only() {
  local repo="" version="" branch="" changes=no from="" timestamp=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --commit-only | --version | --branch | --from | --timestamp)
        [[ $# -ge 2 && -n "$2" ]] || usage
        case "$1" in
          --commit-only) repo=$2 ;;
          --version) version=$2 ;;
          --branch) branch=$2 ;;
          --from) from=$2 ;;
          --timestamp) timestamp=$2 ;;
        esac
        shift 2
        ;;
      --tree-changes)
        changes=yes
        shift
        ;;
      *) usage ;;
    esac
  done
  [[ -n "$repo" && -n "$version" && -n "$branch" ]] || usage
  if [[ ! -f "$repo/config" ]]; then
    mkdir -p "$repo"
    ostree --repo="$repo" init --mode=archive || die "ostree init $repo failed"
    say "created archive repo $repo"
  fi

  if [[ -z "$from" ]]; then
    # The newest release already in REPO.
    local ref v best=""
    while IFS= read -r ref; do
      [[ -n "$ref" && "$ref" != "$branch" ]] || continue
      v=$(metadata_version "$repo" "$ref")
      [[ -n "$v" ]] || continue
      if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -n 1)" == "$v" ]]; then
        best=$v
        from=$ref
      fi
    done < <(ostree --repo="$repo" refs)
  fi
  if [[ -n "$from" ]]; then
    ostree --repo="$repo" rev-parse "$from" >/dev/null 2>&1 || die "no ref $from in $repo"
  fi

  if [[ -z "$timestamp" ]]; then
    timestamp=$base_timestamp
    if [[ -n "$from" ]]; then
      local date epoch
      date=$(ostree --repo="$repo" show "$from" | sed -n 's/^Date:[[:space:]]*//p')
      epoch=$(date -u -d "$date" +%s) || die "cannot parse the date '$date' of $from"
      timestamp=$(date -u -d "@$((epoch + 86400))" '+%Y-%m-%d %H:%M:%S +0000')
    fi
  fi

  local csum
  if [[ -n "$from" && "$changes" == no ]]; then
    say "committing $branch ($version): the tree of $from, new metadata"
    csum=$(commit "$repo" "$branch" "$version" "$timestamp" --tree=ref="$from")
  else
    work=$(mktemp -d "${TMPDIR:-/tmp}/make-sysroot.XXXXXX")
    if [[ -n "$from" ]]; then
      ostree --repo="$repo" checkout -U "$from" "$work/tree" || die "checkout of $from failed"
    else
      say "no earlier release in $repo: building a fresh tree"
      make_tree "$work/tree" "$version" 0
    fi
    if [[ "$changes" == yes ]]; then apply_tree_changes "$work/tree" "$version"; fi
    say "committing $branch ($version) from ${from:-a fresh tree}, tree changes: $changes"
    csum=$(commit "$repo" "$branch" "$version" "$timestamp" --tree=dir="$work/tree")
  fi
  say "committed $branch ($version, $timestamp) = $csum into $repo"
  printf '%s\n' "$csum"
}

[[ $# -ge 1 ]] || usage
case "$1" in
  -h | --help) usage ;;
  --commit-only) main_commit_only "$@" ;;
  *) main_sysroot "$@" ;;
esac
