#!/usr/bin/env bash
# The bootloader of the VM test: boots a raw ext4 ostree sysroot image once under qemu.
#
#   boot.sh IMG --step STEP --log FILE [--entry N] [--timeout SECONDS] [--work DIR]
#          [--expect-stateroot NAME] [--expect-end reboot|poweroff|no-userspace]
#
# Like a BLS bootloader it reads /boot/loader/entries/*.conf from the image (debugfs: no mount,
# no loop device), sorts them the way ostree numbers them (highest `version` first = the default
# deployment) and boots entry N (default 1, the first), with the entry's kernel, initramfs and
# options plus "console=ttyS0 lca.vmstep=STEP". qemu runs with -no-reboot, so a guest reboot or
# poweroff ends it; --timeout (default 300 s) kills a boot that hangs, as a hardware watchdog
# would. The serial console goes to FILE with host-side elapsed seconds on every line.
#
# Prints one result line (key=value fields, cmdline last) and exits 0 when the boot met the
# expectations: the guest's LCAVM BOOT marker names the expected stateroot, /proc/cmdline's
# ostree= path is in that stateroot, the step reported "done" with no failed CHECK, and the boot
# ended the expected way. no-userspace means the guest never printed its BOOT marker (a boot
# that fails in the kernel or initramfs) and is what a broken deployment is expected to do.
set -euo pipefail

prog=boot.sh
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 2
}

img="" step="" log="" entry_no=1 timeout=300 work="" expect_root="" expect_end=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --step | --log | --entry | --timeout | --work | --expect-stateroot | --expect-end)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      case "$1" in
        --step) step=$2 ;;
        --log) log=$2 ;;
        --entry) entry_no=$2 ;;
        --timeout) timeout=$2 ;;
        --work) work=$2 ;;
        --expect-stateroot) expect_root=$2 ;;
        --expect-end) expect_end=$2 ;;
      esac
      shift 2
      ;;
    -*) die "unknown option $1" ;;
    *)
      [[ -z "$img" ]] || die "one image only"
      img=$1
      shift
      ;;
  esac
done
[[ -n "$img" && -n "$step" && -n "$log" ]] || die "usage: $prog IMG --step STEP --log FILE [...]"
[[ -f "$img" ]] || die "no image $img"
work=${work:-$(dirname "$log")}
mkdir -p "$work"

dbg() { debugfs -R "$1" "$img" 2>/dev/null; }

