#!/usr/bin/env bash
# Restore-to-complete through the distributed tiers (issue 4's last benchmark row): the same function snapshot
# and trace as uffd-restore.sh, its origin in s3rver, served with and without prefetch from a warm Redis Cluster
# (cold local cache) and from s3rver alone (no cache). Starts and stops its own s3rver (port 4650) and 5-master
# Redis Cluster (ports 7150-7154), by pid.
# Usage: bench/scripts/uffd-restore-tiers.sh [REPS]   (writes bench/results/uffd-restore-tiers.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
apt_need jq gcc make redis-server redis-tools
publish_snapctl
make -s -C "$ROOT/native"
VMM="$ROOT/native/bin/replay-vmm"
make_workdir uffdtiers
export S3_PORT=4650 S3_STATE="$WORK/s3rver" REDIS_BASE_PORT=7150 REDIS_MASTERS=5 REDIS_STATE="$WORK/redis"
stop_services() { "$ROOT/scripts/services/s3rver.sh" stop >/dev/null 2>&1 || true; "$ROOT/scripts/services/redis-cluster.sh" stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap stop_services EXIT
"$ROOT/scripts/services/s3rver.sh" start > /dev/null
"$ROOT/scripts/services/redis-cluster.sh" start > /dev/null
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_EC2_METADATA_DISABLED=true
export SNAPSHOTS_STORE="s3://bench/snap?endpoint=http://127.0.0.1:$S3_PORT" SNAPSHOTS_KEYRING="$WORK/keys"
REDIS="redis://$(seq -s, -f "127.0.0.1:%g" 7150 7154)"
S="$SNAPCTL"

say "building os -> runtime -> function (512 MiB each) into s3rver"
build_function_stack 512M
PAGES=${PAGES:-6000}; GAP=${GAP:-20}
for v in 1 2 3 9; do
  "$S" log synth --image "$WORK/fn.img" --pages "$PAGES" --seed 7 --variant "$v" --gap-us "$GAP" --out "$WORK/s$v.log" --trace "$WORK/t$v.txt" > /dev/null
done
for v in 1 2 3; do
  restore_run "$WORK/rec$v" --name fn --tenant bench --no-prefetch --record "$WORK/rec$v.log" --distributed "$REDIS" -- --image "$WORK/fn.img" --trace "$WORK/t$v.txt"
done
"$S" log merge --out "$WORK/plan.bin" "$WORK"/rec{1,2,3}.log > /dev/null
"$S" log attach --name fn --tenant bench --distributed "$REDIS" "$WORK/plan.bin" > /dev/null
say "warming Redis with every chunk of fn and its pack"
"$S" warm --name fn --cache-dir "$WORK/warm1" --distributed "$REDIS" > /dev/null
"$S" warm --name fn.pack --cache-dir "$WORK/warm2" --distributed "$REDIS" > /dev/null
rm -rf "$WORK/warm1" "$WORK/warm2"

rows=""
for tier in redis s3; do
  targs=(); [ "$tier" = redis ] && targs=(--distributed "$REDIS")
  for r in $(seq "$REPS"); do
    restore_run "$WORK/np.$tier.$r" --name fn --tenant bench --no-prefetch "${targs[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt"
    restore_run "$WORK/pf.$tier.$r" --name fn --tenant bench --prefetch "${targs[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt"
    jq -e '.bad == 0' "$WORK/np.$tier.$r.v" "$WORK/pf.$tier.$r.v" > /dev/null
  done
  med() { for r in $(seq "$REPS"); do jq "$2" "$WORK/$1.$r$3"; done | median; }
  np=$(med "np.$tier" .elapsedUs .v); pf=$(med "pf.$tier" .elapsedUs .v)
  npf=$(med "np.$tier" .faults .h); pff=$(med "pf.$tier" .faults .h)
  hits=$(jq -r '[.tiers[] | "\(.tier | split(" ")[0]): \(.hits)"] | join(", ")' "$WORK/pf.$tier.1.h")
  rows+=$(awk -v t="$tier" -v np="$np" -v pf="$pf" -v npf="$npf" -v pff="$pff" -v h="$hits" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.2fx | %d -> %d (%.1f %% avoided) | %s |\n", t, np/1000, pf/1000, np/pf, npf, pff, 100*(1-pff/npf), h }')$'\n'
done
for r in $(seq "$REPS"); do "$VMM" --image "$WORK/fn.img" --mode resident --trace "$WORK/t9.txt" > "$WORK/res.$r"; done
res=$(for r in $(seq "$REPS"); do jq .elapsedUs "$WORK/res.$r"; done | median)

{
  echo "# userfaultfd loader through the distributed tiers: restore-to-complete"
  echo
  echo "Command: \`bench/scripts/uffd-restore-tiers.sh $REPS\` (medians of $REPS; PAGES=$PAGES GAP=$GAP)"
  machine_md
  echo
  echo "Same snapshot shape and trace as uffd-restore.md (512 MiB function layer over runtime and OS, $PAGES-page trace"
  echo "with $GAP us of busy time per touch, plan merged from three recorded restores, attached with its working-set pack)."
  echo "Origin: s3rver on loopback; distributed cache: 5-master Redis Cluster on loopback (striped 4+1), warmed with"
  echo "every chunk; no local disk cache in either row. Fully resident replay of the same trace: $(awk -v r="$res" 'BEGIN { printf "%.1f", r/1000 }') ms."
  echo
  echo "| tier serving the restore | ours, no prefetch (ms) | ours, prefetch (ms) | no-prefetch / prefetch | demand faults | hits per tier with prefetch (run 1) |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$rows"
} > "$RESULTS/uffd-restore-tiers.md"
cat "$RESULTS/uffd-restore-tiers.md"
