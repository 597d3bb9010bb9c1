#!/usr/bin/env bash
# The man pages (docs/man), checked against the built binaries (ctest label "packaging"):
#  * each renders without a single warning (groff -ww, and man --warnings as man(1) would);
#  * lcactl.1 has a section for every subcommand `lcactl --help` lists (and every nested one),
#    and names every option each of them prints; lifecycle-agent.8 names every option of
#    `lifecycle-agent --help`, and so does README.md (its "Running the daemon" list). So a new
#    subcommand or flag cannot leave the pages stale;
#  * copies with a subcommand or an option removed are rejected, so the check has teeth.
# Usage: check-man.sh SOURCE_DIR LCACTL LIFECYCLE_AGENT
set -euo pipefail
src=$(cd "$1" && pwd)
lcactl=$2
agent=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
problem() {
  echo "FAIL: $*" >&2
  fail=1
}

# --- rendering ---
for page in "$src/docs/man/lcactl.1" "$src/docs/man/lifecycle-agent.8"; do
  out=$(groff -ww -z -man "$page" 2>&1) || true
  [ -z "$out" ] || problem "groff -ww $(basename "$page"): $out"
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l -Tutf8 "$page" 2>&1 >/dev/null) || true
  [ -z "$out" ] || problem "man --warnings $(basename "$page"): $out"
  [ -n "$(MANWIDTH=80 man -l "$page" 2>/dev/null)" ] || problem "$(basename "$page") renders empty"
done
printf '.TH X 1\n.XX broken\n' >"$work/broken.1"
[ -n "$(groff -ww -z -man "$work/broken.1" 2>&1)" ] || problem "groff -ww did not warn about an undefined macro"

# --- CLI11 help parsing ---
# subcommands HELP_TEXT: the names listed under "Subcommands:".
subcommands() {
  awk '/^[A-Za-z]+:$/ { sec = $0; next } sec ~ /^[Ss]ubcommands:$/ && /^  [a-z]/ { print $1 }'
}
# options HELP_TEXT: every long option name (first column of the Options section), and short
# ones that have no long form.
options() {
  awk '/^[A-Za-z]+:$/ { sec = $0; next } sec ~ /^[Oo]ptions:$/ && /^  +-/ { print $1 }' |
    while IFS= read -r names; do
      longs=$(tr ',' '\n' <<<"$names" | grep -E '^--' || true)
      if [ -n "$longs" ]; then echo "$longs"; else tr ',' '\n' <<<"$names"; fi
    done
}
# requirements: what the binaries print, gathered once. Lines: "opt<TAB>--name<TAB>where" (the
# page must name the option) and "sec<TAB>sub [nested]<TAB>" (lcactl.1 must have a section
# headed .SS "lcactl sub [nested] ...").
top_help=$("$lcactl" --help)
{
  for opt in $(options <<<"$top_help"); do printf 'opt\t%s\tlcactl\n' "$opt"; done
  for sub in $(subcommands <<<"$top_help"); do
    printf 'sec\t%s\t\n' "$sub"
    help=$("$lcactl" "$sub" --help)
    for opt in $(options <<<"$help"); do printf 'opt\t%s\tlcactl %s\n' "$opt" "$sub"; done
    for nested in $(subcommands <<<"$help"); do
      printf 'sec\t%s %s\t\n' "$sub" "$nested"
      for opt in $(options <<<"$("$lcactl" "$sub" "$nested" --help)"); do
        printf 'opt\t%s\tlcactl %s %s\n' "$opt" "$sub" "$nested"
      done
    done
  done
} >"$work/lcactl.req"
for opt in $(options <<<"$("$agent" --help)"); do printf 'opt\t%s\tlifecycle-agent\n' "$opt"; done >"$work/agent.req"

