#!/usr/bin/env bash
# The demand path's own cost (issue 8): a restore without prefetch from a warm local disk cache against the same
# restore with every chunk preloaded, and where a chunk load's time goes. Each chunk load decrypts 512 KiB into a
# buffer: fresh memory costs one page fault per 4 KiB page, so the loader keeps populated buffers ready
# (--buffer-reserve; 0 shows the cost without). Page faults are counted by `perf stat` on the handler process.
# Usage: bench/scripts/uffd-demand-cost.sh [REPS]   (writes bench/results/uffd-demand-cost.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-5}
apt_need jq gcc make linux-perf
publish_snapctl
make -s -C "$ROOT/native"
make_workdir demand-cost
export SNAPSHOTS_STORE="$WORK/store" SNAPSHOTS_KEYRING="$WORK/keys"
S="$SNAPCTL"

say "512 MiB VM-like function snapshot (os -> runtime -> function), warm disk cache"
warm_function_stack 512M
"$S" log synth --image "$WORK/fn.img" --pages "$PAGES" --seed 7 --variant 9 --gap-us "$GAP" --out "$WORK/s9.log" --trace "$WORK/t9.txt" > /dev/null

variants=("pre:preloaded (\`--preload\`)" "cold:no prefetch, \`--buffer-reserve 0\` (fresh buffers)" "warm:no prefetch, default \`--buffer-reserve\` (populated buffers)")
for r in $(seq "$REPS"); do
  say "repetition $r of $REPS"
  RESTORE_PERF=1 restore_run "$WORK/pre.$r" --name fn --tenant bench --no-prefetch --preload "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt"
  RESTORE_PERF=1 restore_run "$WORK/cold.$r" --name fn --tenant bench --no-prefetch --buffer-reserve 0 "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt"
  RESTORE_PERF=1 restore_run "$WORK/warm.$r" --name fn --tenant bench --no-prefetch "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$WORK/t9.txt"
  jq -e '.bad == 0' "$WORK"/{pre,cold,warm}.$r.v > /dev/null
done
med() { for r in $(seq "$REPS"); do eval "$2" < "$WORK/$1.$r$3"; done | median; }
pf() { awk -F, '$3 == "page-faults" { print $1 }'; }
tc() { awk -F, '$3 == "task-clock" { print $1 }'; }
pre=$(med pre "jq .elapsedUs" .v)

{
  echo "# userfaultfd loader: the demand path's own cost"
  echo
  echo "Command: \`bench/scripts/uffd-demand-cost.sh $REPS\` (medians of $REPS alternating repetitions; PAGES=$PAGES GAP=$GAP)"
  machine_md
  echo
  echo "A 512 MiB VM-like function snapshot (os -> runtime -> function layers), the trace of"
  echo "\`snapctl log synth --seed 7 --variant 9 --gap-us $GAP\` ($PAGES first touches, $GAP us of work between them), replayed by"
  echo "replay-vmm against \`snapctl restore --no-prefetch\` reading chunks from a warm local disk cache (every chunk verified"
  echo "and decrypted when loaded). Elapsed = the VMM's replay, first touch to last. Page faults and task clock:"
  echo "\`perf stat -x, -e page-faults,task-clock\` of the whole handler process (start-up included)."
  echo
  echo "| handler | elapsed ms | ratio to preloaded | chunk loads during the replay | handler page faults | handler task clock ms | chunk load p50 us | of which disk cache read p50 us | of which verify + decrypt p50 us |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for v in "${variants[@]}"; do
    key=${v%%:*}; label=${v#*:}
    el=$(med "$key" "jq .elapsedUs" .v); loads=$(med "$key" "jq .chunksLoaded" .h)
    [ "$key" = pre ] && loads=0
    faults=$(med "$key" pf .perf); clock=$(med "$key" tc .perf)
    load=$(med "$key" "jq '.chunkLoadLatencySeconds.p50 * 1e6'" .h); disk=$(med "$key" "jq '.tiers[0].latencySeconds.p50 * 1e6'" .h)
    dec=$(med "$key" "jq '.chunkDecryptLatencySeconds.p50 * 1e6'" .h)
    awk -v l="$label" -v e="$el" -v p="$pre" -v n="$loads" -v f="$faults" -v c="$clock" -v a="$load" -v d="$disk" -v x="$dec" \
      'BEGIN { printf "| %s | %.1f | %.2fx | %d | %d | %.0f | %.0f | %.0f | %.0f |\n", l, e/1000, e/p, n, f, c, a, d, x }'
  done
  echo
  cold_f=$(med cold pf .perf); warm_f=$(med warm pf .perf); loads=$(med warm "jq .chunksLoaded" .h)
  awk -v a="$cold_f" -v b="$warm_f" -v n="$loads" 'BEGIN { printf "Page faults avoided per chunk load by populated buffers: %.0f ((%d - %d) / %d; a chunk is 128 pages).\n", (a-b)/n, a, b, n }'
  warm_el=$(med warm "jq .elapsedUs" .v); warm_load=$(med warm "jq '.chunkLoadLatencySeconds.p50 * 1e6'" .h)
  awk -v w="$warm_el" -v p="$pre" -v n="$loads" -v l="$warm_load" 'BEGIN { printf "Where the time goes: with populated buffers the replay takes %.0f ms more than preloaded, %.0f us for each of its %d chunk loads; a load itself takes %.0f us (p50; disk cache read and BLAKE3 check of the ciphertext, then AES-256-GCM decryption and BLAKE3 check of the plaintext), and the rest is the hand-offs around it (the fault parked, a pool thread woken to fetch, the handler woken by eventfd to install), each a wake-up of an idle vCPU of this VM.\n", (w-p)/1000, (w-p)/n, n, l }'
  echo
  echo "Target (issue 8): no prefetch from a warm disk cache within 1.5x of preloaded."
} > "$RESULTS/uffd-demand-cost.md"
cat "$RESULTS/uffd-demand-cost.md"
