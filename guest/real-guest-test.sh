#!/usr/bin/env bash
# guest/real-guest-test.sh WORKDIR RESULTS_JSON - the real-guest test: the Debian guest of guest/ (kernel, busybox,
# python3 function) restored lazily by both loaders, checked from the outside.
#
#   a. build the guest (guest/build.sh) and both snapshots from one boot (vm.sh make-snapshots), then the os and
#      function layers into a directory store (WORKDIR/store); a function layer of zero chunks only is refused.
#   b. uffd: `snapctl restore --record` serving qemu-uffd (QEMU playing Firecracker's Uffd backend) started on an
#      all-zero placeholder file: ping, work (checked against the host's handler.work()), balloon inflate 64 MiB,
#      churn 16 MiB, deflate, churn 64 MiB, work again, heapOk in every answer; QMP quit; the handler's JSON must
#      say outcome "exited", faults > 0, removeEvents > 0. A second recorded restore ends in (f.i).
#   c. ChunkFs: `snapctl mount --record` (read-ahead 0), QEMU (native/bin/qemu-file) on DIR/fn, the same session;
#      quit, SIGTERM: readErrors 0, reads > 0. A second recorded mount (ping, work, work) is the baseline of (e).
#   d. one mount, three restores of the same file: plain QEMU (MADV_HUGEPAGE), then two qemu-file QEMUs at once.
#   e. the four logs merged into one plan (pages in at least 3 of the 4 runs: the restore-and-invoke working set
#      both loaders saw, without the balloon and churn pages of the two long sessions), attached with its pack;
#      a mount and a restore prefetch from it: prefetchedPages > 0, fewer reads/faults than the baselines.
#   f. kills: (i) QEMU SIGKILLed during an invocation: `snapctl restore` exits by itself; (ii) `snapctl mount`
#      SIGKILLed during an invocation: QEMU gets errors (SIGBUS or a failed invoke) within a bound, no task in D
#      state, and the next mount on that directory clears the dead one and serves; (iii) `snapctl restore`
#      SIGKILLed: the VM freezes (an invoke times out), QEMU is SIGKILLed, and the next restore works.
#   g. snapd (the daemon, its own state directory WORKDIR/sd and API socket WORKDIR/snapd.sock): (i) a uffd restore
#      created through the API (`snapctl restores create`), qemu-uffd on the returned socketPath, invoked and
#      checked; GET says serving, then exited after QMP quit, faults > 0; (ii) a file restore: qemu-file on the
#      returned path, invoked, checked, DELETEd (unmounted, then unknown); (iii) a uffd restore serving the guest,
#      snapd SIGKILLed during an invocation (a churn that faults) and restarted on the same state directory: it takes
#      the VM back, the invocation in flight and one after the restart answer correctly, and the restore ends
#      "exited" with takenBack; then SIGTERM: snapd exits 0.
#   RESULTS_JSON: every figure and check (one object); WORKDIR/logs: the recorded access logs and the plan.
#
# Exit 0 only if every check passed. Every QEMU, snapctl, snapd and mount it starts is stopped on exit (QEMU by the
# pid in its run directory's pidfile, snapctl and snapd by pid, mounts lazily unmounted), whatever happens.
# Environment: SNAPCTL (default bin/snapctl), SNAPD (default bin/snapd), TIMEOUT (vm.sh's QMP/invoke deadline,
# default 60), WAIT (seconds for any other wait, default 60). Needs root, /dev/fuse, qemu-system-x86_64,
# native/bin (make -C native).
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
[ $# -eq 2 ] || { echo "usage: guest/real-guest-test.sh WORKDIR RESULTS_JSON" >&2; exit 2; }
W=$(realpath -m "$1") RESULTS=$(realpath -m "$2")
# QEMU options are comma-separated and the mount table escapes blanks: neither may appear in the paths.
case $W in *[,[:space:]]*|/) echo "real-guest-test: unusable WORKDIR '$W'" >&2; exit 2 ;; esac
HERE=$ROOT/guest VM=$ROOT/guest/vm.sh PY=/usr/bin/python3
SNAPCTL=${SNAPCTL:-$ROOT/bin/snapctl} SNAPD=${SNAPD:-$ROOT/bin/snapd}
QEMU_UFFD=$ROOT/native/bin/qemu-uffd QEMU_FILE=$ROOT/native/bin/qemu-file QEMU_PLAIN=qemu-system-x86_64
WAIT=${WAIT:-60}
export TIMEOUT=${TIMEOUT:-60}
STORE=(--store "$W/store" --keyring "$W/keyring")
SNAPS=$W/snaps FN=$W/snaps/function TSV=$W/results.tsv LOGS=$W/logs
# snapd's state directory is short: the VMM sockets in it (SD/restores/r-<16 hex>.sock) must fit sun_path.
SD=$W/sd SD_API=$W/snapd.sock SD_LOG=$W/snapd.log
T_START=$(date +%s%3N)

PIDS=()     # snapctl restores and mounts, snapd (children of this script)
RUNDIRS=()  # QEMU run directories (vm.sh stop: by the pidfile's pid, checked against its command line)
MOUNTS=()   # mountpoints
STEP=start ERROR=""

now_ms() { date +%s%3N; }
# say_step KEY TEXT: a new step; the previous one's time goes into durations.steps.KEY (ms).
STEP_T0=0
say_step() {
  [ "$STEP_T0" -eq 0 ] || rec "durations.steps.$STEP" $(($(now_ms) - STEP_T0))
  STEP=$1 STEP_T0=$(now_ms); printf '\n== %s: %s\n' "$1" "$2"
}
# fail MESSAGE: a step that cannot go on; the results say where and why.
fail() { ERROR="$STEP: $*"; echo "REAL-GUEST FAILED: $ERROR" >&2; exit 1; }

# ---- results: one line per figure (v) or check (c) in WORKDIR/results.tsv, assembled at exit --------------------
# A figure's path is dotted (uffd.faults); a check is a Python expression over figures, e.g. 'uffd.faults > 0',
# true only when it evaluates to exactly True (a missing figure makes it false, named).
RESULTS_PY='
import json, re, sys
mode, tsv = sys.argv[1], sys.argv[2]
root, checks = {}, {}
for line in open(tsv, encoding="utf-8"):
    kind, path, val = line.rstrip("\n").split("\t", 2)
    if kind == "c":
        checks[path] = val == "true"
        continue
    try:
        v = json.loads(val)
    except ValueError:
        v = val
    d = root
    *parents, last = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = v
def lookup(path):
    d = root
    for p in path.split("."):
        if not isinstance(d, dict) or p not in d:
            raise KeyError("no figure " + path)
        d = d[p]
    return d