# 1. The entries, default first.
mapfile -t names < <(dbg 'ls -p /boot/loader/entries' | awk -F/ '$6 ~ /\.conf$/ {print $6}')
[[ ${#names[@]} -gt 0 ]] || die "no BLS entries in $img:/boot/loader/entries"
sorted=()
for n in "${names[@]}"; do
  v=$(dbg "cat /boot/loader/entries/$n" | awk '$1 == "version" {print $2}')
  sorted+=("${v:-0} $n")
done
mapfile -t sorted < <(printf '%s\n' "${sorted[@]}" | sort -k1,1nr)
[[ "$entry_no" -ge 1 && "$entry_no" -le ${#sorted[@]} ]] ||
  die "entry $entry_no requested, the image has ${#sorted[@]}"
entry=${sorted[$((entry_no - 1))]#* }
conf=$(dbg "cat /boot/loader/entries/$entry")
linux=$(awk '$1 == "linux" {print $2}' <<<"$conf")
initrd=$(awk '$1 == "initrd" {print $2}' <<<"$conf")
options=$(sed -n 's/^options[[:space:]]\{1,\}//p' <<<"$conf")
[[ -n "$linux" && -n "$initrd" && -n "$options" ]] || die "entry $entry lacks linux/initrd/options"
rm -f "$work/vmlinuz" "$work/initrd"
dbg "dump /boot$linux $work/vmlinuz" >/dev/null
dbg "dump /boot$initrd $work/initrd" >/dev/null
[[ -s "$work/vmlinuz" && -s "$work/initrd" ]] || die "could not read /boot$linux or /boot$initrd"
append="$options console=ttyS0 lca.vmstep=$step"

# 2. Boot.
{
  echo "== boot.sh: $(date -u +%FT%TZ) entry $entry_no of ${#sorted[@]}: $entry"
  echo "== entries (default first): ${sorted[*]}"
  echo "== append: $append"
} >"$log"
start=$(date +%s.%N)
set +e
timeout -s KILL "$timeout" qemu-system-x86_64 -accel tcg -smp 2 -m 3072 -display none \
  -monitor none -serial stdio -no-reboot \
  -kernel "$work/vmlinuz" -initrd "$work/initrd" -append "$append" \
  -drive "file=$img,format=raw,if=virtio,cache=unsafe" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0 </dev/null 2>&1 |
  perl -MTime::HiRes=time -ne 'BEGIN { $| = 1; $s = time } s/\r//g; printf "[%8.2f] %s", time - $s, $_' \
    >>"$log"
rc=${PIPESTATUS[0]}
set -e
wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

# 3. What happened.
end=unknown
if [[ "$rc" -eq 137 ]]; then
  end=timeout
elif grep -q 'reboot: Restarting system' "$log"; then
  end=reboot
elif grep -q 'reboot: Power down' "$log"; then
  end=poweroff
elif grep -q 'Kernel panic' "$log"; then
  end=panic
fi
marker() { grep -a -m1 "LCAVM $1" "$log" | sed "s/.*LCAVM $1 \{0,1\}//" || true; }
boot_line=$(marker BOOT)
seen_root=$(sed -n 's/.*stateroot=\([^ ]*\).*/\1/p' <<<"$boot_line")
userspace=no
[[ -n "$boot_line" ]] && userspace=yes
guest_cmdline=$(marker CMDLINE)
step_result=none
grep -aq "LCAVM STEP $step done" "$log" && step_result=done
grep -aq "LCAVM STEP $step failed" "$log" && step_result=failed
fails=$(grep -a 'LCAVM CHECK .* FAIL' "$log" | sed 's/.*LCAVM CHECK //' | cut -c1-200 | tr '\n' ';' || true)
mu=$(marker MULTIUSER | sed 's/monotonic=//')
userspace_at=$(grep -a -m1 'LCAVM BOOT' "$log" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p' || true)

verdict=ok reason=""
fail() {
  verdict=FAIL
  reason="${reason:+$reason; }$*"
}
if [[ "$expect_end" == no-userspace ]]; then
  [[ "$userspace" == no ]] || fail "userspace came up in a boot expected to fail"
else
  [[ "$userspace" == yes ]] || fail "no LCAVM BOOT marker: userspace never ran the step"
  if [[ -n "$expect_root" ]]; then
    [[ "$seen_root" == "$expect_root" ]] || fail "booted stateroot '$seen_root', expected '$expect_root'"
    [[ "$guest_cmdline" == *"ostree=/ostree/boot."?"/$expect_root/"* ]] ||
      fail "/proc/cmdline has no ostree= path in $expect_root"
  fi
  [[ -z "$fails" ]] || fail "failed checks: $fails"
  if [[ "$expect_end" == reboot ]]; then
    # A pivot step ends by the agent's reboot; its verdict line comes only when it fails.
    [[ "$step_result" != failed ]] || fail "step $step failed"
  else
    [[ "$step_result" == done ]] || fail "step $step did not report done ($step_result)"
  fi
  [[ -z "$expect_end" || "$end" == "$expect_end" ]] || fail "ended by $end, expected $expect_end"
fi

printf 'entry=%s entry_no=%s step=%s stateroot=%s userspace=%s userspace_at=%s multiuser=%s end=%s step_result=%s wall=%s verdict=%s reason="%s" cmdline="%s"\n' \
  "$entry" "$entry_no" "$step" "${seen_root:--}" "$userspace" "${userspace_at:--}" "${mu:--}" "$end" \
  "$step_result" "$wall" "$verdict" "$reason" "${guest_cmdline:-$append}"
[[ "$verdict" == ok ]]
