#!/usr/bin/env bash
# Makes the source tarball the rpm is built from: lifecycle-agent-<VERSION>.tar.gz with every
# file under lifecycle-agent-<VERSION>/, VERSION being project(lca VERSION ...) of
# CMakeLists.txt. Prints the tarball's path.
#
#   scripts/dist.sh [--worktree] [OUTDIR]     (OUTDIR default: ./build/dist, git-ignored)
#
# Default: `git archive` of HEAD (what is committed, reproducible). --worktree: the working
# tree's files instead, tracked and untracked-but-not-ignored, as they are on disk, to try a
# change before committing it.
set -euo pipefail

worktree=no
outdir=
for arg in "$@"; do
  case "$arg" in
    --worktree) worktree=yes ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "dist.sh: unknown option $arg" >&2
      exit 2
      ;;
    *) outdir=$arg ;;
  esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^project(lca VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [ -z "$version" ]; then
  echo "dist.sh: no 'project(lca VERSION x.y.z' line in $src/CMakeLists.txt" >&2
  exit 1
fi
name=lifecycle-agent-$version
outdir=${outdir:-$src/build/dist}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
tarball=$outdir/$name.tar.gz

if [ "$worktree" = no ]; then
  git -C "$src" archive --format=tar.gz --prefix="$name/" -o "$tarball" HEAD
else
  # Files listed by git that exist on disk (a deleted tracked file is left out), NUL-separated
  # so no name is ever split or interpreted.
  list=$(mktemp)
  trap 'rm -f "$list"' EXIT
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$src/$f" ] || [ -L "$src/$f" ]; then printf '%s\0' "$f"; fi
    done >"$list"
  tar -C "$src" --null -T "$list" --transform "s,^,$name/," --owner=0 --group=0 \
    --numeric-owner -czf "$tarball"
fi
echo "$tarball"
