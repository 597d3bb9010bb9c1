#!/usr/bin/env bash
# The VM proof (issue 8): builds lca, a Debian bookworm ostree guest with lca installed and a
# 4.15.2 seed, then boots it under qemu (TCG, no KVM needed) with this machine acting as the
# bootloader, and runs the upgrade (scenario 1), the init monitor's auto-rollback (2) and a new
# release that never reaches userspace (3) across real reboots. Run as root on Debian 12:
#
#   bash scripts/vm-test.sh [--build DIR] [--results DIR] [--cache DIR] [--scenarios "1 2 3"]
#
# Exit 0 only when scenarios 1 and 2 pass. Results (serial logs, summary.md) in
# build-vm-results/vm-<time>/. How it works and timings: docs/vm.md.
set -euo pipefail
exec bash "$(dirname "$0")/../tests/vm/run.sh" "$@"
