#!/usr/bin/env bash
# snapd SIGKILLed while $VMS VMs fault, restarted at once on the same --state-dir (it takes the VMs back): the longest
# fault each VM saw (replay-vmm's maxUs), against the same VMs with no restart, and the restart time (SIGKILL to the
# new daemon's /v1/health answering). The VMs: SnapdTests.SlowTrace's shape (every page of a 16 MiB image in a
# random order, GAP us slept between accesses, 2 vCPUs), alternately the function fn (tenant acme) and its os layer.
# Usage: bench/scripts/snapd-restart.sh [REPS]   (after ./scripts/setup.sh; writes bench/results/snapd-restart.md)
# Env: VMS (4), GAP (1000), KILL_AFTER (0.5: seconds after every VM's first fault)
source "$(dirname "${BASH_SOURCE[0]}")/snapd-lib.sh"
REPS=${1:-3} VMS=${VMS:-4} GAP=${GAP:-1000} KILL_AFTER=${KILL_AFTER:-0.5}
apt_need jq curl
make_workdir snapdrestart
trap cleanup EXIT
START_LOAD=$(load) MACHINE=$(machine_md)   # machine_md's load and date: at the start
export SNAPSHOTS_STORE="file://$WORK/store" SNAPSHOTS_KEYRING="$WORK/keys"
S="$SNAPCTL"
"$S" init --quiet > /dev/null
"$S" gen-image --out "$WORK/os.img" --size 16M --quiet
"$S" gen-image --out "$WORK/fn.img" --size 16M --runtime-seed 1 --function-seed 3 --quiet
"$S" build --name os --layer os --memory "$WORK/os.img" --quiet > /dev/null
"$S" build --name fn --parent os --holes-are-zero --tenant acme --memory "$WORK/fn.img" --quiet > /dev/null
for i in $(seq "$VMS"); do
  shuf -i 0-4095 --random-source=<(yes "$i") | awk -v g="$GAP" '{ print $1 * 4096, g }' > "$WORK/slow$i.trace"
done
# since HH:MM:SS.mmm PATTERN LOG: ms from the time given to the last LOG line matching PATTERN.
since() {
  { grep -F "$2" "$3" || true; } | tail -n 1 | awk -v k="$1" 'function ms(t, a) { split(t, a, ":"); return ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000 }
    { printf "%.0f", ms($1) - ms(k) }'
}
TIMELINE=""
snap() { if [ $(($1 % 2)) -eq 1 ]; then echo fn; else echo os; fi; }

# run LABEL KILL: $VMS VMs on a fresh state dir; with KILL=1, SIGKILL the daemon once each has faulted and
# KILL_AFTER more seconds passed, and start it again at once. Writes LABEL.vI (VMM JSON), LABEL.rI (ended
# restore), LABEL.fI (faults served before the kill); sets MS to the restart ms (- without a kill).
run() {
  local label=$1 kill=$2 state="$WORK/$1.state" ids=() pids=() id sock bad=0 t0
  MS=-
  snapd_start "$state" --cache-dir "$WORK/cache"
  for i in $(seq "$VMS"); do
    read -r id sock < <(create "$(snap "$i")")
    ids+=("$id")
    "$VMM" --image "$WORK/$(snap "$i").img" --socket "$sock" --mode handler --trace "$WORK/slow$i.trace" --sleep-gaps \
      --vcpus 2 --timeout 90 > "$WORK/$label.v$i" 2> "$WORK/$label.e$i" &
    pids+=($!)
  done
  if [ "$kill" = 1 ]; then
    for id in "${ids[@]}"; do
      for _ in $(seq 2000); do [ "$(api "/v1/restores/$id" | jq '.faults // 0')" -gt 0 ] && break; sleep 0.005; done
    done
    sleep "$KILL_AFTER"
    local i=0; for id in "${ids[@]}"; do i=$((i + 1)); api "/v1/restores/$id" | jq .faults > "$WORK/$label.f$i"; done
    t0=$(now); local kt; kt=$(date +%H:%M:%S.%3N)
    snapd_kill
    snapd_start "$state" --cache-dir "$WORK/cache"
    MS=$(echo "$(now) $t0" | awk '{ printf "%.0f", 1000 * ($1 - $2) }')
    # The new daemon's own log (HH:mm:ss.fff): its store open, its last VM taken back, in ms after the kill.
    TIMELINE+="rep ${label#*.}: store open +$(since "$kt" "open; state in" "$state.log") ms, last VM taken back"
    TIMELINE+=" +$(since "$kt" "took VMM pid" "$state.log") ms, health answering +$MS ms; "
  fi
  for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  local i=0; for id in "${ids[@]}"; do i=$((i + 1)); wait_ended "$id" > "$WORK/$label.r$i"; done
  api /metrics | grep '^snapd_restores_taken_back_total' > "$WORK/$label.tb" || true
  snapd_stop
  [ "$bad" -eq 0 ] || { echo "$label: $bad VMM(s) failed: $(cat "$WORK/$label".e*)" >&2; return 1; }
}

