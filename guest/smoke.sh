#!/usr/bin/env bash
# guest/smoke.sh [WORKDIR] - proves the real guest end to end (default WORKDIR: $ROOT/.work/guest-smoke):
#  1. build (idempotent) and make both snapshots from one boot;
#  2. how many 512 KiB chunks the os and function memories share;
#  3. restore the function snapshot from a plain copy of its memory (share=off): ping, work (checked against
#     the host's own computation), churn, balloon inflate by 64 MiB, deflate, churn: heapOk every time;
#  4. restore the os snapshot: start the runtime in it and invoke it;
#  5. restore the function snapshot RESTORES more times for launch->running figures;
#  6. the guard: a boot with share=off must make the snapshot refuse.
# Every QEMU it starts is stopped on exit, whatever happens. Exit status 0 only if every check passed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
W="$(realpath -m "${1:-$ROOT/.work/guest-smoke}")"
RESTORES=${RESTORES:-3}
PY=/usr/bin/python3
VM="$HERE/vm.sh"

rundirs=()
cleanup() { local r; for r in "${rundirs[@]}"; do "$VM" stop "$r" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
# check JSON PY_EXPR: the expression sees the answer as `a`.
check() {
  "$PY" -c 'import json,sys; a=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
    || fail "check failed: $2 on $1"
}
invoke() { # RUNDIR JSON: prints the answer, checks ok and heapOk
  local a; a=$("$VM" invoke "$1" "$2") || fail "invoke $2"
  echo "$a" | cut -c1-400
  check "$a" 'a["ok"] and a.get("heapOk", True)'
  LAST=$a
}

step "build"
"$HERE/build.sh"
rm -rf "$W"; mkdir -p "$W"

step "make-snapshots (one boot)"
rundirs+=("$W/snaps/run")
"$VM" make-snapshots "$W/snaps"

step "chunk share, os -> function"
share=$("$PY" "$HERE/chunks.py" "$W/snaps/os/memory" "$W/snaps/function/memory")
echo "$share"
check "$share" 'a["zeroB"] < a["chunks"] and a["inA"] > 0'

step "restore the function snapshot from a plain copy of its memory"
cp --sparse=always "$W/snaps/function/memory" "$W/fn.mem"
rundirs+=("$W/fn")
"$VM" restore "$W/snaps/function" "$W/fn" "$W/fn.mem"
invoke "$W/fn" '{"id":1,"op":"ping"}'
first=$LAST
stall=$("$PY" -c 'import json,sys; print(round(json.loads(sys.argv[1])["mono"] - json.load(open(sys.argv[2]))["mono"], 3))' \
  "$first" "$W/snaps/function/meta.json")
echo "guest clock from the snapshot's date to the first answer: ${stall}s (includes the ping and the heap check)"
invoke "$W/fn" '{"id":2,"op":"work","n":2000,"seed":7}'
want=$(cd "$HERE" && "$PY" -B -c 'import json, handler; print(json.dumps(handler.work(2000, 7)))')
check "$LAST" "a['result'] == json.loads('''$want''')"
echo "work: the guest's result equals the host's"
invoke "$W/fn" '{"id":3,"op":"churn","mib":32}'
invoke "$W/fn" '{"id":4,"op":"meminfo"}'
total0=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["result"]["MemTotal"])' "$LAST")
"$VM" balloon "$W/fn" 192
invoke "$W/fn" '{"id":5,"op":"meminfo"}'
check "$LAST" "$total0 - a['result']['MemTotal'] == 64 * 1024"
echo "balloon: the guest's MemTotal dropped by 64 MiB"
invoke "$W/fn" '{"id":6,"op":"churn","mib":16}'
"$VM" balloon "$W/fn" 256
invoke "$W/fn" '{"id":7,"op":"churn","mib":64}'
invoke "$W/fn" '{"id":8,"op":"work","n":2000,"seed":7}'
check "$LAST" "a['result'] == json.loads('''$want''')"
invoke "$W/fn" '{"id":9,"op":"layout"}'
"$VM" stop "$W/fn"

step "restore the os snapshot, start the runtime in it"
cp --sparse=always "$W/snaps/os/memory" "$W/os.mem"
rundirs+=("$W/os")
"$VM" restore "$W/snaps/os" "$W/os" "$W/os.mem"
"$VM" start-runtime "$W/os"
invoke "$W/os" '{"id":1,"op":"work","n":500,"seed":3}'
want=$(cd "$HERE" && "$PY" -B -c 'import json, handler; print(json.dumps(handler.work(500, 3)))')
check "$LAST" "a['result'] == json.loads('''$want''')"
echo "work: the guest's result equals the host's"
"$VM" stop "$W/os"

step "restore timing: the function snapshot, $RESTORES times"
for i in $(seq "$RESTORES"); do
  rundirs+=("$W/t$i")
  cp --sparse=always "$W/snaps/function/memory" "$W/t.mem"
  t0=$(date +%s%3N)
  "$VM" restore "$W/snaps/function" "$W/t$i" "$W/t.mem"
  invoke "$W/t$i" '{"id":1,"op":"ping","verify":false}'
  echo "restore $i: first answer $(($(date +%s%3N) - t0)) ms after vm.sh restore began (host clock, two vm.sh calls)"
  "$VM" stop "$W/t$i"
done

step "guard: a share=off boot must not produce a snapshot"
rundirs+=("$W/bad")
BOOT_SHARE=off "$VM" boot "$W/bad"
if "$VM" snapshot "$W/bad" "$W/bad-snap"; then fail "a share=off snapshot was accepted"; fi
[ ! -e "$W/bad-snap/vmstate" ] || fail "the refused snapshot left a vmstate"
"$VM" stop "$W/bad"

rm -f "$W"/*.mem
printf '\nSMOKE PASSED\n'
