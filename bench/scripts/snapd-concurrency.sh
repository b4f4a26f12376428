#!/usr/bin/env bash
# snapd serving many VMs at once, from an s3rver origin of its own (port $S3_PORT, default 4700):
#  1. 1, 4, 16 restores at once of the SAME function snapshot and of DIFFERENT ones (16 functions on one os layer),
#     each replay-vmm --vcpus 2 --touch random:$TOUCH:SEED; a fresh daemon and an empty --cache-dir (cold),
#     then a fresh daemon on that cache (warm: same pages, disk cache, empty memory tier).
#  2. interference: $K VMs served from a warm disk cache alone (idle), then beside one VM restoring a snapshot that
#     shares no chunk with theirs from the origin alone (cold), then beside the same VM served warm (control).
# Usage: bench/scripts/snapd-concurrency.sh [REPS]   (after ./scripts/setup.sh; writes bench/results/snapd-concurrency.md)
# Env: NS (VM counts, "1 4 16"), SIZE (function images, 64M), COLD_SIZE (256M), TOUCH (2048), K (4), BG_GAP (20), S3_PORT (4700), SKIP_CONC=1, SKIP_INTF=1
source "$(dirname "${BASH_SOURCE[0]}")/snapd-lib.sh"
REPS=${1:-3} SIZE=${SIZE:-64M} COLD_SIZE=${COLD_SIZE:-256M} TOUCH=${TOUCH:-2048} K=${K:-4}
apt_need jq curl
make_workdir snapdconc
trap cleanup EXIT
START_LOAD=$(load) MACHINE=$(machine_md)   # machine_md's load and date: at the start
start_s3 "${S3_PORT:-4700}"
S="$SNAPCTL"

say "building os + 16 functions ($SIZE, tenant acme) and cold, coldw ($COLD_SIZE, os seeds of their own) into s3rver"
"$S" gen-image --out "$WORK/os.img" --size "$SIZE" --quiet
"$S" build --name os --layer os --memory "$WORK/os.img" --quiet > /dev/null
for k in $(seq 16); do
  "$S" gen-image --out "$WORK/fn$k.img" --size "$SIZE" --runtime-seed 1 --function-seed "$k" --quiet
  "$S" build --name "fn$k" --parent os --holes-are-zero --tenant acme --memory "$WORK/fn$k.img" --quiet > /dev/null
done
"$S" gen-image --out "$WORK/cold.img" --size "$COLD_SIZE" --os-seed 77 --quiet
"$S" build --name cold --layer os --memory "$WORK/cold.img" --quiet > /dev/null
"$S" gen-image --out "$WORK/coldw.img" --size "$COLD_SIZE" --os-seed 78 --quiet
"$S" build --name coldw --layer os --memory "$WORK/coldw.img" --quiet > /dev/null

# vms LABEL SEEDBASE SNAPSHOT...: one restore and one replay-vmm per snapshot named, all at once; waits for all,
# records each VMM's JSON ($WORK/LABEL.vI) and ended restore ($WORK/LABEL.rI); prints the wall ms, first create
# to last VMM exit. Fails if a VMM found a wrong page or did not finish.
vms() {
  local label=$1 seed=$2 i=0 t0 bad=0 id sock; shift 2
  local ids=() pids=()
  t0=$(now)
  for snap in "$@"; do
    i=$((i + 1))
    read -r id sock < <(create "$snap")
    [ -n "${sock:-}" ] || { echo "$label: POST /v1/restores for $snap failed" >&2; return 1; }
    ids+=("$id")
    "$VMM" --image "$WORK/$snap.img" --socket "$sock" --mode handler --touch "random:$TOUCH:$((seed + i))" \
      --vcpus 2 --timeout 90 > "$WORK/$label.v$i" 2> "$WORK/$label.e$i" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  echo "$(now) $t0" | awk '{ printf "%.0f\n", 1000 * ($1 - $2) }'
  i=0; for id in "${ids[@]}"; do i=$((i + 1)); wait_ended "$id" > "$WORK/$label.r$i"; done
  [ "$bad" -eq 0 ] || { echo "$label: $bad VMM(s) failed: $(cat "$WORK/$label".e*)" >&2; return 1; }
}

