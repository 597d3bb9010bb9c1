#!/usr/bin/env bash
# The VM proof: lca upgrading and rolling back a real ostree host across real reboots in qemu.
# Entry point: scripts/vm-test.sh (its options are this script's). See docs/vm.md.
#
#   run.sh [--build DIR] [--results DIR] [--cache DIR] [--scenarios "1 2 3"] [--skip-deps]
#
# 1. builds lca (warnings are errors) in --build (default build-vm) unless it is built;
# 2. the guest rootfs, cached in --cache (default $LCA_VM_CACHE or /var/cache/lca-vm);
# 3. a registry on 127.0.0.1 with a password, the image and the seeds (build-image.sh);
# 4. each scenario on its own copy of the image: boot.sh boots the first BLS entry (or the one
#    the plan names), once per planned step, and checks every boot.
# Results in --results (default build-vm-results/vm-<UTC time>, git-ignored): summary.md, boots.tsv, one serial log
# per boot (sN-bootK.log), build logs. Exit 0 only when scenarios 1 and 2 pass; scenario 3's
# outcome is reported either way (it documents a failure mode, see docs/vm.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prog=vm-test
say() { printf '%s: [%4ds] %s\n' "$prog" "$SECONDS" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}

build=$root/build-vm
results=$root/build-vm-results/vm-$(date -u +%Y%m%dT%H%M%SZ)
cache=${LCA_VM_CACHE:-/var/cache/lca-vm}
scenarios="1 2 3"
skip_deps=no
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build | --results | --cache | --scenarios)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      case "$1" in
        --build) build=$2 ;;
        --results) results=$2 ;;
        --cache) cache=$2 ;;
        --scenarios) scenarios=$2 ;;
      esac
      shift 2
      ;;
    --skip-deps)
      skip_deps=yes
      shift
      ;;
    -h | --help)
      sed -n '2,16p' "$0"
      exit 0
      ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ "$(id -u)" -eq 0 ]] || die "run as root (mmdebstrap, ostree trees owned by root)"
case "$build" in /*) ;; *) build=$root/$build ;; esac
case "$results" in /*) ;; *) results=$root/$results ;; esac
mkdir -p "$results"
work=$(mktemp -d /var/tmp/lca-vm.XXXXXX)
regdir=$work/registry
reg_pid=""
cleanup() {
  "$root/scripts/testbed/registry.sh" stop "$regdir" >>"$results/registry-stop.log" 2>&1 || true
  # Seen once: the registry outlived the stop above. Ours by its pid only, never by name.
  if [[ -n "$reg_pid" && "$(readlink "/proc/$reg_pid/exe" 2>/dev/null)" == */docker-registry* ]]; then
    kill "$reg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
timing() { printf '%s\t%s\n' "$1" "$2" >>"$results/timings.tsv"; }
# The commit tested, "+dirty" when the tree has changes; "unknown" when git cannot tell (not a
# checkout), never a guess.
git_rev() {
  local rev
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
  git -C "$root" diff --quiet HEAD 2>/dev/null || rev+="+dirty"
  echo "$rev"
}
: >"$results/timings.tsv"

# --- 1. dependencies and build ---------------------------------------------------------------
if [[ "$skip_deps" == no ]]; then
  bash "$here/install-deps.sh" >&2
fi
t=$SECONDS
say "building lca in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLCA_WERROR=ON \
  $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) >"$results/build.log" 2>&1 ||
  die "cmake configure failed: see $results/build.log"
cmake --build "$build" -j "$(nproc)" --target lifecycle-agent lcactl lcactl-completion \
  >>"$results/build.log" 2>&1 || die "build failed: see $results/build.log"
timing build $((SECONDS - t))

# --- 2. rootfs (cached) ----------------------------------------------------------------------
t=$SECONDS
rootfs=$(bash "$here/build-rootfs.sh" "$cache" 2> >(tee "$results/rootfs.log" >&2) | tail -n 1)
[[ -d "$rootfs" ]] || die "no rootfs"
timing rootfs $((SECONDS - t))

# --- 3. registry, image, seeds -----------------------------------------------------------------
t=$SECONDS
creds=seed:vm-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
addr=$("$root/scripts/testbed/registry.sh" start "$regdir" --htpasswd "$creds" | tail -n 1)
reg_pid=$(cat "$regdir/registry.pid")
(
  umask 077
  printf '%s' "$creds" >"$regdir/credentials"
)
say "registry $addr (the guest sees it as 10.0.2.2:${addr##*:})"
broken=()
[[ " $scenarios " == *" 3 "* ]] && broken=(--broken-seed)
bash "$here/build-image.sh" --rootfs "$rootfs" --build "$build" --out "$work/image" \
  --registry-dir "$regdir" "${broken[@]}" 2> >(tee "$results/image.log" >&2) ||
  die "image build failed: see $results/image.log"
timing image+seeds $((SECONDS - t))

# --- 4. scenarios ----------------------------------------------------------------------------
printf 'scenario\tboot\tstep\tentry_no\tentry\tstateroot\tend\tuserspace_at_s\tmultiuser_guest_s\twall_s\tverdict\treason\tcmdline\n' \
  >"$results/boots.tsv"