if mode == "check":
    expr, seen = sys.argv[3], {}
    def name(m):
        t = m.group(0)
        if t.startswith(chr(34)):
            return t
        seen[t] = lookup(t)
        return "V[%r]" % t
    try:
        code = re.sub(r"\"[^\"]*\"|\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", name, expr)
        ok = eval(code, {"__builtins__": {}, "V": seen, "true": True, "false": False, "null": None}) is True
        why = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in seen.items())
    except Exception as e:
        ok, why = False, str(e)
    print(("true\t" if ok else "false\t") + why)
else:
    error, rc = sys.argv[3], int(sys.argv[4])
    failed = [k for k, v in checks.items() if not v]
    root["checks"] = checks
    root["failedChecks"] = failed
    root["error"] = error or None
    root["exitCode"] = rc
    root["passed"] = rc == 0 and not failed and not error and len(checks) > 0
    with open(sys.argv[5] + ".tmp", "w") as f:
        json.dump(root, f, indent=1)
        f.write("\n")
'
rec() { printf 'v\t%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\t\n' '  ')" >>"$TSV"; }
FAILED_CHECKS=0
expect() { # EXPR
  local out ok why
  out=$("$PY" -c "$RESULTS_PY" check "$TSV" "$1")
  ok=${out%%$'\t'*} why=${out#*$'\t'}
  printf 'c\t%s\t%s\n' "$1" "$ok" >>"$TSV"
  if [ "$ok" = true ]; then echo "  ok: $1 ($why)"
  else FAILED_CHECKS=$((FAILED_CHECKS + 1)); echo "CHECK FAILED: $1 ($why)" >&2; fi
}
write_results() { # RC
  mkdir -p "$(dirname "$RESULTS")"
  "$PY" -c "$RESULTS_PY" write "$TSV" "$ERROR" "$1" "$RESULTS" && mv "$RESULTS.tmp" "$RESULTS"
}

# ---- processes ---------------------------------------------------------------------------------------------------
# state PID: its state letter (R S D Z ...) or "gone".
state() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && echo "${s:-gone}" || echo gone; }
alive() { local s; s=$(state "$1"); [ "$s" != gone ] && [ "$s" != Z ]; }
# wait_dead PID SECONDS: until the process is gone or a zombie (its files are closed then); 1 on timeout.
wait_dead() {
  local end=$(($(now_ms) + $2 * 1000))
  while alive "$1"; do [ "$(now_ms)" -lt "$end" ] || return 1; sleep 0.05; done
}
names_w() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$W/"; }
qemu_pid() { local p; p=$(cat "$1/qemu.pid" 2>/dev/null) && [[ $p =~ ^[0-9]+$ ]] && echo "$p"; }
# d_state PID...: how many tasks of these processes are in D state now.
d_state() {
  local n=0 p t
  for p in "$@"; do
    for t in /proc/"$p"/task/*/stat; do [ "$(cut -d' ' -f3 "$t" 2>/dev/null)" = D ] && n=$((n + 1)); done
  done
  echo "$n"
}
# stuck_d PID...: tasks in D state in each of 3 samples 0.5 s apart (a passing D is not stuck).
stuck_d() {
  local a b c; a=$(d_state "$@"); sleep 0.5; b=$(d_state "$@"); sleep 0.5; c=$(d_state "$@")
  echo $((a < b ? (a < c ? a : c) : (b < c ? b : c)))
}
# exit_signal PID: the signal that ended a zombie (its wait status, /proc/PID/stat field 52), or null.
exit_signal() {
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo null; return; }
  local st; read -ra st <<<"${s##*) }"   # fields from the 3rd on: the command name may hold blanks
  if [ "${st[0]}" = Z ] && [ "${#st[@]}" -ge 50 ]; then echo $((st[49] & 127)); else echo null; fi
}
mounted() { awk -v m="$1" '$5 == m {f = 1} END {exit !f}' /proc/self/mountinfo; }
stop_qemu() { # RUNDIR: QMP quit (SIGKILL when it does not answer), then until its files are closed
  local p; p=$(qemu_pid "$1") || true
  "$VM" stop "$1" >/dev/null 2>&1 || true
  if [ -n "$p" ] && ! wait_dead "$p" 10; then
    names_w "$p" && kill -KILL "$p" 2>/dev/null; wait_dead "$p" 10 || echo "QEMU $p survived SIGKILL" >&2
  fi
}

cleanup() {
  local rc=$? r p m
  trap - EXIT INT TERM
  set +e
  for r in "${RUNDIRS[@]}"; do stop_qemu "$r"; done   # first: a QEMU maps a mount's file
  for p in "${PIDS[@]}"; do
    alive "$p" && names_w "$p" && kill -TERM "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    if ! wait_dead "$p" 15; then names_w "$p" && kill -KILL "$p" 2>/dev/null; wait_dead "$p" 5; fi
  done
  for m in "${MOUNTS[@]}"; do mounted "$m" && umount -l "$m"; done
  local left=0 q
  for m in "${MOUNTS[@]}"; do mounted "$m" && left=$((left + 1)); done
  for r in "${RUNDIRS[@]}"; do q=$(qemu_pid "$r") && alive "$q" && names_w "$q" && left=$((left + 1)); done
  for p in "${PIDS[@]}"; do alive "$p" && left=$((left + 1)); done
  rec cleanup.leftBehind "$left"
  [ "$left" -eq 0 ] || { echo "cleanup: $left processes or mounts could not be stopped" >&2; rc=1; }
  [ "$STEP_T0" -eq 0 ] || rec "durations.steps.$STEP" $(($(now_ms) - STEP_T0))
  rec durations.totalS "$((($(now_ms) - T_START) / 1000))"
  [ "$rc" -ne 0 ] || [ "$FAILED_CHECKS" -eq 0 ] || rc=1
  [ "$rc" -ne 0 ] || [ -z "$ERROR" ] || rc=1
  [ "$rc" -eq 0 ] || [ -n "$ERROR" ] || [ "$FAILED_CHECKS" -gt 0 ] || ERROR="$STEP: exited $rc"
  write_results "$rc" || { echo "cannot write $RESULTS" >&2; rc=1; }
  if [ "$rc" -eq 0 ]; then echo "REAL-GUEST PASSED ($RESULTS)"
  else echo "REAL-GUEST FAILED: ${ERROR:-$FAILED_CHECKS checks failed} ($RESULTS)" >&2; fi
  exit "$rc"
}

# ---- the guest ---------------------------------------------------------------------------------------------------
# ans ANSWER EXPR: a Python expression over the answer `a` (and the host's expected results W1, W2).
ans() { "$PY" -c 'import json,sys; a=json.loads(sys.argv[1]); W1=json.loads(sys.argv[3]); W2=json.loads(sys.argv[4]);
v=eval(sys.argv[2]); print(json.dumps(v))' "$1" "$2" "$WANT1" "$WANT2"; }
# invoke RUN JSON [SECONDS]: the answer in ANSWER; status 1 when there is none (stderr in RUN/invoke.err).
invoke() {
  ANSWER=$(TIMEOUT=${3:-$TIMEOUT} "$VM" invoke "$1" "$2" 2>"$1/invoke.err") || { ANSWER=""; return 1; }
}
# call RUN JSON: invoke, and the answer must be ok with heapOk; folds heapOk into HEAP (false stays).
call() {
  invoke "$1" "$2" || fail "invoke $2 in $1: $(tail -2 "$1/invoke.err" | tr '\n' ' ')"
  echo "  $(cut -c1-160 <<<"$ANSWER")"
  [ "$(ans "$ANSWER" 'a.get("ok") is True and a.get("heapOk") is True')" = true ] || HEAP=false
}
WORK1='{"id":2,"op":"work","n":2000,"seed":7}' WORK2='{"id":3,"op":"work","n":1500,"seed":11}'

# session RUN PREFIX full|short: ping, work, then either the balloon cycle and work again (full) or a second work
# (short). Figures: PREFIX.ping .work .work2|.workAfterBalloon .heapOk .stallS .firstAnswerMs (needs T0).
session() {
  local run=$1 p=$2 kind=$3 total0 total1
  HEAP=true
  call "$run" '{"id":1,"op":"ping"}'
  rec "$p.firstAnswerMs" $(($(now_ms) - T0))
  rec "$p.ping" "$(ans "$ANSWER" 'a.get("ok") is True')"
  # The guest's clock runs only while the VM runs: from the snapshot's date to this answer is the stall it saw.
  rec "$p.stallS" "$(ans "$ANSWER" "round(a['mono'] - $(jf "$FN/meta.json" 'j["mono"]'), 3)")"
  call "$run" "$WORK1"; WORK_OK=$(ans "$ANSWER" 'a.get("result") == W1'); rec "$p.work" "$WORK_OK"
  if [ "$kind" = full ]; then
    call "$run" '{"id":4,"op":"meminfo"}'; total0=$(ans "$ANSWER" 'a["result"]["MemTotal"]')
    "$VM" balloon "$run" 192 || fail "balloon inflate to 192 MiB in $run"
    call "$run" '{"id":5,"op":"meminfo"}'; total1=$(ans "$ANSWER" 'a["result"]["MemTotal"]')
    rec "$p.balloonDropMiB" $(((total0 - total1) / 1024))
    call "$run" '{"id":6,"op":"churn","mib":16}'
    "$VM" balloon "$run" 256 || fail "balloon deflate to 256 MiB in $run"
    call "$run" '{"id":7,"op":"churn","mib":64}'
    rec "$p.churnOk" "$(ans "$ANSWER" 'a["result"].get("churnOk") is True')"
    call "$run" "$WORK2"; rec "$p.workAfterBalloon" "$(ans "$ANSWER" 'a.get("result") == W2')"
  else
    call "$run" "$WORK2"; rec "$p.work2" "$(ans "$ANSWER" 'a.get("result") == W2')"
  fi
  rec "$p.heapOk" "$HEAP"
}
jf() { "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2])))' "$1" "$2"; }
# figures FILE PREFIX KEY...: copy top-level fields of a JSON file into the results.
figures() { local f=$1 p=$2 k; shift 2; for k in "$@"; do rec "$p.$k" "$(jf "$f" "j.get('$k')")"; done; }
ffigures() { local f=$1 p=$2 k; shift 2; for k in "$@"; do rec "$p.$k" "$(jf "$f" "j['files'][0].get('$k')")"; done; }

# ---- the loaders -------------------------------------------------------------------------------------------------
wait_line() { # FILE TEXT PID WHAT: until FILE has a line starting with TEXT, while PID lives
  local end=$(($(now_ms) + WAIT * 1000))
  until grep -q "^$2" "$1" 2>/dev/null; do
    alive "$3" || fail "$4 exited before it was ready: $(tail -3 "$1" | tr '\n' ' ')"
    [ "$(now_ms)" -lt "$end" ] || fail "$4 not ready within ${WAIT}s: $(tail -3 "$1" | tr '\n' ' ')"
    sleep 0.02
  done
}
# handler_start RUN [snapctl restore options]: `snapctl restore` in the background, until it serves. HPID.
handler_start() {
  local run=$1 t0; shift
  mkdir -p "$run"; rm -f "$run"/{h.sock,handler.json,handler.err}; t0=$(now_ms)
  env --default-signal=INT,TERM "$SNAPCTL" restore "${STORE[@]}" --name fn --tenant acme \
    --uffd-socket "$run/h.sock" --accept-timeout "$WAIT" --json "$@" >"$run/handler.json" 2>"$run/handler.err" &
  HPID=$!; PIDS+=("$HPID")
  wait_line "$run/handler.err" "snapctl: serving" "$HPID" "snapctl restore"
  echo "  snapctl restore $HPID serving after $(($(now_ms) - t0)) ms"
}
# handler_end PREFIX SECONDS: until `snapctl restore` exits by itself; its exit code and JSON into the results.
handler_end() {
  local p=$1 t0 rc=0; t0=$(now_ms)
  wait_dead "$HPID" "$2" || { rec "$p.handlerExited" false; fail "snapctl restore $HPID still runs ${2}s later"; }
  wait "$HPID" || rc=$?
  rec "$p.handlerExited" true; rec "$p.handlerExitMs" $(($(now_ms) - t0)); rec "$p.handlerExitCode" "$rc"
  local j=$RUN/handler.json
  [ -s "$j" ] || fail "no JSON from snapctl restore: $(tail -3 "$RUN/handler.err" | tr '\n' ' ')"
  figures "$j" "$p" outcome reason faults pagesCopied zeroPages prefetchedPages removeEvents removedPages \
    chunksLoaded
  rec "$p.faultLatencySeconds" "$(jf "$j" 'j.get("faultLatencySeconds")')"
  rec "$p.vmmPidIsQemu" "$([ "$(jf "$j" 'j.get("vmmPid")')" = "$QPID" ] && echo true || echo false)"
}
# uffd_restore NAME [SOCKET LOG]: QEMU through qemu-uffd on the all-zero placeholder, served by the handler of
# RUN=W/runs/NAME (its h.sock, handler.err) or the one listening on SOCKET (LOG: its output).
uffd_restore() {
  RUN=$W/runs/$1; RUNDIRS+=("$RUN"); T0=$(now_ms)
  local sock=${2:-$RUN/h.sock} log=${3:-$RUN/handler.err}
  SNAP_UFFD_SOCKET="$sock" SNAP_UFFD_MEM_PATH="$W/zero.mem" QEMU=$QEMU_UFFD \
    "$VM" restore "$FN" "$RUN" "$W/zero.mem" || fail "uffd restore $1: $(tail -3 "$log" | tr '\n' ' ')"
  QPID=$(qemu_pid "$RUN") || fail "no QEMU pid in $RUN"
}
# mount_start NAME [snapctl mount options]: `snapctl mount` of fn on W/mnt/NAME (MNT), until mounted. MPID, MDIR.
mount_start() {
  MDIR=$W/mounts/$1 MNT=$W/mnt/$1; shift
  mkdir -p "$MDIR" "$MNT"; rm -f "$MDIR"/mount.{json,err}
  MOUNTS+=("$MNT")
  env --default-signal=INT,TERM "$SNAPCTL" mount "${STORE[@]}" --name fn --tenant acme --mountpoint "$MNT" \
    --json "$@" >"$MDIR/mount.json" 2>"$MDIR/mount.err" &
  MPID=$!; PIDS+=("$MPID")
  wait_line "$MDIR/mount.err" "snapctl: mounted" "$MPID" "snapctl mount"
}
# mount_stop PREFIX: SIGTERM, until it exits; exit code, unmounted, and the file's figures into the results.
mount_stop() {
  local p=$1 rc=0
  kill -TERM "$MPID"
  wait_dead "$MPID" "$WAIT" || fail "snapctl mount $MPID still runs ${WAIT}s after SIGTERM"
  wait "$MPID" || rc=$?
  rec "$p.mountExitCode" "$rc"
  rec "$p.unmounted" "$(mounted "$MNT" && echo false || echo true)"
  [ -s "$MDIR/mount.json" ] || fail "no JSON from snapctl mount: $(tail -3 "$MDIR/mount.err" | tr '\n' ' ')"
  figures "$MDIR/mount.json" "$p" readAheadBytes
  ffigures "$MDIR/mount.json" "$p" opens reads readBytes readMisses readErrors readLatencySeconds prefetchedPages \
    prefetchFailures plannedPages chunksLoaded
}
# file_restore NAME QEMU [FILE]: QEMU (a command) on FILE (default MNT/fn), run directory RUN=W/runs/NAME.
file_restore() {
  RUN=$W/runs/$1; RUNDIRS+=("$RUN"); T0=$(now_ms)
  local file=${3:-$MNT/fn}
  QEMU=$2 "$VM" restore "$FN" "$RUN" "$file" || fail "restore $1 from $file"
  QPID=$(qemu_pid "$RUN") || fail "no QEMU pid in $RUN"
}
log_pages() { # FILE: the pages an access log or a plan lists
  local out; out=$(timeout 120 "$SNAPCTL" log show --json "$1") || fail "snapctl log show $1"
  "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j.get("touches", j.get("pages")))' "$out"
}

# ---- snapd -------------------------------------------------------------------------------------------------------
# api METHOD PATH [BODY]: one call to snapd's API (HTTP over SD_API); the document on stdout, status 1 unless 2xx.
# api_until PATH EXPR SECONDS [PID]: GET PATH until EXPR (Python, over the document `r`) is true, while PID (snapd)
# lives; the document on stdout; status 1 on timeout or when PID is gone (the last answer on stderr).
API_PY='
import http.client, json, socket, sys, time
sock, method, path, body, until, limit, pid = sys.argv[1:8]
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(sock)
def call():
    c = C("snapd", timeout=30)
    try:
        c.request(method, path, body=body or None, headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()
def gone():
    try:
        return open("/proc/%s/stat" % pid).read().rsplit(") ", 1)[1].split()[0] == "Z"
    except OSError:
        return True
end, last = time.monotonic() + float(limit or 0), "no answer"
while True:
    try:
        status, text = call()
        last = "%d %s" % (status, text)
        if not until:
            print(text)
            sys.exit(0 if 200 <= status < 300 else 1)
        if 200 <= status < 300 and eval(until, {"__builtins__": {}, "r": json.loads(text)}) is True:
            print(text)
            sys.exit(0)
    except (OSError, http.client.HTTPException) as e:
        last = "%s: %s" % (type(e).__name__, e)
        if not until:
            break
    if time.monotonic() > end or (pid and gone()):
        break
    time.sleep(0.05)
print("snapd %s %s: %s" % (method, path, last), file=sys.stderr)
sys.exit(1)
'
api() { "$PY" -c "$API_PY" "$SD_API" "$1" "$2" "${3:-}" "" 0 ""; }
api_until() { "$PY" -c "$API_PY" "$SD_API" GET "$1" "" "$2" "$3" "${4:-}"; }
# snapd_start: bin/snapd on the store, state in SD, in the background, until its health answers (SDPID, SD_UP_MS).
snapd_start() {
  local t0; t0=$(now_ms)
  env --default-signal=INT,TERM "$SNAPD" --config "$W/snapd.json" --store "$W/store" --keyring "$W/keyring" \
    --state-dir "$SD" --api-socket "$SD_API" --drain 5 >>"$SD_LOG" 2>&1 &
  SDPID=$!; PIDS+=("$SDPID")
  api_until /v1/health 'r.get("status") == "ok"' "$WAIT" "$SDPID" >/dev/null 2>"$W/snapd-start.err" ||
    fail "snapd $SDPID not answering: $(tail -1 "$W/snapd-start.err") $(tail -3 "$SD_LOG" | tr '\n' ' ')"
  SD_UP_MS=$(($(now_ms) - t0))
  echo "  snapd $SDPID answering after $SD_UP_MS ms"
}
# snapd_create PREFIX [snapctl restores create options]: a restore through the API (snapctl, the daemon's client);
# its document in DOC, its id in RID; PREFIX.readySeconds (the daemon's) and .createMs (the client's call).
snapd_create() {
  local p=$1 t0; shift; t0=$(now_ms)
  DOC=$("$SNAPCTL" restores create --api "$SD_API" --snapshot fn --tenant acme --json "$@" 2>"$W/create.err") ||
    fail "snapctl restores create $*: $(tail -2 "$W/create.err" | tr '\n' ' ') $(tail -3 "$SD_LOG" | tr '\n' ' ')"
  rec "$p.createMs" $(($(now_ms) - t0))
  RID=$(ans "$DOC" 'a["id"]' | tr -d '"')
  rec "$p.readySeconds" "$(ans "$DOC" 'a.get("readySeconds")')"
  echo "  restore $RID: $(ans "$DOC" '" ".join(str(a.get(k)) for k in ("mode", "state", "socketPath", "path"))')"
}
# restore_figures PREFIX KEY...: top-level fields of the restore document DOC.
restore_figures() { local p=$1 k; shift; for k in "$@"; do rec "$p.$k" "$(ans "$DOC" "a.get('$k')")"; done; }
# timed_call PREFIX.KEY RUN JSON: call, its time in ms as the figure.
timed_call() { local t; t=$(now_ms); call "$2" "$3"; rec "$1" $(($(now_ms) - t)); }

# ==================================================================================================================
trap cleanup EXIT
trap 'ERROR="$STEP: interrupted"; exit 130' INT
trap 'ERROR="$STEP: terminated"; exit 143' TERM
mkdir -p "$W"; : >"$TSV"
for m in "$SD"/mounts/*; do   # a dead mount left by a snapd of a killed earlier run
  if mounted "$m"; then umount -l "$m" || fail "cannot unmount $m left by an earlier run"; fi
done
rm -rf "${W:?}"/{runs,mounts,store,keyring,logs,sd} "$W/zero.mem" "$SD_LOG"
mkdir -p "$W/runs" "$W/mounts" "$W/mnt" "$LOGS"

say_step preconditions "root, /dev/fuse, QEMU, snapctl, native/bin"
[ "$(id -u)" -eq 0 ] || fail "must run as root (FUSE mounts, userfaultfd for QEMU under KVM)"
[ -c /dev/fuse ] || fail "/dev/fuse is missing: ChunkFs cannot mount"
command -v "$QEMU_PLAIN" >/dev/null || fail "$QEMU_PLAIN is missing (apt-get install qemu-system-x86)"
for f in "$SNAPCTL" "$SNAPD" "$QEMU_UFFD" "$QEMU_FILE"; do [ -x "$f" ] || fail "$f is missing (./scripts/setup.sh builds it)"; done
for m in "$W"/mnt/*; do   # a dead mount left by a killed earlier run
  if mounted "$m"; then umount -l "$m" || fail "cannot unmount $m left by an earlier run"; fi
done
rec host.qemu "$("$QEMU_PLAIN" --version | head -1)"
rec host.kernel "$(uname -r)"

say_step build "guest assets, snapshots, layers"
t=$(now_ms); timeout 1200 "$HERE/build.sh" || fail "guest/build.sh"; rec durations.guestBuildMs $(($(now_ms) - t))
RUNDIRS+=("$SNAPS/run")   # make-snapshots stops its QEMU itself; this covers a timeout that kills it
t=$(now_ms); timeout 900 "$VM" make-snapshots "$SNAPS" || fail "vm.sh make-snapshots"
rec durations.makeSnapshotsMs $(($(now_ms) - t))
rm -f "$SNAPS/run/ram.mem"
t=$(now_ms)
"$SNAPCTL" init --store "$W/store" > /dev/null || fail "snapctl init"
timeout 600 "$SNAPCTL" build "${STORE[@]}" --name os --layer os --memory "$SNAPS/os/memory" --json >"$W/build-os.json" \
  || fail "snapctl build os"
timeout 600 "$SNAPCTL" build "${STORE[@]}" --name fn --parent os --holes-are-zero --tenant acme --memory "$FN/memory" --json >"$W/build-fn.json" \
  || fail "snapctl build fn"
rec durations.snapctlBuildMs $(($(now_ms) - t))
for l in os fn; do
  figures "$W/build-$l.json" "build.$l" chunks zeroChunks inheritedChunks dedupedChunks newChunks uploadedBytes
done
# share=off at boot leaves the RAM file all zeros and every restore would still "work" (the stream fills RAM).
[ "$(jf "$W/build-fn.json" 'j["zeroChunks"] < j["chunks"]')" = true ] ||
  fail "the function layer's build reports every chunk zero: the snapshot's RAM is not in its memory file (share=off at boot?)"
expect 'build.fn.zeroChunks < build.fn.chunks'
expect 'build.fn.inheritedChunks > 0'
WANT1=$(cd "$HERE" && "$PY" -B -c 'import json, handler; print(json.dumps(handler.work(2000, 7)))')
WANT2=$(cd "$HERE" && "$PY" -B -c 'import json, handler; print(json.dumps(handler.work(1500, 11)))')
truncate -s "$(stat -c %s "$FN/memory")" "$W/zero.mem"   # the placeholder QEMU gets instead of the RAM file

say_step uffd "recorded restore from the all-zero placeholder, balloon cycle"
handler_start "$W/runs/uffd1" --record "$LOGS/uffd1.log"
uffd_restore uffd1
session "$RUN" uffd full
stop_qemu "$RUN"
handler_end uffd 15
expect 'uffd.ping == true'
expect 'uffd.work == true'
expect 'uffd.workAfterBalloon == true'
expect 'uffd.churnOk == true'
expect 'uffd.heapOk == true'
expect 'uffd.balloonDropMiB == 64'
expect 'uffd.outcome == "exited"'
expect 'uffd.handlerExitCode == 0'
expect 'uffd.faults > 0'
expect 'uffd.removeEvents > 0'
expect 'uffd.vmmPidIsQemu == true'

say_step uffdSecond "second recorded restore; kill (i): QEMU SIGKILLed during an invocation"
handler_start "$W/runs/uffd2" --record "$LOGS/uffd2.log"
uffd_restore uffd2
session "$RUN" uffd.second short
invoke "$RUN" "$WORK1" & inv=$!
sleep 0.1; kill -KILL "$QPID"
handler_end kills.qemuKilled 15
if wait "$inv"; then rec kills.qemuKilled.invokeAnswered true; else rec kills.qemuKilled.invokeAnswered false; fi
for k in faults outcome; do rec "uffd.second.$k" "$(jf "$RUN/handler.json" "j.get('$k')")"; done
expect 'uffd.second.work == true'
expect 'uffd.second.work2 == true'
expect 'uffd.second.heapOk == true'
expect 'kills.qemuKilled.handlerExited == true'
expect 'kills.qemuKilled.handlerExitMs < 10000'
expect 'kills.qemuKilled.outcome == "exited"'
expect 'kills.qemuKilled.vmmPidIsQemu == true'

say_step chunkfs "recorded mount, qemu-file restore, balloon cycle"
mount_start fuse1 --record "$LOGS/fuse1.log"
file_restore fuse1 "$QEMU_FILE"
session "$RUN" chunkfs full
stop_qemu "$RUN"
mount_stop chunkfs
expect 'chunkfs.ping == true'
expect 'chunkfs.work == true'
expect 'chunkfs.workAfterBalloon == true'
expect 'chunkfs.churnOk == true'
expect 'chunkfs.heapOk == true'
expect 'chunkfs.balloonDropMiB == 64'
expect 'chunkfs.reads > 0'
expect 'chunkfs.readErrors == 0'
expect 'chunkfs.readAheadBytes == 0'
expect 'chunkfs.mountExitCode == 0'
expect 'chunkfs.unmounted == true'

say_step chunkfsSecond "second recorded mount (ping, work, work): the baseline for prefetch"
mount_start fuse2 --record "$LOGS/fuse2.log"
file_restore fuse2 "$QEMU_FILE"
session "$RUN" chunkfs.second short
stop_qemu "$RUN"
mount_stop chunkfs.second
expect 'chunkfs.second.work == true'
expect 'chunkfs.second.work2 == true'
expect 'chunkfs.second.heapOk == true'
expect 'chunkfs.second.readErrors == 0'

say_step concurrent "one mount, three restores: plain QEMU (hugepage advice), then two qemu-file QEMUs at once"
mount_start shared --no-prefetch
file_restore plain "$QEMU_PLAIN"
session "$RUN" chunkfs.plainQemu short
stop_qemu "$RUN"
c1=$W/runs/concurrent1 c2=$W/runs/concurrent2
RUNDIRS+=("$c1" "$c2")
T0=$(now_ms)
QEMU=$QEMU_FILE "$VM" restore "$FN" "$c1" "$MNT/fn" >"$W/runs/c1.out" 2>&1 & r1=$!
QEMU=$QEMU_FILE "$VM" restore "$FN" "$c2" "$MNT/fn" >"$W/runs/c2.out" 2>&1 & r2=$!
wait "$r1" || fail "concurrent restore 1: $(tail -2 "$W/runs/c1.out" | tr '\n' ' ')"
wait "$r2" || fail "concurrent restore 2: $(tail -2 "$W/runs/c2.out" | tr '\n' ' ')"
q1=$(qemu_pid "$c1") q2=$(qemu_pid "$c2")
rec concurrent.restoreMs $(($(now_ms) - T0))
invs=()
for r in "$c1" "$c2"; do (invoke "$r" "$WORK1" && echo "$ANSWER" >"$r/work.answer") & invs+=($!); done
both=false; alive "$q1" && alive "$q2" && both=true
rec concurrent.bothRunning "$both"
for i in "${invs[@]}"; do wait "$i" || true; done
for i in 1 2; do
  a=$(cat "$W/runs/concurrent$i/work.answer" 2>/dev/null || echo '{}')
  rec "concurrent.work$i" "$(ans "$a" 'a.get("result") == W1')"
  rec "concurrent.heapOk$i" "$(ans "$a" 'a.get("heapOk") is True')"
done
rec concurrent.bothAnsweredMs $(($(now_ms) - T0))
stop_qemu "$c1"; stop_qemu "$c2"
mount_stop concurrent
expect 'chunkfs.plainQemu.work == true'
expect 'chunkfs.plainQemu.heapOk == true'
expect 'concurrent.bothRunning == true'
expect 'concurrent.work1 == true'
expect 'concurrent.work2 == true'
expect 'concurrent.heapOk1 == true'
expect 'concurrent.heapOk2 == true'
expect 'concurrent.readErrors == 0'
expect 'concurrent.mountExitCode == 0'

say_step mountKilled "kill (ii): snapctl mount SIGKILLed while its QEMU is being invoked"
mount_start victim --no-prefetch
KMNT=$MNT
file_restore victim "$QEMU_FILE"
session "$RUN" kills.mountKilled short
# churn allocates guest pages never read since the restore: the VM must fault on the file.
t=$(now_ms)
( invoke "$RUN" '{"id":8,"op":"churn","mib":64}' 30 ) & inv=$!
sleep 0.3; kill -KILL "$MPID"; tk=$(now_ms)
wait_dead "$MPID" 10 || fail "snapctl mount $MPID survived SIGKILL"
wait "$MPID" 2>/dev/null || true
rc=0; wait "$inv" || rc=$?
rec kills.mountKilled.inflightInvokeFailed "$([ "$rc" -ne 0 ] && echo true || echo false)"
rec kills.mountKilled.inflightInvokeMs $(($(now_ms) - t))
rec kills.mountKilled.inflightInvokeEndedAfterKillMs $(($(now_ms) - tk))
rec kills.mountKilled.qemuDiedByItself "$(alive "$QPID" && echo false || echo true)"
# If that invocation got by on cached pages, the next one needs pages the kernel must read through the dead mount.
nextinv=skipped t=$(now_ms)
if alive "$QPID"; then
  if invoke "$RUN" '{"id":9,"op":"churn","mib":64}' 30; then nextinv=answered; else nextinv=failed; fi
fi
rec kills.mountKilled.nextInvoke "$nextinv"
rec kills.mountKilled.nextInvokeMs $(($(now_ms) - t))
rec kills.mountKilled.qemuState "$(state "$QPID")"
rec kills.mountKilled.qemuExitSignal "$(exit_signal "$QPID")"
mapfile -t ours < <(pgrep -f "$W/" || true)
rec kills.mountKilled.dStateTasks "$(stuck_d "$QPID" "${ours[@]}")"
# A dead mount answers at once (ENOTCONN), never blocks.
t=$(now_ms)
if timeout 10 stat "$KMNT/fn" >/dev/null 2>&1; then rec kills.mountKilled.deadMountErrors false
else rec kills.mountKilled.deadMountErrors true; fi
rec kills.mountKilled.deadMountStatMs $(($(now_ms) - t))
rec kills.mountKilled.deadMountLeft "$(mounted "$KMNT" && echo true || echo false)"
if alive "$QPID"; then kill -KILL "$QPID"; fi
rec kills.mountKilled.qemuGone "$(wait_dead "$QPID" 10 && echo true || echo false)"
expect 'kills.mountKilled.work == true'
expect 'kills.mountKilled.qemuDiedByItself == true or kills.mountKilled.inflightInvokeFailed == true or kills.mountKilled.nextInvoke == "failed"'
expect 'kills.mountKilled.nextInvoke != "answered"'
expect 'kills.mountKilled.inflightInvokeMs < 40000 and kills.mountKilled.nextInvokeMs < 40000'
expect 'kills.mountKilled.dStateTasks == 0'
expect 'kills.mountKilled.deadMountErrors == true'
expect 'kills.mountKilled.deadMountStatMs < 5000'
expect 'kills.mountKilled.qemuGone == true'

say_step plan "merge the four recorded logs into a plan, attach it with its pack"
for l in uffd1 uffd2 fuse1 fuse2; do
  [ -s "$LOGS/$l.log" ] || fail "no access log $LOGS/$l.log"
  rec "prefetch.logPages.$l" "$(log_pages "$LOGS/$l.log")"
done
timeout 300 "$SNAPCTL" log merge --json --out "$LOGS/fn.plan" --min-fraction 0.75 "$LOGS"/{uffd1,uffd2,fuse1,fuse2}.log \
  || fail "snapctl log merge"
rec prefetch.plan.minFraction 0.75
rec prefetch.plan.pages "$(log_pages "$LOGS/fn.plan")"
rec prefetch.plan.bytes "$(stat -c %s "$LOGS/fn.plan")"
timeout 300 "$SNAPCTL" log attach "${STORE[@]}" --name fn --tenant acme "$LOGS/fn.plan" >"$W/attach.out" 2>&1 \
  || fail "snapctl log attach: $(tail -2 "$W/attach.out")"
cat "$W/attach.out"
timeout 120 "$SNAPCTL" inspect "${STORE[@]}" --name fn.pack --json >"$W/pack.json" || fail "snapctl inspect fn.pack"
rec prefetch.plan.packChunks "$(jf "$W/pack.json" 'j["chain"][0]["chunks"]')"
rec prefetch.plan.packBytes "$(jf "$W/pack.json" 'j["chain"][0]["imageBytes"]')"
expect 'prefetch.plan.pages > 0'

say_step chunkfsPrefetch "ChunkFs with prefetch, on the directory of the killed mount (it must clear the dead one)"
MNT_SAVE=$KMNT
mount_start victim --read-ahead 0
[ "$MNT" = "$MNT_SAVE" ] || fail "internal: the prefetch mount is not on the killed mount's directory"
rec kills.mountKilled.nextMountCleared "$(grep -q 'cleared a dead ChunkFs mount' "$MDIR/mount.err" && echo true || echo false)"
file_restore fuse-prefetch "$QEMU_FILE"
session "$RUN" prefetch.chunkfs short
stop_qemu "$RUN"
mount_stop prefetch.chunkfs
rec kills.mountKilled.nextRestoreWork "$WORK_OK"
rec prefetch.chunkfs.readsWithout "$(jf "$W/mounts/fuse2/mount.json" 'j["files"][0]["reads"]')"
expect 'kills.mountKilled.nextMountCleared == true'
expect 'prefetch.chunkfs.work == true and prefetch.chunkfs.work2 == true'
expect 'prefetch.chunkfs.heapOk == true'
expect 'prefetch.chunkfs.readErrors == 0'
expect 'prefetch.chunkfs.prefetchedPages > 0'
expect 'prefetch.chunkfs.reads < chunkfs.second.reads'

say_step handlerKilled "kill (iii): snapctl restore SIGKILLed while its VM runs"
handler_start "$W/runs/frozen"
uffd_restore frozen
session "$RUN" kills.handlerKilled short
kill -KILL "$HPID"; wait_dead "$HPID" 10 || fail "snapctl restore $HPID survived SIGKILL"
wait "$HPID" 2>/dev/null || true
# The guest's next fault on a page never served waits for a handler that is gone: the VM freezes.
t=$(now_ms)
if invoke "$RUN" '{"id":8,"op":"churn","mib":32}' 10; then rec kills.handlerKilled.invokeTimedOut false
else rec kills.handlerKilled.invokeTimedOut true; fi
rec kills.handlerKilled.invokeMs $(($(now_ms) - t))
rec kills.handlerKilled.qemuAliveFrozen "$(alive "$QPID" && echo true || echo false)"
rec kills.handlerKilled.dStateTasks "$(stuck_d "$QPID")"
kill -TERM "$QPID"
rec kills.handlerKilled.qemuIgnoredSigterm "$(wait_dead "$QPID" 3 && echo false || echo true)"
kill -KILL "$QPID" 2>/dev/null || true
rec kills.handlerKilled.qemuGoneAfterSigkill "$(wait_dead "$QPID" 10 && echo true || echo false)"
expect 'kills.handlerKilled.work == true'
expect 'kills.handlerKilled.invokeTimedOut == true'
expect 'kills.handlerKilled.qemuAliveFrozen == true'
expect 'kills.handlerKilled.dStateTasks == 0'
expect 'kills.handlerKilled.qemuGoneAfterSigkill == true'

say_step uffdPrefetch "uffd with prefetch (the next restore after the kill; fault-around 1, as the recorded baseline had)"
handler_start "$W/runs/uffd-prefetch" --fault-around 1
uffd_restore uffd-prefetch
session "$RUN" prefetch.uffd short
stop_qemu "$RUN"
handler_end prefetch.uffd 15
rec prefetch.uffd.faultsWithout "$(jf "$W/runs/uffd2/handler.json" 'j["faults"]')"
rec kills.handlerKilled.nextRestoreWork "$WORK_OK"
expect 'prefetch.uffd.work == true and prefetch.uffd.work2 == true'
expect 'prefetch.uffd.heapOk == true'
expect 'prefetch.uffd.outcome == "exited"'
expect 'prefetch.uffd.prefetchedPages > 0'
expect 'prefetch.uffd.faults < prefetch.uffd.faultsWithout'
expect 'kills.handlerKilled.nextRestoreWork == true'

say_step snapd "snapd: a uffd and a file restore through its API, then SIGKILL and restart under a running VM"
echo '{}' >"$W/snapd.json"   # its own (empty) settings file: never the host's /etc/snapd/snapd.json
snapd_start
rec snapd.startMs "$SD_UP_MS"
# (i) uffd: the VMM connects to the socket the API returned. No prefetch: every page the guest needs is a fault.
snapd_create snapd.uffd --mode uffd --no-prefetch
rec snapd.uffd.createdState "$(ans "$DOC" 'a.get("state")')"
uffd_restore snapd-uffd "$(ans "$DOC" 'a["socketPath"]' | tr -d '"')" "$SD_LOG"
session "$RUN" snapd.uffd short
DOC=$(api GET "/v1/restores/$RID") || fail "GET $RID"
rec snapd.uffd.stateWhileRunning "$(ans "$DOC" 'a.get("state")')"
rec snapd.uffd.faultsWhileRunning "$(ans "$DOC" 'a.get("faults")')"
rec snapd.uffd.vmmPidIsQemu "$(ans "$DOC" "a.get('vmmPid') == $QPID")"
stop_qemu "$RUN"; t=$(now_ms)
DOC=$(api_until "/v1/restores/$RID" 'r["state"] in ("exited", "failed")' 15 "$SDPID") ||
  fail "restore $RID not ended 15 s after its QEMU quit"
rec snapd.uffd.endedAfterQuitMs $(($(now_ms) - t))
restore_figures snapd.uffd state reason faults pagesCopied zeroPages faultLatencySeconds
expect 'snapd.uffd.createdState == "ready"'
expect 'snapd.uffd.ping == true and snapd.uffd.work == true and snapd.uffd.work2 == true'
expect 'snapd.uffd.heapOk == true'
expect 'snapd.uffd.stateWhileRunning == "serving"'
expect 'snapd.uffd.faultsWhileRunning > 0'
expect 'snapd.uffd.vmmPidIsQemu == true'
expect 'snapd.uffd.state == "exited"'
expect 'snapd.uffd.faults > 0'

# (ii) file: QEMU (as Firecracker's File backend) on the path the API returned, on the restore's own ChunkFs mount.
snapd_create snapd.file --mode file
FPATH=$(ans "$DOC" 'a["path"]' | tr -d '"')
MOUNTS+=("$(dirname "$FPATH")")
rec snapd.file.mountedWhenReady "$(mounted "$(dirname "$FPATH")" && echo true || echo false)"
file_restore snapd-file "$QEMU_FILE" "$FPATH"
session "$RUN" snapd.file short
DOC=$(api GET "/v1/restores/$RID") || fail "GET $RID"
rec snapd.file.stateWhileRunning "$(ans "$DOC" 'a.get("state")')"
stop_qemu "$RUN"
DOC=$("$SNAPCTL" restores rm --api "$SD_API" --json "$RID" 2>"$W/rm.err") ||
  fail "snapctl restores rm $RID: $(tail -2 "$W/rm.err" | tr '\n' ' ')"
restore_figures snapd.file reason tiers
rec snapd.file.deletedState "$(ans "$DOC" 'a.get("state")')"
rec snapd.file.unmounted "$(mounted "$(dirname "$FPATH")" && echo false || echo true)"
rec snapd.file.unknownAfterDelete "$(api GET "/v1/restores/$RID" >/dev/null 2>&1 && echo false || echo true)"
expect 'snapd.file.mountedWhenReady == true'
expect 'snapd.file.ping == true and snapd.file.work == true and snapd.file.work2 == true'
expect 'snapd.file.heapOk == true'
expect 'snapd.file.stateWhileRunning == "serving"'
expect 'snapd.file.deletedState == "exited"'
expect 'snapd.file.unmounted == true'
expect 'snapd.file.unknownAfterDelete == true'

# (iii) the VM outlives its daemon: SIGKILL snapd while the guest faults in an invocation (a churn over pages
# never served), start it again on the same state directory; it takes the VM back (pidfd_getfd) and serves on.
snapd_create snapd.restart --mode uffd --no-prefetch
uffd_restore snapd-restart "$(ans "$DOC" 'a["socketPath"]' | tr -d '"')" "$SD_LOG"
HEAP=true
call "$RUN" '{"id":1,"op":"ping"}'
timed_call snapd.restart.invokeColdMs "$RUN" "$WORK1"; rec snapd.restart.workCold "$(ans "$ANSWER" 'a.get("result") == W1')"
timed_call snapd.restart.invokeBeforeMs "$RUN" "$WORK1"; rec snapd.restart.workBefore "$(ans "$ANSWER" 'a.get("result") == W1')"
DOC=$(api GET "/v1/restores/$RID") || fail "GET $RID"
rec snapd.restart.faultsBeforeKill "$(ans "$DOC" 'a.get("faults")')"
rm -f "$RUN/churn.answer"
t=$(now_ms)
( invoke "$RUN" '{"id":8,"op":"churn","mib":32}' && echo "$ANSWER" >"$RUN/churn.answer" ) & inv=$!
sleep 0.3
rec snapd.restart.killedDuringInvoke "$(alive "$inv" && echo true || echo false)"
OLD_SDPID=$SDPID; kill -KILL "$SDPID"; tk=$(now_ms)
wait_dead "$SDPID" 10 || fail "snapd $SDPID survived SIGKILL"
wait "$SDPID" 2>/dev/null || true
rec snapd.restart.qemuAliveAfterKill "$(alive "$QPID" && echo true || echo false)"
snapd_start
rec snapd.restart.pidChanged "$([ "$SDPID" != "$OLD_SDPID" ] && echo true || echo false)"
rec snapd.restart.restartToAnswerMs "$SD_UP_MS"
# snapd takes its VMs back before its API listens: the first answer already has it serving.
DOC=$(api_until "/v1/restores/$RID" 'r["state"] != "ready"' 10 "$SDPID") || fail "restore $RID unknown after the restart"
rec snapd.restart.killToServingMs $(($(now_ms) - tk))
rec snapd.restart.stateAfterRestart "$(ans "$DOC" 'a.get("state")')"
rec snapd.restart.takenBackWhileServing "$(ans "$DOC" 'a.get("takenBack")')"
rc=0; wait "$inv" || rc=$?
rec snapd.restart.inflightInvokeMs $(($(now_ms) - t))
a=$(cat "$RUN/churn.answer" 2>/dev/null || echo '{}')
rec snapd.restart.inflightInvokeAnswered "$([ "$rc" -eq 0 ] && echo true || echo false)"
rec snapd.restart.inflightChurnOk "$(ans "$a" 'a.get("ok") is True and a.get("heapOk") is True and a.get("result", {}).get("churnOk") is True')"
timed_call snapd.restart.invokeAfterMs "$RUN" "$WORK1"; rec snapd.restart.workAfter "$(ans "$ANSWER" 'a.get("result") == W1')"
rec snapd.restart.heapOk "$HEAP"
DOC=$(api GET "/v1/restores/$RID") || fail "GET $RID"
rec snapd.restart.faultsAfterRestart "$(ans "$DOC" 'a.get("faults")')"
stop_qemu "$RUN"
DOC=$(api_until "/v1/restores/$RID" 'r["state"] in ("exited", "failed")' 15 "$SDPID") ||
  fail "restore $RID not ended 15 s after its QEMU quit"
restore_figures snapd.restart state reason takenBack faults vmmPid
rec snapd.restart.vmmPidIsQemu "$(ans "$DOC" "a.get('vmmPid') == $QPID")"
# SIGTERM with nothing left to serve: snapd exits 0 at once.
kill -TERM "$SDPID"; t=$(now_ms)
wait_dead "$SDPID" 20 || fail "snapd $SDPID still runs 20 s after SIGTERM"
rc=0; wait "$SDPID" || rc=$?
rec snapd.stopExitCode "$rc"; rec snapd.stopMs $(($(now_ms) - t))
rec snapd.mountsLeft "$(find "$SD/mounts" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
expect 'snapd.restart.workCold == true and snapd.restart.workBefore == true'
expect 'snapd.restart.faultsBeforeKill > 0'
expect 'snapd.restart.qemuAliveAfterKill == true'
expect 'snapd.restart.pidChanged == true'
expect 'snapd.restart.stateAfterRestart == "serving"'
expect 'snapd.restart.takenBackWhileServing == true'
expect 'snapd.restart.inflightInvokeAnswered == true'
expect 'snapd.restart.inflightChurnOk == true'
expect 'snapd.restart.workAfter == true'
expect 'snapd.restart.heapOk == true'
expect 'snapd.restart.faultsAfterRestart > 0'
expect 'snapd.restart.state == "exited"'
expect 'snapd.restart.takenBack == true'
expect 'snapd.restart.vmmPidIsQemu == true'
expect 'snapd.stopExitCode == 0'
expect 'snapd.mountsLeft == 0'

say_step placeholder "the placeholder QEMU was given is still all zeros (every byte the uffd guests saw came from a handler)"
rec uffd.placeholderStillZero "$(cmp -s -n "$(stat -c %s "$W/zero.mem")" "$W/zero.mem" /dev/zero && echo true || echo false)"
expect 'uffd.placeholderStillZero == true'