# vmm_stat LABEL FIELD AGG [DIV]: AGG (med|max) over the VMs of one replay-vmm field (us), divided by DIV (1000: ms).
vmm_stat() {
  cat "$WORK/$1".v* | jq ".$2 / ${4:-1000}" | if [ "$3" = max ]; then sort -g | tail -1; else median; fi
}
# tier_hits FILE PREFIX: tier hits summed over the tiers whose name starts with PREFIX ("disk cache", "origin").
tier_hits() { awk -v p="snapd_tier_hits_total{tier=\"$2" 'index($0, p) == 1 { s += $NF } END { print s + 0 }' "$1"; }

if [ "${SKIP_CONC:-0}" != 1 ]; then
rows=""
for pattern in same different; do
  for n in ${NS:-1 4 16}; do
    cache="$WORK/cache.$pattern.$n"
    for state in cold warm; do
      label="$pattern.$n.$state"
      say "$label: $n VMs"
      snapd_start "$WORK/st.$label" --cache-dir "$cache"
      metrics "$WORK/$label.m0"
      snaps=(); for i in $(seq "$n"); do if [ $pattern = same ]; then snaps+=(fn1); else snaps+=("fn$i"); fi; done
      wall=$(vms "$label" 0 "${snaps[@]}")
      metrics "$WORK/$label.m1"
      snapd_stop
      a="$WORK/$label.m0" b="$WORK/$label.m1"
      disk=$(( $(tier_hits "$b" "disk cache") - $(tier_hits "$a" "disk cache") ))
      origin=$(( $(tier_hits "$b" origin) - $(tier_hits "$a" origin) ))
      faults=$(( $(m "$b" snapd_faults_total) - $(m "$a" snapd_faults_total) ))
      loads=$(( $(m "$b" snapd_memory_loads_total) - $(m "$a" snapd_memory_loads_total) ))
      shared=$(( $(m "$b" snapd_memory_shared_hits_total) - $(m "$a" snapd_memory_shared_hits_total) ))
      rows+=$(awk -v p="$pattern" -v n="$n" -v s="$state" -v w="$wall" -v v50="$(vmm_stat "$label" p50Us med 1)" \
        -v v99="$(vmm_stat "$label" p99Us med)" -v v99m="$(vmm_stat "$label" p99Us max)" \
        -v h50="$(hist_q "$a" "$b" 0.5)" -v h99="$(hist_q "$a" "$b" 0.99)" -v f="$faults" -v d="$disk" -v o="$origin" \
        -v l="$loads" -v sh="$shared" \
        -v cpu="$(awk -v x="$(m "$a" process_cpu_seconds_total)" -v y="$(m "$b" process_cpu_seconds_total)" 'BEGIN { print y - x }')" \
        -v ws0="$(m "$a" process_working_set_bytes)" -v ws1="$(m "$b" process_working_set_bytes)" -v hwm="$(m "$b" snapd_vmhwm_bytes)" 'BEGIN {
        t = d + o; printf "| %s | %d | %s | %d | %.1f | %.2f (%.2f) | %s / %s | %d | %d / %d (%s local) | %d | %d | %.2f | %.0f -> %.0f (%.0f) |\n",
          p, n, s, w, v50, v99, v99m, h50, h99, f, d, o, (t ? sprintf("%.0f %%", 100 * d / t) : "-"), l, sh, cpu,
          ws0 / 1048576, ws1 / 1048576, hwm / 1048576 }')$'\n'
    done
  done
done
fi

