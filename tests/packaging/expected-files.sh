# Sourced by the packaging checks: what an installed lifecycle-agent tree must hold (the
# layout of cmake/Install.cmake with --prefix /usr, which the rpm ships), and the check.
# check_tree ROOT prints one line per problem and returns nonzero when there is any.

# path<TAB>kind<TAB>mode ("-" = any mode)
lca_expected_files() {
  cat <<'EOF'
usr/bin/lifecycle-agent	exec	0755
usr/bin/lcactl	exec	0755
usr/lib/systemd/system/lifecycle-agent.service	file	0644
usr/lib/systemd/system/lca-init-monitor.service	file	0644
usr/lib/tmpfiles.d/lca.conf	file	0644
usr/libexec/lca/upgrade-recovery.sh	exec	0755
usr/share/bash-completion/completions/lcactl	file	0644
usr/share/zsh/site-functions/_lcactl	file	0644
usr/share/man/man1/lcactl.1	man	-
usr/share/man/man8/lifecycle-agent.8	man	-
usr/share/lca/manifests/00-crd.yaml	file	0644
usr/share/lca/manifests/10-rbac.yaml	file	0644
etc/lca/lifecycle-agent.yaml	file	0644
var/lib/lca	dir	0700
EOF
}

check_tree() {
  local root=$1 bad=0 path kind mode p actual
  while IFS=$'\t' read -r path kind mode; do
    p=$root/$path
    if [ "$kind" = man ]; then
      # rpm compresses man pages (brp-compress); cmake --install does not.
      for c in "$p" "$p.gz" "$p.xz" "$p.bz2" "$p.zst"; do
        if [ -f "$c" ]; then p=$c; break; fi
      done
    fi
    case "$kind" in
      exec) [ -f "$p" ] && [ -x "$p" ] || { echo "missing or not executable: /$path"; bad=1; continue; } ;;
      dir) [ -d "$p" ] || { echo "missing directory: /$path"; bad=1; continue; } ;;
      *) [ -f "$p" ] && [ -s "$p" ] || { echo "missing or empty: /$path"; bad=1; continue; } ;;
    esac
    if [ "$mode" != - ]; then
      actual=$(stat -c '%04a' "$p")
      if [ "$actual" != "$mode" ]; then
        echo "mode of /$path is $actual, want $mode"
        bad=1
      fi
    fi
  done < <(lca_expected_files)
  # The binaries run (a tree with a truncated or foreign binary would still pass the above).
  if [ -x "$root/usr/bin/lcactl" ] && ! "$root/usr/bin/lcactl" --version >/dev/null 2>&1; then
    echo "/usr/bin/lcactl --version fails"
    bad=1
  fi
  if [ -x "$root/usr/bin/lifecycle-agent" ] &&
    ! "$root/usr/bin/lifecycle-agent" --version >/dev/null 2>&1; then
    echo "/usr/bin/lifecycle-agent --version fails"
    bad=1
  fi
  # The completion is the one lcactl generates, and the units start the installed binaries.
  if [ -f "$root/usr/share/bash-completion/completions/lcactl" ] &&
    ! grep -q '^complete .*lcactl' "$root/usr/share/bash-completion/completions/lcactl"; then
    echo "/usr/share/bash-completion/completions/lcactl has no 'complete ... lcactl' line"
    bad=1
  fi
  if [ -f "$root/usr/share/zsh/site-functions/_lcactl" ] &&
    [ "$(head -n1 "$root/usr/share/zsh/site-functions/_lcactl")" != "#compdef lcactl" ]; then
    echo "/usr/share/zsh/site-functions/_lcactl does not start with '#compdef lcactl'"
    bad=1
  fi
  if ! grep -q 'exec /usr/bin/lifecycle-agent' "$root/usr/lib/systemd/system/lifecycle-agent.service" 2>/dev/null; then
    echo "lifecycle-agent.service does not start /usr/bin/lifecycle-agent"
    bad=1
  fi
  if ! grep -q 'exec /usr/bin/lcactl init-monitor --monitor' "$root/usr/lib/systemd/system/lca-init-monitor.service" 2>/dev/null; then
    echo "lca-init-monitor.service does not start /usr/bin/lcactl init-monitor --monitor"
    bad=1
  fi
  # The manifests lcactl prints are the installed ones, "---" between files.
  if [ -x "$root/usr/bin/lcactl" ] && [ -d "$root/usr/share/lca/manifests" ]; then
    local joined="" f
    for f in "$root"/usr/share/lca/manifests/*.yaml; do
      [ -z "$joined" ] || joined+=$'---\n'
      joined+=$(cat "$f")$'\n'
    done
    if [ "$("$root/usr/bin/lcactl" manifests)" != "${joined%$'\n'}" ]; then
      echo "lcactl manifests differs from /usr/share/lca/manifests/*.yaml"
      bad=1
    fi
  fi
  return $bad
}