declare -A verdicts durations
field() { sed -n "s/.*\b$1=\"\{0,1\}\([^\" ]*\).*/\1/p" <<<"$2"; }
quoted() { sed -n "s/.*\b$1=\"\([^\"]*\)\".*/\1/p" <<<"$2"; }

# run_scenario N "STEP STATEROOT END ENTRY TIMEOUT" ...: boots in order, stops at the first
# boot that does not meet its expectation (the step budget is the plan's length).
run_scenario() {
  local n=$1
  shift
  local img=$work/s$n.img k=0 ok=yes ts=$SECONDS line
  cp --sparse=always "$work/image/disk.img" "$img"
  for plan in "$@"; do
    read -r step root end entry tmo <<<"$plan"
    say "scenario $n boot $k: entry $entry, step $step (expect $root, $end; timeout ${tmo}s)"
    local exp=()
    [[ "$root" != - ]] && exp+=(--expect-stateroot "$root")
    if line=$(bash "$here/boot.sh" "$img" --step "$step" --entry "$entry" --timeout "$tmo" \
      --log "$results/s$n-boot$k.log" --work "$work/kernel" --expect-end "$end" "${exp[@]}"); then
      :
    else
      ok=no
    fi
    say "  $line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$k" "$step" "$entry" \
      "$(field entry "$line")" "$(field stateroot "$line")" "$(field end "$line")" \
      "$(field userspace_at "$line")" "$(field multiuser "$line")" "$(field wall "$line")" \
      "$(field verdict "$line")" "$(quoted reason "$line")" "$(quoted cmdline "$line")" >>"$results/boots.tsv"
    k=$((k + 1))
    [[ "$ok" == yes ]] || break
  done
  e2fsck -fn "$img" >"$results/s$n-fsck.log" 2>&1 || say "  e2fsck -fn reports problems: $results/s$n-fsck.log"
  rm -f "$img"
  verdicts[$n]=$([[ "$ok" == yes ]] && echo PASS || echo FAIL)
  durations[$n]=$((SECONDS - ts))
  timing "scenario-$n" "${durations[$n]}"
  say "scenario $n: ${verdicts[$n]} in ${durations[$n]} s"
}

for s in $scenarios; do
  case "$s" in
    1) # success: Prep -> Upgrade -> reboot into rhcos_4.15.2 -> UpgradeCompleted -> Idle
      run_scenario 1 "s1-pivot rhcos reboot 1 1500" "s1-finalize rhcos_4.15.2 poweroff 1 900" \
        "s1-report rhcos_4.15.2 poweroff 1 300" ;;
    2) # auto-rollback: the init monitor's 60 s timeout -> reboot into rhcos -> Idle aborts
      run_scenario 2 "s2-pivot rhcos reboot 1 1500" "s2-wait-rollback rhcos_4.15.2 reboot 1 600" \
        "s2-after-rollback rhcos poweroff 1 900" ;;
    3) # hard failure: rhcos_4.15.2 never reaches userspace; the harness's fallback boots entry 2
      run_scenario 3 "s3-pivot rhcos reboot 1 1500" "report - no-userspace 1 300" \
        "s3-after-fallback rhcos poweroff 2 900" "report rhcos poweroff 1 300" ;;
    *) die "unknown scenario $s" ;;
  esac
done
timing total $((SECONDS - t0))

# --- 5. summary --------------------------------------------------------------------------------
{
  echo "# lca VM test: $(date -u +%FT%TZ)"
  echo
  echo "Command: \`bash scripts/vm-test.sh\` ($(git_rev)), host $(nproc) cores, qemu TCG."
  echo
  echo "| scenario | verdict | seconds |"
  echo "|---|---|---|"
  for s in $scenarios; do echo "| $s | ${verdicts[$s]:-not run} | ${durations[$s]:--} |"; done
  echo
  echo "## Boots"
  echo
  echo "| sc | boot | step | entry | booted stateroot | ended | userspace at (s) | multi-user (guest s) | wall (s) | verdict |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  tail -n +2 "$results/boots.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12}'
  echo
  echo "## Kernel command lines (from the guest's /proc/cmdline)"
  echo
  tail -n +2 "$results/boots.tsv" | awk -F'\t' '{printf "- s%s boot%s: `%s`\n", $1, $2, $13}'
  echo
  echo "## Stage transitions (guest uptime, lcactl get ibu -o wide)"
  for f in "$results"/s*-boot*.log; do
    echo
    echo "### $(basename "$f" .log)"
    echo '```'
    grep -a -E 'LCAVM (STAGE|CHECK|STEP|FINAL)' "$f" | sed 's/^\[ *\([0-9.]*\)\] /[\1] /' || true
    echo '```'
  done
  echo
  echo "## Phases (s)"
  echo
  awk -F'\t' '{printf "- %s: %s\n", $1, $2}' "$results/timings.tsv"
} >"$results/summary.md"
say "results: $results (summary.md, boots.tsv, serial logs)"

rc=0
for s in 1 2; do
  if [[ " $scenarios " == *" $s "* && "${verdicts[$s]}" != PASS ]]; then rc=1; fi
done
[[ " $scenarios " == *" 3 "* ]] && say "scenario 3 (hard failure, documented): ${verdicts[3]}"
exit $rc
