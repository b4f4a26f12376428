#!/usr/bin/env bash
# The userfaultfd loader, measured against the machine's floor and ceiling in one run (issue 4):
#  1. per-fault service latency with the chunk already in memory: `snapctl restore --preload` vs the minimal C
#     handler inside replay-vmm (4 KiB UFFDIO_COPY per fault from memory), both as the VMM sees it;
#  2. restore-to-complete of a recorded-shaped trace: fully resident (ceiling) vs minimal C handler from memory
#     (naive peer) vs ours without prefetch vs ours with a merged plan attached, from a warm local disk cache.
# Usage: bench/scripts/uffd-restore.sh [REPS]   (writes bench/results/uffd-restore.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
apt_need jq gcc make
publish_snapctl
make -s -C "$ROOT/native"
VMM="$ROOT/native/bin/replay-vmm"
make_workdir uffd
export SNAPSHOTS_STORE="$WORK/store" SNAPSHOTS_KEYRING="$WORK/keys"
S="$SNAPCTL"

say "part 1: per-fault latency, chunks in memory (256 MiB of random data, 20,000 random pages)"
# This machine is itself a VM: waking a thread on the other vCPU costs ~40 us (the idle vCPU must be woken by
# the host), far more than the fault. So each handler runs twice: all on one CPU (taskset -c 0: the fault path
# itself) and free to spread over both (what the scheduler does by itself).
head -c 256M /dev/urandom > "$WORK/rand.img"
"$S" init > /dev/null
"$S" build --name rand --layer os --memory "$WORK/rand.img" > /dev/null
for r in $(seq "$REPS"); do
  for cpus in 0 0,1; do
    taskset -c "$cpus" "$VMM" --image "$WORK/rand.img" --mode minimal --touch "random:20000:$r" > "$WORK/min.$cpus.$r"
    sock="$WORK/ext.$RANDOM.sock"
    taskset -c "$cpus" "$ROOT/native/bin/minimal-handler" "$WORK/rand.img" "$sock" & ext=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.02; done
    taskset -c "$cpus" "$VMM" --image "$WORK/rand.img" --socket "$sock" --touch "random:20000:$r" > "$WORK/ext.$cpus.$r"
    wait "$ext"
    RESTORE_CPUS=$cpus restore_run "$WORK/our.$cpus.$r" --name rand --preload --no-prefetch --fault-around 1 -- --image "$WORK/rand.img" --touch "random:20000:$r"
    jq -e '.bad == 0' "$WORK/min.$cpus.$r" "$WORK/ext.$cpus.$r" "$WORK/our.$cpus.$r.v" > /dev/null
  done
done
lat() { for r in $(seq "$REPS"); do jq "$2" "$WORK/$1.$r"; done | median; }

say "part 2: restore-to-complete, 512 MiB VM-like function snapshot (os -> runtime -> function), warm disk cache"
warm_function_stack 512M
for v in 1 2 3 9; do
  "$S" log synth --image "$WORK/fn.img" --pages "$PAGES" --seed 7 --variant "$v" --gap-us "$GAP" --out "$WORK/s$v.log" --trace "$WORK/t$v.txt" > /dev/null
done
for v in 1 2 3; do   # record three restores of different invocations, as production would
  restore_run "$WORK/rec$v" --name fn --tenant bench --no-prefetch --record "$WORK/rec$v.log" "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t$v.txt"
done
"$S" log merge --json --out "$WORK/plan.bin" "$WORK"/rec{1,2,3}.log > "$WORK/merge.json"
"$S" log attach --name fn --tenant bench "$WORK/plan.bin" "${CACHE[@]}" > /dev/null
"$S" inspect --name fn.pack --json | jq '.chain[0]' > "$WORK/pack.json"
"$S" log show --json "$WORK/plan.bin" > "$WORK/plan-show.json"
plan_pages=$(jq .pages "$WORK/merge.json")

