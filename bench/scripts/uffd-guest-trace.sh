#!/usr/bin/env bash
# The userfaultfd loader on the real guest's own page touches (bench/traces/guest/: first-touch logs recorded by
# bench/scripts/guest-resume.sh from the Debian + python3 guest resuming its function snapshot to its first
# answer) beside a synthetic trace of the same size: restore-to-complete through replay-vmm, fully resident
# (ceiling) vs ours on demand vs ours with a plan merged from the other recorded restores, from a warm local disk
# cache. The image is a generated 256 MiB function snapshot (the real image is not kept: the logs are), so pages
# hold other bytes than the guest's but the order, spacing and sharing of the touches are the real ones.
# Usage: bench/scripts/uffd-guest-trace.sh [REPS]   (writes bench/results/uffd-guest-trace.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
TRACES="$ROOT/bench/traces/guest"
apt_need jq gcc make
publish_snapctl
make -s -C "$ROOT/native"
VMM="$ROOT/native/bin/replay-vmm"
make_workdir uffdguest
export SNAPSHOTS_STORE="$WORK/store" SNAPSHOTS_KEYRING="$WORK/keys"
S="$SNAPCTL"
[ -f "$TRACES/u1.log" ] || { echo "no recorded guest logs in $TRACES: run bench/scripts/guest-resume.sh" >&2; exit 1; }

say "a 256 MiB function snapshot (os -> runtime -> function), warm disk cache"
warm_function_stack 256M
touched=$("$S" log show --json "$TRACES/u3.log" | jq .touches)
# real: replay u3, plan from u1 u2 (and the ChunkFs logs f1 f2: the guest touches the same pages either way)
"$S" log to-trace "$TRACES/u3.log" --out "$WORK/real.txt" > /dev/null
# synthetic: the same number of pages, restore-shaped (runs, a hot start), 20 us of busy time per touch
for v in 1 2 9; do
  "$S" log synth --image "$WORK/fn.img" --pages "$touched" --seed 7 --variant "$v" --gap-us 20 --out "$WORK/s$v.log" --trace "$WORK/s$v.txt" > /dev/null
done

rows=""
for kind in real synthetic; do
  if [ "$kind" = real ]; then
    logs=("$TRACES/u1.log" "$TRACES/u2.log" "$TRACES/f1.log" "$TRACES/f2.log"); trace="$WORK/real.txt"
  else
    logs=("$WORK/s1.log" "$WORK/s2.log"); trace="$WORK/s9.txt"
  fi
  "$S" log merge --out "$WORK/plan.$kind" "${logs[@]}" > /dev/null
  "$S" log attach --name fn --tenant bench "$WORK/plan.$kind" "${CACHE[@]}" > /dev/null
  for gapmode in gaps no-gaps; do
    extra=(); [ "$gapmode" = no-gaps ] && extra=(--no-gaps)
    for r in $(seq "$REPS"); do
      "$VMM" --image "$WORK/fn.img" --mode resident --trace "$trace" "${extra[@]}" > "$WORK/res.$kind.$gapmode.$r"
      restore_run "$WORK/np.$kind.$gapmode.$r" --name fn --tenant bench --no-prefetch "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$trace" "${extra[@]}"
      restore_run "$WORK/pf.$kind.$gapmode.$r" --name fn --tenant bench --prefetch "${CACHE[@]}" -- --image "$WORK/fn.img" --trace "$trace" "${extra[@]}"
      jq -e '.bad == 0' "$WORK/res.$kind.$gapmode.$r" "$WORK/np.$kind.$gapmode.$r.v" "$WORK/pf.$kind.$gapmode.$r.v" > /dev/null
    done
    med() { for r in $(seq "$REPS"); do jq "$2" "$WORK/$1.$r$3"; done | median; }
    res=$(med "res.$kind.$gapmode" .elapsedUs "")
    np=$(med "np.$kind.$gapmode" .elapsedUs .v); pf=$(med "pf.$kind.$gapmode" .elapsedUs .v)
    npf=$(med "np.$kind.$gapmode" .faults .h); pff=$(med "pf.$kind.$gapmode" .faults .h)
    rows+=$(awk -v k="$kind" -v g="$gapmode" -v res="$res" -v np="$np" -v pf="$pf" -v npf="$npf" -v pff="$pff" 'BEGIN {
      printf "| %s | %s | %.1f | %.1f (%.2fx) | %.1f (%.2fx) | %d -> %d |\n", k, g, res/1000, np/1000, np/res, pf/1000, pf/res, npf, pff }')$'\n'
  done
done
span=$("$S" log show --json "$TRACES/u3.log" | jq ".spanSeconds * 1e6")
{
  echo "# userfaultfd loader on the real guest's recorded touches, beside a synthetic trace"
  echo
  echo "Command: \`bench/scripts/uffd-guest-trace.sh $REPS\` (medians of $REPS)"
  machine_md
  echo
  echo "Real trace: bench/traces/guest/u3.log ($touched pages first touched over $(awk -v s="$span" 'BEGIN { printf "%.0f", s/1000 }') ms of the guest's resume to its first"
  echo "answer, recorded by \`snapctl restore --record\`); its plan merged from u1, u2, f1 and f2 (two uffd and two ChunkFs"
  echo "recordings of other restores). Synthetic: \`snapctl log synth\` with the same number of pages, 20 us per touch."
  echo "Replayed by replay-vmm on a generated 256 MiB function snapshot (warm local disk cache): \"gaps\" keeps each"
  echo "trace's time between touches (the real one's are the TCG guest's), \"no-gaps\" touches back to back."
  echo
  echo "| trace | spacing | resident (ms) | ours, on demand (ms, / resident) | ours, prefetch (ms, / resident) | demand faults |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$rows"
} > "$RESULTS/uffd-guest-trace.md"
cat "$RESULTS/uffd-guest-trace.md"
