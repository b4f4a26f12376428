#!/usr/bin/env bash
# snapbench, the chaos and latency harness (bench/Snapbench/README.md): installs what its scenarios start
# (redis-server, node and s3rver, fuse3), builds everything, then runs snapbench with the arguments given.
#   scripts/snapbench.sh list
#   scripts/snapbench.sh run --scenario all --out DIR [--restores N] [--seed S] [--quick]
# SNAPBENCH_NO_BUILD=1 skips the build (already done).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_need ca-certificates openssl gcc make curl redis-server redis-tools fuse3 procps
command -v node >/dev/null && command -v npm >/dev/null || apt_need nodejs npm
"$ROOT/scripts/services/s3rver.sh" install
[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ "${SNAPBENCH_NO_BUILD:-0}" = 1 ] || build_all
exec dotnet "$ROOT/bench/Snapbench/bin/Release/net10.0/snapbench.dll" "$@"