# missing PAGE REQ: prints each requirement the page does not meet (one awk pass: the page's
# option words and section headings, with roff's \- read as -).
missing() {
  awk -F'\t' -v name="$(basename "$1")" '
    FNR == NR {
      gsub(/\\-/, "-")
      if ($0 ~ /^\.SS "lcactl /) { h = $0; sub(/^\.SS "lcactl /, "", h); sub(/".*/, "", h); heads[h] = 1 }
      line = $0
      while (match(line, /--?[A-Za-z][A-Za-z0-9-]*/)) {
        words[substr(line, RSTART, RLENGTH)] = 1
        line = substr(line, RSTART + RLENGTH)
      }
      next
    }
    $1 == "opt" && !($2 in words) { print "  " name " does not name option " $2 " of `" $3 "`" }
    $1 == "sec" {
      found = 0
      for (h in heads) if (h == $2 || index(h, $2 " ") == 1) found = 1
      if (!found) print "  " name " has no section for `lcactl " $2 "`"
    }
  ' "$1" "$2"
}

# The parser must find something, or every check below would pass vacuously.
n_sub=$(grep -c '^sec' "$work/lcactl.req" || true)
n_opt=$(grep -c '^opt' "$work/agent.req" || true)
[ "$n_sub" -ge 8 ] || problem "found only $n_sub subcommands in lcactl's help (help format changed?)"
[ "$n_opt" -ge 10 ] || problem "found only $n_opt options in 'lifecycle-agent --help' (help format changed?)"

out=$(missing "$src/docs/man/lcactl.1" "$work/lcactl.req")
if [ -z "$out" ]; then
  echo "ok: lcactl.1 has a section for each of the $n_sub (nested) subcommands and names all $(grep -c '^opt' "$work/lcactl.req") options"
else
  printf '%s\n' "$out" >&2
  problem "lcactl.1 is stale (above)"
fi
out=$(missing "$src/docs/man/lifecycle-agent.8" "$work/agent.req")
if [ -z "$out" ]; then
  echo "ok: lifecycle-agent.8 names all $n_opt options of lifecycle-agent --help"
else
  printf '%s\n' "$out" >&2
  problem "lifecycle-agent.8 is stale (above)"
fi

# README.md's "Running the daemon" section names them too (what a test setup needs).
sed -n '/^## Running the daemon$/,/^## /p' "$src/README.md" >"$work/readme-daemon.md"
[ -s "$work/readme-daemon.md" ] || problem "README.md has no '## Running the daemon' section"
out=$(missing "$work/readme-daemon.md" "$work/agent.req")
if [ -z "$out" ]; then
  echo "ok: README.md's Running the daemon names all $n_opt options of lifecycle-agent --help"
else
  printf '%s\n' "$out" >&2
  problem "README.md's Running the daemon is stale (above)"
fi

# Teeth: a page missing one subcommand section, or one option, is rejected.
first_sub=$(awk -F'\t' '$1 == "sec" { print $2; exit }' "$work/lcactl.req")
sed "/^\.SS \"lcactl $first_sub[ \"]/d" "$src/docs/man/lcactl.1" >"$work/no-sub.1"
if [ -n "$(missing "$work/no-sub.1" "$work/lcactl.req")" ]; then
  echo "ok: a lcactl.1 without the 'lcactl $first_sub' section is rejected"
else
  problem "a lcactl.1 without the 'lcactl $first_sub' section passed"
fi
sed 's/\\-\\-no\\-headers/\\-\\-no\\-head/g' "$src/docs/man/lcactl.1" >"$work/no-opt.1"
if [ -n "$(missing "$work/no-opt.1" "$work/lcactl.req")" ]; then
  echo "ok: a lcactl.1 without --no-headers is rejected"
else
  problem "a lcactl.1 without --no-headers passed"
fi
sed 's/\\-\\-precache\\-disabled/\\-\\-precache\\-off/g' "$src/docs/man/lifecycle-agent.8" >"$work/no-opt.8"
if [ -n "$(missing "$work/no-opt.8" "$work/agent.req")" ]; then
  echo "ok: a lifecycle-agent.8 without --precache-disabled is rejected"
else
  problem "a lifecycle-agent.8 without --precache-disabled passed"
fi
sed 's/--hooks-dir/--hooks-directory/g' "$work/readme-daemon.md" >"$work/no-opt.md"
if [ -n "$(missing "$work/no-opt.md" "$work/agent.req")" ]; then
  echo "ok: a README.md without --hooks-dir is rejected"
else
  problem "a README.md without --hooks-dir passed"
fi
exit $fail