if [ "${SKIP_INTF:-0}" != 1 ]; then
others=(); for i in $(seq "$K"); do others+=("fn$i"); done
# The background VM's workload, the same in both conditions: every page of its image in a random order, BG_GAP us of
# busy vCPU time (spun) after each access: it outlasts the $K VMs served warm, and costs the same CPU cold or warm.
BG_GAP=${BG_GAP:-20}
shuf -i 0-$(( $(stat -c %s "$WORK/cold.img") / 4096 - 1 )) --random-source=<(yes 5) |
  awk -v g="$BG_GAP" '{ print $1 * 4096, g }' > "$WORK/bg.trace"
s3pid=$(cat "$S3_STATE/s3rver.pid")
s3cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$s3pid/stat"; }
irows=""
for r in $(seq "$REPS"); do
  cache="$WORK/icache.$r"
  say "interference rep $r: warming ${others[*]} and coldw into $cache"
  snapd_start "$WORK/st.iw.$r" --cache-dir "$cache"
  for s in "${others[@]}" coldw; do api "/v1/snapshots/$s/warm" -XPOST > /dev/null; done
  snapd_stop
  for cond in idle cold control; do
    label="i.$r.$cond"
    snapd_start "$WORK/st.$label" --cache-dir "$cache"
    metrics "$WORK/$label.m0"; c0=$(s3cpu)
    bgpid=""
    if [ $cond != idle ]; then
      bsnap=cold; [ $cond = control ] && bsnap=coldw
      read -r bid bsock < <(create "$bsnap")
      "$VMM" --image "$WORK/$bsnap.img" --socket "$bsock" --mode handler --trace "$WORK/bg.trace" --vcpus 2 --timeout 90 \
        > "$WORK/$label.bg" 2>&1 &
      bgpid=$!
      for _ in $(seq 1000); do [ "$(api "/v1/restores/$bid" | jq .faults)" -gt 20 ] && break; sleep 0.01; done
    fi
    wall=$(vms "$label" 100 "${others[@]}")
    overlap=-; busy_disk=-; busy_origin=-
    if [ -n "$bgpid" ]; then
      kill -0 "$bgpid" 2>/dev/null && overlap=yes || overlap=NO
      wait "$bgpid" || { echo "background VM failed: $(cat "$WORK/$label.bg")" >&2; exit 1; }
      bdoc=$(wait_ended "$bid")
      busy_disk=$(jq '[.tiers[] | select(.tier | startswith("disk cache")) | .hits] | add' <<< "$bdoc")
      busy_origin=$(jq '[.tiers[] | select(.tier | startswith("origin")) | .hits] | add' <<< "$bdoc")
    fi
    metrics "$WORK/$label.m1"
    snapd_stop
    a="$WORK/$label.m0" b="$WORK/$label.m1"
    sp99=$(cat "$WORK/$label".r* | jq '.faultLatencySeconds.p99 * 1000' | median)
    irows+=$(awk -v r="$r" -v c="$cond" -v w="$wall" -v v50="$(vmm_stat "$label" p50Us med 1)" \
      -v v99="$(vmm_stat "$label" p99Us med)" -v v99m="$(vmm_stat "$label" p99Us max)" -v sp="$sp99" \
      -v h99="$(hist_q "$a" "$b" 0.99)" -v bd="$busy_disk" -v bo="$busy_origin" -v ov="$overlap" \
      -v cpu="$(awk -v x="$(m "$a" process_cpu_seconds_total)" -v y="$(m "$b" process_cpu_seconds_total)" 'BEGIN { print y - x }')" \
      -v s3c="$(awk -v x="$c0" -v y="$(s3cpu)" 'BEGIN { print y - x }')" 'BEGIN {
      printf "| %d | %s | %d | %.1f | %.2f (%.2f) | %.2f | %s | %s / %s | %s | %.2f | %.2f |\n", r, c, w, v50, v99, v99m, sp, h99, bd, bo, ov, cpu, s3c }')$'\n'
  done
done
# ratio COND: median over reps of (COND's median VM p99 / idle's), replay-vmm's (column 6) and snapd's (column 7).
ratio() {
  awk -F'|' -v c="$1" -v col="$2" '{ gsub(/ /, "", $3) } $3 == "idle" { i[$2] = $col + 0 } $3 == c { x[$2] = $col + 0 }
    END { for (r in x) print x[r] / i[r] }' <<< "$irows" | median | awk '{ printf "%.2f", $1 }'
}
fi

