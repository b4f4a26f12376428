#!/usr/bin/env bash
# Runs every test (unit and integration) and prints the totals as one line: "N passed, N failed".
# Installs what the tests need, idempotently. Exit status 0 only when tests ran and none failed.
#   --fast   only the unit tests (Category=unit: in-process, no child processes, no services), under a minute;
#            installs no services. Other arguments go to `dotnet test`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fast=0
args=()
for a in "$@"; do
  if [ "$a" = "--fast" ]; then fast=1; else args+=("$a"); fi
done
apt_need ca-certificates openssl gcc make curl
if [ "$fast" -eq 1 ]; then
  args+=(--filter "Category=unit")
else
  # The integration tests start their own s3rver and Redis Cluster (scripts/services/*.sh) on loopback.
  apt_need redis-server redis-tools
  command -v node >/dev/null && command -v npm >/dev/null || apt_need nodejs npm
  "$ROOT/scripts/services/s3rver.sh" install
  # The real-guest test (guest/real-guest-test.sh): QEMU, the guest build's tools (guest/build.sh downloads the
  # guest's own .debs with apt-get download), FUSE for ChunkFs, pgrep.
  apt_need qemu-system-x86 busybox-static cpio xz-utils binutils gzip python3 fuse3 procps
  [ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
fi
build_all
R="$ROOT/.work/test-results"; rm -rf "$R"; mkdir -p "$R"
say "running tests$([ "$fast" -eq 1 ] && echo ' (unit only)')"
set +e
dotnet test "$ROOT/tests/Snapshots.Tests/Snapshots.Tests.csproj" -c Release --no-build -nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" --results-directory "$R" \
  ${args[@]+"${args[@]}"}
rc=$?
set -e
counters=$(grep -o '<Counters [^>]*>' "$R/results.trx" 2>/dev/null || true)
attr() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
passed=$(attr passed); failed=$(( $(attr failed) + $(attr error) + $(attr timeout) ))
[ -n "$counters" ] || { echo "no test results were written"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]
