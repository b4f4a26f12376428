#!/usr/bin/env bash
# Per-fault latency as the VMM sees it with 1, 2 and 4 vCPUs faulting at once on resident chunks (issue 8),
# against the machine's floor in the same run: the minimal C handler (a thread in replay-vmm, and a process),
# each serving 4 KiB UFFDIO_COPY per fault from memory. Ours: `snapctl restore --preload --no-prefetch
# --fault-around 1` (every chunk in memory before the VMM connects; one page per fault, like the floor).
# Usage: bench/scripts/uffd-vcpus.sh [REPS]   (writes bench/results/uffd-vcpus.md)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
PAGES=${PAGES:-20000}
apt_need jq gcc make bc
publish_snapctl
make -s -C "$ROOT/native"
VMM="$ROOT/native/bin/replay-vmm"
make_workdir vcpus
export SNAPSHOTS_STORE="$WORK/store" SNAPSHOTS_KEYRING="$WORK/keys"

say "a 256 MiB snapshot of random data: every touch is a UFFDIO_COPY"
head -c 256M /dev/urandom > "$WORK/rand.img"
"$SNAPCTL" init > /dev/null
"$SNAPCTL" build --name rand --layer os --memory "$WORK/rand.img" > /dev/null

for r in $(seq "$REPS"); do
  for v in 1 2 4; do
    say "rep $r, $v vCPUs"
    touch=(--image "$WORK/rand.img" --touch "random:$PAGES:$r" --vcpus "$v")
    "$VMM" --mode minimal "${touch[@]}" > "$WORK/min.$v.$r"
    sock="$WORK/ext.$RANDOM.sock"
    "$ROOT/native/bin/minimal-handler" "$WORK/rand.img" "$sock" & ext=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.02; done
    "$VMM" --socket "$sock" "${touch[@]}" > "$WORK/ext.$v.$r"
    wait "$ext"
    restore_run "$WORK/our.$v.$r" --name rand --preload --no-prefetch --fault-around 1 -- "${touch[@]}"
    jq -e '.bad == 0' "$WORK/min.$v.$r" "$WORK/ext.$v.$r" "$WORK/our.$v.$r.v" > /dev/null
  done
done

med() { for r in $(seq "$REPS"); do jq "$2" "$WORK/$1.$r"; done | median; }
{
  echo "# userfaultfd loader: per-fault latency with several vCPUs faulting at once"
  echo
  echo "Command: \`bench/scripts/uffd-vcpus.sh $REPS\` (medians of $REPS alternating repetitions; $PAGES random pages)"
  machine_md
  echo
  echo "A 256 MiB random-data snapshot, every chunk in memory before the VMM connects; the VMM's threads fault on"
  echo "random pages at once (\`replay-vmm --vcpus N\`, the trace dealt round-robin). Latency is first touch of a"
  echo "page to its return, as the vCPU sees it, over all vCPUs. Ratios against the C floor at the same vCPU count."
  echo
  echo "| vCPUs | floor: C handler thread p50 / p99 us | C handler process p50 / p99 us | ours p50 / p99 us | ours / floor at p50 | at p99 |"
  echo "|---|---|---|---|---|---|"
  for v in 1 2 4; do
    fp50=$(med "min.$v" .p50Us); fp99=$(med "min.$v" .p99Us)
    ep50=$(med "ext.$v" .p50Us); ep99=$(med "ext.$v" .p99Us)
    op50=$(for r in $(seq "$REPS"); do jq .p50Us "$WORK/our.$v.$r.v"; done | median)
    op99=$(for r in $(seq "$REPS"); do jq .p99Us "$WORK/our.$v.$r.v"; done | median)
    echo "| $v | $fp50 / $fp99 | $ep50 / $ep99 | $op50 / $op99 | $(echo "scale=2; $op50 / $fp50" | bc)x | $(echo "scale=2; $op99 / $fp99" | bc)x |"
  done
  echo
  echo "The machine has 2 cores, and waking a thread on an idle CPU costs ~40 us on this VM"
  echo "(bench/results/uffd-restore.md): with one vCPU every fault crosses to the handler's idle CPU and back; with"
  echo "more vCPUs faulting, both CPUs stay busy and fewer wake-ups find an idle one, so every handler's latency"
  echo "falls. The handler serves faults on one thread: at 4 vCPUs its queue is what the p99 shows."
} > "$RESULTS/uffd-vcpus.md"
cat "$RESULTS/uffd-vcpus.md"