END_LOAD=$(load)
out="$RESULTS/snapd-concurrency.md"
{
  echo "# snapd: concurrent restores, tiers, interference"
  echo
  echo "Command: \`bench/scripts/snapd-concurrency.sh $REPS\` (SIZE=$SIZE COLD_SIZE=$COLD_SIZE TOUCH=$TOUCH K=$K)"
  echo "$MACHINE"
  echo "- Load: start $START_LOAD; end $END_LOAD"
  echo
  echo "Origin: s3rver on loopback (port $S3_PORT). Store: os ($SIZE) and fn1..fn16 (\`gen-image --runtime-seed 1"
  echo "--function-seed K\`, \`build --parent os --holes-are-zero --tenant acme\`). Every VM: \`replay-vmm --mode handler"
  echo "--vcpus 2 --touch random:$TOUCH:SEED\` (a seed per VM), exit 0 = every page it touched was right."
  if [ "${SKIP_CONC:-0}" != 1 ]; then
    echo
    echo "## Concurrent restores"
    echo
    echo "One fresh snapd per row (empty memory tier). cold: an empty --cache-dir; warm: the cache the cold row above"
    echo "left, same VMs and seeds. wall: first POST to the last VMM exit. VMM p99: median over the VMs (worst VM)."
    echo "snapd p50/p99: its snapd_fault_latency_seconds histogram over the row (log2 buckets, interpolated)."
    echo "tier reads: chunks read from the disk cache / the origin (snapd_tier_hits_total: memory misses); loads:"
    echo "snapd_memory_loads_total; shared: loads served by copying another snapshot's resident chunk. CPU: the"
    echo "daemon's process_cpu_seconds_total over the row; WS: process_working_set_bytes before -> after (peak VmHWM)."
    echo
    echo "| snapshots | VMs | cache | wall (ms) | VMM p50 (us, median) | VMM p99 (ms) median (worst) | snapd p50 / p99 (ms) | faults | tier reads disk / origin | loads | shared | snapd CPU (s) | WS MiB (peak) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$rows"
  fi
  if [ "${SKIP_INTF:-0}" != 1 ]; then
    echo
    echo "## Interference: one cold restore from the origin beside warm VMs"
    echo
    echo "$K VMs (fn1..fn$K, random:$TOUCH, 2 vCPUs each) whose chunks are in the disk cache (POST .../warm), on a fresh"
    echo "daemon (empty memory tier): idle: alone; cold: beside one VM (2 vCPUs) touching every page of \`cold\` ($COLD_SIZE, its own"
    echo "os seed: no chunk in common, so every chunk it needs comes from s3rver; its tier reads shown); control: beside"
    echo "the same kind of VM on \`coldw\` (same size, another os seed) served from the disk cache (the load of one more"
    echo "VM, without the origin). The background VM's trace: every page in a random order, $BG_GAP us of spun vCPU time"
    echo "after each access (\`--trace\` without --sleep-gaps), the same in both."
    echo "The background VM starts first and has faulted before the $K start; overlap: still running when they ended."
    echo "VMM p99: median over the $K VMs (worst); snapd p99: median of their restores' faultLatencySeconds.p99."
    echo
    echo "| rep | condition | wall (ms) | VMM p50 (us) | VMM p99 (ms) median (worst) | snapd p99 (ms) | snapd hist p99, all VMs (ms) | background VM tier reads disk / origin | overlap | snapd CPU (s) | s3rver CPU (s) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$irows"
    echo
    echo "Median over reps of p99(condition) / p99(idle), the $K VMs' median p99: replay-vmm's: cold $(ratio cold 6)x," \
      "control $(ratio control 6)x; snapd's per-restore p99: cold $(ratio cold 7)x, control $(ratio control 7)x (target: cold <= 2x)."
  fi
} > "$out"
cat "$out"