table=""; where=""
for gapmode in gaps no-gaps; do
  extra=(); [ "$gapmode" = no-gaps ] && extra=(--no-gaps)
  for r in $(seq "$REPS"); do
    "$VMM" --image "$WORK/fn.img" --mode resident --trace "$WORK/t9.txt" "${extra[@]}" > "$WORK/res.$gapmode.$r"
    "$VMM" --image "$WORK/fn.img" --mode minimal --trace "$WORK/t9.txt" "${extra[@]}" > "$WORK/nai.$gapmode.$r"
    restore_run "$WORK/n1.$gapmode.$r" --name fn --tenant bench --no-prefetch --fault-around 1 "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt" "${extra[@]}"
    restore_run "$WORK/np.$gapmode.$r" --name fn --tenant bench --no-prefetch "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt" "${extra[@]}"
    restore_run "$WORK/pf.$gapmode.$r" --name fn --tenant bench --prefetch "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt" "${extra[@]}"
    jq -e '.bad == 0' "$WORK/res.$gapmode.$r" "$WORK/nai.$gapmode.$r" "$WORK/np.$gapmode.$r.v" "$WORK/pf.$gapmode.$r.v" > /dev/null
  done
  med() { for r in $(seq "$REPS"); do jq "$2" "$WORK/$1.$r$3"; done | median; }
  res=$(med "res.$gapmode" .elapsedUs ""); nai=$(med "nai.$gapmode" .elapsedUs "")
  np=$(med "np.$gapmode" .elapsedUs .v); pf=$(med "pf.$gapmode" .elapsedUs .v); n1=$(med "n1.$gapmode" .elapsedUs .v)
  n1f=$(med "n1.$gapmode" .faults .h)
  npf=$(med "np.$gapmode" .faults .h); pff=$(med "pf.$gapmode" .faults .h); pfp=$(med "pf.$gapmode" .prefetchedPages .h)
  pfsvc=$(med "pf.$gapmode" ".faultServiceSeconds * 1e3" .h); pfpark=$(med "pf.$gapmode" .parkedFaults .h)
  pfrun=$(med "pf.$gapmode" ".handlerRunDelaySeconds * 1e3" .h)
  floor=$(lat "min.0,1" .p50Us)
  where+=$(awk -v g="$gapmode" -v res="$res" -v pf="$pf" -v svc="$pfsvc" -v park="$pfpark" -v f="$pff" -v fl="$floor" -v run="$pfrun" 'BEGIN {
    over = (pf - res) / 1000; rt = f * fl / 1000
    printf "- %s: prefetch takes %.1f ms more than resident. The VMM waited %.1f ms in the handler'"'"'s service of its %d faults, most of it in %d parked faults whose chunk was loaded on demand (pages this invocation touched that the plan, merged from other invocations, did not hold); the kernel'"'"'s round trip of those faults costs ~%.1f ms more (%d x %.0f us, the C floor per fault with both CPUs, part 1); the remaining %.1f ms is the vCPU sharing 2 cores with the handler'"'"'s installs and loads (the handler thread waited %.1f ms for a CPU).\n", g, over, svc, f, park, rt, f, fl, over - svc - rt, run }')$'\n'
  table+=$(awk -v g="$gapmode" -v res="$res" -v nai="$nai" -v np="$np" -v pf="$pf" -v n1="$n1" -v n1f="$n1f" -v npf="$npf" -v pff="$pff" -v pfp="$pfp" 'BEGIN {
    printf "| %s | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %.1f (%.2fx) | %.1f (%.2fx) | %.2fx / %.2fx | %d / %d -> %d (%.1f %% / %.1f %% avoided), %d prefetched |\n",
      g, res/1000, nai/1000, nai/res, n1/1000, n1/res, np/1000, np/res, pf/1000, pf/res, n1/pf, np/pf, n1f, npf, pff, 100*(1-pff/n1f), 100*(1-pff/npf), pfp }')$'\n'
done

{
  echo "# userfaultfd loader: per-fault latency and restore-to-complete"
  echo
  echo "Command: \`bench/scripts/uffd-restore.sh $REPS\` (medians of $REPS alternating repetitions; PAGES=$PAGES GAP=$GAP)"
  machine_md
  echo
  echo "## Per-fault latency, chunk already in memory (as the VMM sees it: first touch of a page to its return)"
  echo
  echo "20,000 random pages of a 256 MiB random-data snapshot, every one a fault served by a 4 KiB UFFDIO_COPY."
  echo "\`taskset -c 0\`: VMM and handler share one CPU (the fault path alone); \`0,1\`: the scheduler spreads them,"
  echo "and every cross-CPU wake-up costs ~40 us on this VM. Handler service time = message read to page installed."
  echo
  echo "| handler | CPUs | p50 us | p99 us | ratio to floor at p50 |"
  echo "|---|---|---|---|---|"
  for cpus in 0 0,1; do
    floor=$(lat "min.$cpus" .p50Us)
    for h in "min:minimal C handler thread in replay-vmm (the floor)" "ext:minimal C handler process (minimal-handler)" "our:ours, \`snapctl restore --preload --no-prefetch --fault-around 1\`"; do
      key=${h%%:*}; label=${h#*:}; suffix=""; [ "$key" = our ] && suffix=".v"
      p50=$(for r in $(seq "$REPS"); do jq .p50Us "$WORK/$key.$cpus.$r$suffix"; done | median)
      p99=$(for r in $(seq "$REPS"); do jq .p99Us "$WORK/$key.$cpus.$r$suffix"; done | median)
      awk -v l="$label" -v c="$cpus" -v a="$p50" -v b="$p99" -v f="$floor" 'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2fx |\n", l, c, a, b, a/f }'
    done
  done
  echo
  svc=$(for r in $(seq "$REPS"); do jq ".faultLatencySeconds.p50 * 1e6" "$WORK/our.0.$r.h"; done | median)
  echo "Our handler's own service time per fault, p50 (one CPU): $svc us. Target (issue 4): p50 at most 1.3x the C floor."
  echo
  echo "## Restore-to-complete of a trace ($PAGES first touches; 512 MiB function snapshot over runtime and OS layers)"
  echo
  echo "Trace: \`snapctl log synth --seed 7 --variant 9 --gap-us $GAP\` (short runs of 1-4 pages, 90 % data and 10 % zero pages);"
  echo "the plan was merged from three recorded restores of variants 1-3 (\`restore --record\`, \`log merge\`, \`log attach\`): $plan_pages pages,"
  echo "attached with its working-set pack (the planned pages back to back): prefetch reads $(jq .dataEntries "$WORK/pack.json") pack chunks instead of the $(jq .spannedChunks "$WORK/plan-show.json") snapshot chunks those pages span."
  echo "\"gaps\" replays the recorded busy time between touches ($GAP us each: the function computing); \"no-gaps\" touches back to back (the worst case for a loader)."
  echo "Times in ms; ratios against fully resident. Ours read chunks from a warm local disk cache (verify + decrypt per chunk)."
  echo
  echo "Ours without prefetch is shown twice: one page per fault (\`--fault-around 1\`, Firecracker's way) and with the default"
  echo "fault-around of 4 pages; ratios and faults avoided are given against both."
  echo
  echo "| trace | resident (ceiling) | minimal C from memory (naive peer) | ours, no prefetch, 1 page per fault | ours, no prefetch | ours, prefetch | no-prefetch / prefetch (1 page / default) | demand faults (1 page / default -> prefetch) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "$table"
  echo
  echo "Targets (issue 4): prefetch from the local cache within 1.2x of resident; at least 3x faster than ours without prefetch; at least 90 % of faults avoided."
  echo
  echo "Where the time with prefetch goes (medians):"
  echo
  printf '%s' "$where"
} > "$RESULTS/uffd-restore.md"
cat "$RESULTS/uffd-restore.md"