# A start with nothing to take back (fresh state dir, same store and cache): what a restart costs by itself.
plain=""
for r in $(seq "$REPS"); do
  t0=$(now); snapd_start "$WORK/plain.$r" --cache-dir "$WORK/cache"; plain+="$(echo "$(now) $t0" | awk '{ printf "%.0f ", 1000 * ($1 - $2) }')"; snapd_stop
done
rows=""
for r in $(seq "$REPS"); do
  for kind in none kill; do
    label="$kind.$r"
    say "rep $r: $VMS VMs, $([ $kind = kill ] && echo "SIGKILL + restart" || echo "no restart")"
    run "$label" "$([ $kind = kill ] && echo 1 || echo 0)"
    for i in $(seq "$VMS"); do
      v="$WORK/$label.v$i" d="$WORK/$label.r$i"
      rows+="| $r | $kind | $MS | $i ($(snap "$i")) | $(cat "$WORK/$label.f$i" 2>/dev/null || echo -) | $(jq -r '"\(.maxUs / 1000 | . * 100 | round / 100) | \(.p99Us / 1000 | . * 100 | round / 100) | \(.elapsedUs / 1000 | round) | \(.bad)"' "$v") | $(jq -r '"\(.state) | \(.takenBack // false)"' "$d") |"$'\n'
    done
    [ $kind = kill ] && grep -q 'outcome="served"} '"$VMS" "$WORK/$label.tb" || [ $kind = none ] ||
      { echo "rep $r: not every VM taken back: $(cat "$WORK/$label.tb")" >&2; exit 1; }
  done
done

summary() { # KIND: median of each VM's maxUs (ms), and the largest
  awk -F'|' -v k="$1" '{ gsub(/ /, "", $3) } $3 == k { print $7 + 0 }' <<< "$rows" | { sort -g > "$WORK/s"; echo "median $(median < "$WORK/s") ms, max $(tail -1 "$WORK/s") ms"; }
}
restarts=$(awk -F'|' '{ gsub(/ /, "", $3) } $3 == "kill" && $5 + 0 == 1 { print $4 + 0 }' <<< "$rows" | tr '\n' ' ')
END_LOAD=$(load)
out="$RESULTS/snapd-restart.md"
{
  echo "# snapd: SIGKILL and restart under running VMs"
  echo
  echo "Command: \`bench/scripts/snapd-restart.sh $REPS\` (VMS=$VMS GAP=$GAP KILL_AFTER=$KILL_AFTER)"
  echo "$MACHINE"
  echo "- Load: start $START_LOAD; end $END_LOAD"
  echo
  echo "$VMS VMs (\`replay-vmm --mode handler --trace F --sleep-gaps --vcpus 2\`, every page of a 16 MiB image in a"
  echo "random order, $GAP us slept between accesses), alternately fn (tenant acme) and os, local file store, a disk"
  echo "cache. kill: once every VM has faulted and $KILL_AFTER s more, \`kill -KILL\` snapd, start it again at once"
  echo "on the same --state-dir; restart = SIGKILL to the new daemon's GET /v1/health answering (polled every 20 ms)."
  echo "none: the same VMs, no restart (the baseline for the longest fault). faults before kill: the restore's"
  echo "faults when it was killed. maxUs / p99Us / elapsed: replay-vmm's; bad = pages wrong (must be 0)."
  echo
  echo "| rep | run | restart (ms) | VM | faults before kill | longest fault (ms) | p99 (ms) | VM elapsed (ms) | bad | state | taken back |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Restart times (ms): $restarts. A start with no VM to take back (fresh state dir, process start to health): $plain"
  echo "ms. Longest fault per VM: with SIGKILL + restart $(summary kill); without $(summary none)."
  echo
  echo "The restarted daemon's timeline, from its log: $TIMELINE"
} > "$out"
cat "$out"
