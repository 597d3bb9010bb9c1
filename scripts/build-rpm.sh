#!/usr/bin/env bash
# Builds the lifecycle-agent rpm from source: scripts/dist.sh makes the tarball, rpmbuild
# builds it in its own _topdir under OUTDIR (never ~/rpmbuild). Prints the binary rpm's path
# on the last line of stdout; rpmbuild's output goes to stderr.
#
#   scripts/build-rpm.sh [--worktree] [OUTDIR]    (OUTDIR default: ./build/rpm, git-ignored)
#
# --worktree: package the working tree's files instead of HEAD (see scripts/dist.sh).
# Environment: JOBS (default: the number of cores), LCA_RPM_PACKAGER (the Packager tag),
# LCA_RPM_CCACHE=0 to not use ccache even when it is installed.
#
# rpmbuild runs with --nodeps: the BuildRequires name Fedora packages, and on a Debian host
# (CI) the build dependencies are Debian packages that rpm's own database knows nothing about,
# so rpmbuild would refuse every one of them. scripts/install-deps.sh installs the real ones.
set -euo pipefail

dist_args=()
outdir=
for arg in "$@"; do
  case "$arg" in
    --worktree) dist_args+=(--worktree) ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "build-rpm.sh: unknown option $arg" >&2
      exit 2
      ;;
    *) outdir=$arg ;;
  esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
outdir=${outdir:-$src/build/rpm}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
topdir=$outdir/rpmbuild
rm -rf "$topdir"
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}

tarball=$(bash "$src/scripts/dist.sh" "${dist_args[@]}" "$topdir/SOURCES" | tail -n 1)
echo "build-rpm.sh: source $tarball" >&2

# packager: rpmlint asks for the tag; it names who built the rpm, so it is given here, not in
# the spec.
defines=(--define "_topdir $topdir" --define "_smp_mflags -j${JOBS:-$(nproc)}"
  --define "packager ${LCA_RPM_PACKAGER:-lca developer <dev@lca.invalid>}")
if [ "${LCA_RPM_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null; then
  # Hits across builds in different temp dirs: paths under the build dir are hashed relative
  # to it, and the directory itself is left out of the hash.
  defines+=(--define "lca_ccache 1")
  export CCACHE_BASEDIR=$topdir/BUILD CCACHE_NOHASHDIR=true
fi

start=$(date +%s)
rpmbuild -bb --nodeps "${defines[@]}" "$src/rpm/lifecycle-agent.spec" >&2
echo "build-rpm.sh: rpmbuild took $(($(date +%s) - start))s" >&2

shopt -s nullglob
# lifecycle-agent-<version>-...: the digit leaves out -debuginfo and -debugsource.
rpms=("$topdir"/RPMS/*/lifecycle-agent-[0-9]*.rpm)
if [ ${#rpms[@]} -ne 1 ]; then
  echo "build-rpm.sh: expected one lifecycle-agent rpm in $topdir/RPMS, found: ${rpms[*]:-none}" >&2
  exit 1
fi
echo "${rpms[0]}"
