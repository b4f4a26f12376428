#!/usr/bin/env bash
# Demand faults under prefetch load (issue 8): a restore from s3rver whose VM touches its pages in the REVERSE of
# the plan's order, so every demand fault wants a chunk the prefetcher has not reached and competes with it at
# the origin's slots. Worst and p99 demand-fault service time at --prefetch-concurrency 1, 8 and 64 against no
# prefetch, in one run. Starts and stops its own s3rver (port 4651), by pid.
# Usage: bench/scripts/uffd-demand-under-prefetch.sh [REPS]   (writes bench/results/uffd-demand-under-prefetch.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
SIZE=${SIZE:-256M}
apt_need jq gcc make
publish_snapctl
make -s -C "$ROOT/native"
make_workdir demandpf
export S3_PORT=4651 S3_STATE="$WORK/s3rver"
stop_services() { "$ROOT/scripts/services/s3rver.sh" stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap stop_services EXIT
"$ROOT/scripts/services/s3rver.sh" start > /dev/null
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_EC2_METADATA_DISABLED=true
export SNAPSHOTS_STORE="s3://bench/snap?endpoint=http://127.0.0.1:$S3_PORT" SNAPSHOTS_KEYRING="$WORK/keys"
S="$SNAPCTL"

say "building os -> runtime -> function ($SIZE each) into s3rver"
build_function_stack "$SIZE"
PAGES=${PAGES:-6000}; GAP=${GAP:-20}
for v in 1 2 3 9; do
  "$S" log synth --image "$WORK/fn.img" --pages "$PAGES" --seed 7 --variant "$v" --gap-us "$GAP" \
    --out "$WORK/s$v.log" --trace "$WORK/t$v.txt" > /dev/null
done
"$S" log merge --out "$WORK/plan.bin" "$WORK"/s{1,2,3}.log --json > /dev/null
"$S" log attach --name fn --tenant bench --no-pack "$WORK/plan.bin" > /dev/null
# The VM touches the plan's pages last-first: demand and prefetch want different chunks all the way.
{ head -1 "$WORK/t9.txt"; tail -n +2 "$WORK/t9.txt" | tac; } > "$WORK/reverse.txt"

runs=(none 1 8 64)
for r in $(seq "$REPS"); do
  for c in "${runs[@]}"; do
    say "rep $r, prefetch concurrency $c"
    if [ "$c" = none ]; then pargs=(--no-prefetch); else pargs=(--prefetch --prefetch-concurrency "$c"); fi
    restore_run "$WORK/r.$c.$r" --name fn --tenant bench "${pargs[@]}" -- --image "$WORK/fn.img" --trace "$WORK/reverse.txt"
    jq -e '.bad == 0' "$WORK/r.$c.$r.v" > /dev/null
  done
done
med() { for r in $(seq "$REPS"); do jq "$2" "$WORK/r.$1.$r.h"; done | median; }
{
  echo "# userfaultfd loader: demand faults under prefetch load, from s3rver"
  echo
  echo "Command: \`bench/scripts/uffd-demand-under-prefetch.sh $REPS\` (medians of $REPS alternating repetitions;"
  echo "SIZE=$SIZE PAGES=$PAGES GAP=$GAP)"
  machine_md
  echo
  echo "A $SIZE function snapshot (over runtime and OS layers) in s3rver on loopback, no cache tier. Its plan is"
  echo "merged from synthetic logs of variants 1-3 and attached without a pack, so prefetch reads snapshot chunks"
  echo "from the origin. The VM replays variant 9 in the reverse order: each demand fault wants a chunk the"
  echo "prefetcher has not reached. Demand-fault service time is the handler's (message read to page installed,"
  echo "including any wait for the chunk), from \`restore\`'s JSON."
  echo
  echo "| prefetch concurrency | demand faults | fault p50 us | fault p99 us | worst fault ms | worst / no prefetch | restore ms |"
  echo "|---|---|---|---|---|---|---|"
  base=$(med none ".faultLatencySeconds.max * 1e6")
  for c in "${runs[@]}"; do
    label=$c; [ "$c" = none ] && label="no prefetch"
    awk -v l="$label" -v f="$(med "$c" .faults)" -v p50="$(med "$c" ".faultLatencySeconds.p50 * 1e6")" -v p99="$(med "$c" ".faultLatencySeconds.p99 * 1e6")" \
        -v mx="$(med "$c" ".faultLatencySeconds.max * 1e6")" -v b="$base" -v s="$(med "$c" .seconds)" \
      'BEGIN { printf "| %s | %d | %.0f | %.0f | %.1f | %.2fx | %.0f |\n", l, f, p50, p99, mx/1000, mx/b, s*1000 }'
  done
  echo
  echo "Target (issue 8): the worst demand-fault wait with prefetch within 1.5x of no prefetch."
} > "$RESULTS/uffd-demand-under-prefetch.md"
cat "$RESULTS/uffd-demand-under-prefetch.md"
