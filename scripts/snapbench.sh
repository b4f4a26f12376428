#!/usr/bin/env bash
# snapbench, the chaos and latency harness (bench/Snapbench/README.md): installs what its scenarios start
# (redis-server, node and s3rver, fuse3, QEMU and the guest's build tools), builds everything, then runs
# snapbench with the arguments given.
#   scripts/snapbench.sh list
#   scripts/snapbench.sh run --scenario all --out DIR [--restores N] [--seed S] [--quick]
# SNAPBENCH_NO_BUILD=1 skips the build (already done).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_need ca-certificates openssl gcc make curl redis-server redis-tools fuse3 procps
# The guest scenario: QEMU and what guest/build.sh needs (as scripts/test.sh installs them).
apt_need qemu-system-x86 busybox-static cpio xz-utils binutils gzip python3
command -v node >/dev/null && command -v npm >/dev/null || apt_need nodejs npm
"$ROOT/scripts/services/s3rver.sh" install
[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ "${SNAPBENCH_NO_BUILD:-0}" = 1 ] || build_all
exec dotnet "$ROOT/bench/Snapbench/bin/Release/net10.0/snapbench.dll" "$@"
