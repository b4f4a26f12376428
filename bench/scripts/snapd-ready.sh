#!/usr/bin/env bash
# Time from an API call to a handler ready (socket listening) in snapd, against a `snapctl restore` process per VM
# (process start to socket listening), on one store of a 256 MiB function snapshot, side by side in one run.
# Usage: bench/scripts/snapd-ready.sh [CALLS] [PROCESSES]   (after ./scripts/setup.sh)
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
CALLS=${1:-300} PROCS=${2:-10}
D="$ROOT/.work/bench-snapd-ready"; rm -rf "$D"; mkdir -p "$D"
export SNAPSHOTS_STORE="file://$D/store" SNAPSHOTS_KEYRING="$D/keyring"
S="$ROOT/bin/snapctl"
"$S" init --quiet >/dev/null
"$S" gen-image --out "$D/os.img" --size 256M --quiet >/dev/null
"$S" gen-image --out "$D/fn.img" --size 256M --runtime-seed 1 --function-seed 1 --quiet >/dev/null
"$S" build --name os --layer os --memory "$D/os.img" --quiet >/dev/null
"$S" build --name fn --parent os --holes-are-zero --tenant acme --memory "$D/fn.img" --quiet >/dev/null

"$ROOT/bin/snapd" --state-dir "$D/state" --api-socket "$D/state/api.sock" --cache-dir "$D/cache" \
  > "$D/snapd.log" 2>&1 &
snapd=$!
trap 'kill -TERM $snapd 2>/dev/null; wait $snapd 2>/dev/null' EXIT
API="$D/state/api.sock"
for _ in $(seq 300); do curl -sf --unix-socket "$API" http://snapd/v1/health >/dev/null && break; sleep 0.1; done

say "snapd: $CALLS creates (POST /v1/restores, then DELETE), client-side time_total and the daemon's readySeconds"
: > "$D/api.txt"; : > "$D/ready.txt"
for i in $(seq "$CALLS"); do
  out=$(curl -s --unix-socket "$API" -w '\n%{time_total}' -XPOST http://snapd/v1/restores \
        -d '{"snapshot":"fn","tenant":"acme"}')
  body=${out%$'\n'*}
  echo "${out##*$'\n'}" >> "$D/api.txt"
  sed -n 's/.*"readySeconds":\([0-9.eE-]*\).*/\1/p' <<< "$body" >> "$D/ready.txt"
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<< "$body")
  curl -s --unix-socket "$API" -XDELETE "http://snapd/v1/restores/$id" >/dev/null
done

say "snapctl restore: $PROCS processes, start to socket listening"
: > "$D/proc.txt"
for i in $(seq "$PROCS"); do
  sock="$D/p$i.sock"
  t0=$(date +%s.%N)
  "$S" restore --name fn --tenant acme --uffd-socket "$sock" --cache-dir "$D/cache" --accept-timeout 1 \
    >/dev/null 2>&1 &
  p=$!
  while [ ! -S "$sock" ]; do sleep 0.001; done
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l >> "$D/proc.txt"
  wait $p 2>/dev/null || true   # no VMM comes: it exits 1 after its accept timeout
done

stats() { sort -g "$1" | awk '{a[NR]=$1}
  function q(p,  i) { i = int(NR*p) + 1; if (i > NR) i = NR; return 1000*a[i] }
  END { printf "n=%d p50=%.2f ms p90=%.2f ms p99=%.2f ms max=%.2f ms\n", NR, q(0.5), q(0.9), q(0.99), 1000*a[NR] }'; }
echo "snapd API call (client, time_total):   $(stats "$D/api.txt")"
echo "snapd readySeconds (daemon side):      $(stats "$D/ready.txt")"
echo "snapctl restore process to listening:  $(stats "$D/proc.txt")"
