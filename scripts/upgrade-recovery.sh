#!/usr/bin/env bash
# upgrade-recovery.sh: TALM's pre-upgrade backup and recovery tool, same options, usage and
# messages, as a thin wrapper over `lcactl recovery backup|restore` (which does the work: see
# recovery/README.md). A backup copies this script into the backup directory, so the documented
# `/var/recovery/upgrade-recovery.sh` and `/var/recovery/upgrade-recovery.sh --resume` work.
#
# Environment: LCACTL (default: lcactl in PATH), LCA_RECOVERY_CONFIG (settings file, default
# /etc/lca/recovery.json when it exists: host root, injected commands, etcd endpoints and TLS).
set -euo pipefail

prog=$0
LCACTL=${LCACTL:-lcactl}

usage() {
  cat <<EOF
Usage: ${prog} [--dir <dir>] [--take-backup] [--force] [--step] [--resume] [--restart]
Options:
    --dir <dir>:   Location of backup content (default /var/recovery)
    --take-backup: Take backup
    --force:       Skip ostree deployment check
    --step:        Step through recovery stages
    --resume:      Resume recovery after last successful stage
    --restart:     Restart recovery from first stage
EOF
  exit 1
}

if ! opts=$(getopt -o h --long dir:,force,restart,resume,step,take-backup --name "$prog" -- "$@"); then
  usage
fi
eval set -- "$opts"

dir=/var/recovery
take_backup=no
restore_args=()
while :; do
  case "$1" in
    --dir)
      dir=$2
      shift 2
      ;;
    --take-backup)
      take_backup=yes
      shift
      ;;
    --force | --step | --resume | --restart)
      restore_args+=("$1")
      shift
      ;;
    -h) usage ;;
    --)
      shift
      break
      ;;
    *) usage ;;
  esac
done

# Messages that say "run '<prog> --resume'" name this script, as TALM's do.
export LCA_RECOVERY_PROGRAM=$prog

if [ "$take_backup" = yes ]; then
  exec "$LCACTL" recovery backup --dir "$dir"
fi
exec "$LCACTL" recovery restore --dir "$dir" "${restore_args[@]}"
