#!/usr/bin/env bash
# guest/vm.sh - runs the real guest (guest/build.sh's kernel + initramfs) under QEMU microvm with its RAM in a
# file, snapshots it without putting RAM into the migration stream, and restores it from any memory file.
#
#   vm.sh boot RUNDIR                    cold boot, RAM = RUNDIR/ram.mem (share=on); waits for init's ready line
#   vm.sh snapshot RUNDIR SNAPDIR        device state -> SNAPDIR/vmstate, RAM file -> SNAPDIR/memory (sparse),
#                                        SNAPDIR/meta.json; then the VM goes on (cont)
#   vm.sh start-runtime RUNDIR [MIB]     start the function (python3 /handler.py, MIB MiB heap); waits for ready
#   vm.sh make-snapshots WORKDIR [MIB]   boot -> WORKDIR/os, start-runtime -> WORKDIR/function, all from ONE
#                                        boot (run dir WORKDIR/run), then stop
#   vm.sh restore SNAPDIR RUNDIR MEMFILE start QEMU on MEMFILE (share=off: MAP_PRIVATE, only read), load
#                                        SNAPDIR/vmstate, wait until running; prints launch->running ms
#   vm.sh invoke RUNDIR JSON             one request to the function; prints the answer's JSON on stdout
#   vm.sh balloon RUNDIR TARGET_MIB      balloon the guest to TARGET_MIB MiB of memory (256 - 64 = inflate 64)
#   vm.sh stop RUNDIR                    QMP quit, then SIGKILL the pid in RUNDIR/qemu.pid if it is still there
#
# Environment: MEM=256M (boot; a restore takes it from meta.json), QEMU=qemu-system-x86_64 (a command, may be a
# wrapper with arguments; the environment is passed through), GUEST_ASSETS=$ROOT/.work/guest, TIMEOUT=60
# (seconds: QMP waits, invoke, balloon), BOOT_TIMEOUT=120, RUNTIME_TIMEOUT=300.
# Accelerator: KVM only when /dev/kvm exists AND the CPU has vmx/svm (this project's hosts have a software
# /dev/kvm that cannot boot Linux), TCG otherwise; one line on stderr says which.
# Only the QEMU started for a RUNDIR is ever killed: by the pid in its pidfile, and only if that process's
# command line names RUNDIR's QMP socket (a recycled pid is left alone).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY=/usr/bin/python3                    # not a pyenv shim: those add 100s of ms per call
ASSETS="${GUEST_ASSETS:-$ROOT/.work/guest}"
TIMEOUT="${TIMEOUT:-60}" BOOT_TIMEOUT="${BOOT_TIMEOUT:-120}" RUNTIME_TIMEOUT="${RUNTIME_TIMEOUT:-300}"
read -ra QEMU_CMD <<<"${QEMU:-qemu-system-x86_64}"
# A device-state stream is ~50 KB. More than this means RAM went into it (share=off at boot by mistake).
MAX_VMSTATE=$((8 * 1000 * 1000))

die() { echo "vm.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
qmp() { "$PY" "$HERE/qmp.py" "$@"; }
serial() { "$PY" "$HERE/serial.py" "$@"; }
json_get() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# json_write FILE KEY=VALUE...: values that parse as JSON (numbers, true) stay typed, the rest are strings.
json_write() {
  "$PY" - "$@" <<'EOF'
import json, sys
out = {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
EOF
  mv "$1.tmp" "$1"
}
abspath() { realpath -m "$1"; }
# QEMU option values are comma-separated: a comma in a path would silently become another option.
check_path() { case $1 in *,*) die "path with a comma is not supported by QEMU options: $1" ;; esac; }

pick_accel() {
  if [ -e /dev/kvm ] && grep -Eqw 'vmx|svm' /proc/cpuinfo; then
    ACCEL=kvm; echo "vm.sh: accelerator kvm (/dev/kvm present and the CPU has vmx/svm)" >&2
  else
    ACCEL=tcg; echo "vm.sh: accelerator tcg (no /dev/kvm or no vmx/svm in /proc/cpuinfo)" >&2
  fi
}
accel_args() {
  case $1 in
    kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
    tcg) ACCEL_ARGS=(-accel tcg -cpu max) ;;
    *) die "unknown accelerator $1" ;;
  esac
}

# The kernel command line. microvm has no PIT/HPET/ACPI PM timer to calibrate the TSC against, and under TCG
# the calibration can hang: give the kernel the host's TSC rate and loops-per-jiffy (HZ=250) up front.
# pci=off: microvm has no PCI (saves a "Fatal" message). quiet: the console carries the protocol.
make_append() {
  local khz; khz=$(awk '/^cpu MHz/{printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
  echo "console=ttyS0 reboot=k panic=-1 quiet pci=off tsc_early_khz=$khz lpj=$((khz * 4)) tsc=reliable"
}

# launch RUNDIR MEMFILE SHARE [EXTRA...]: start QEMU daemonized. Needs MEM ACCEL KERNEL INITRD APPEND.
# The device set is the same for boot and every restore (a restore needs the same machine).
launch() {
  local rundir=$1 memfile=$2 share=$3; shift 3
  check_path "$rundir"; check_path "$memfile"; check_path "$KERNEL"; check_path "$INITRD"
  accel_args "$ACCEL"
  local args=(-M "microvm,memory-backend=mem" "${ACCEL_ARGS[@]}" -smp 1 -m "$MEM"
    -object "memory-backend-file,id=mem,size=$MEM,mem-path=$memfile,share=$share"
    -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
    -nodefaults -no-user-config -display none -no-reboot
    -device virtio-balloon-device
    -chardev "socket,id=ser0,path=$rundir/serial.sock,server=on,wait=off,logfile=$rundir/serial.log"
    -serial chardev:ser0
    -qmp "unix:$rundir/qmp.sock,server=on,wait=off"
    -daemonize -pidfile "$rundir/qemu.pid" "$@")
  printf '%q ' "${QEMU_CMD[@]}" "${args[@]}" >"$rundir/qemu.cmdline"; echo >>"$rundir/qemu.cmdline"
  # -daemonize: the command returns once QEMU is set up; timeout bounds only that part.
  timeout 60 "${QEMU_CMD[@]}" "${args[@]}" || die "QEMU did not start (command: $rundir/qemu.cmdline)"
  [ -s "$rundir/qemu.pid" ] || die "QEMU wrote no pid file in $rundir"
}

# The QEMU of RUNDIR, if it runs: its pid, checked against its command line so a recycled pid never counts.
our_pid() {
  local rundir=$1 pid
  pid=$(cat "$rundir/qemu.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$rundir/qmp.sock" || return 1
  echo "$pid"
}
need_running() { our_pid "$1" >/dev/null || die "no VM running in $1"; }
load_vm() { # the run's parameters, written by boot/restore
  local f=$1/vm.json
  [ -f "$f" ] || die "$f missing (not started by vm.sh?)"
  MEM=$(json_get "$f" mem); ACCEL=$(json_get "$f" accel); KERNEL=$(json_get "$f" kernel)
  INITRD=$(json_get "$f" initrd); APPEND=$(json_get "$f" append); MEMFILE=$(json_get "$f" memfile)
}
save_vm() { json_write "$1/vm.json" mem="$MEM" accel="$ACCEL" kernel="$KERNEL" initrd="$INITRD" append="$APPEND" memfile="$2"; }
fresh_rundir() {
  local rundir=$1
  mkdir -p "$rundir"
  if our_pid "$rundir" >/dev/null; then die "a VM is already running in $rundir (vm.sh stop $rundir)"; fi
  rm -f "$rundir"/{serial.log,serial.sock,qmp.sock,qemu.pid,vm.json,guest.state,qemu.cmdline,qemu.version}
}

# The guest's CLOCK_MONOTONIC now, asked of whoever owns the console (init or the runtime).
guest_mono() {
  local rundir=$1
  case $(cat "$rundir/guest.state") in
    init) serial --timeout "$TIMEOUT" command "$rundir/serial.sock" mono "@@INIT mono " ;;
    runtime) serial --timeout "$TIMEOUT" request "$rundir/serial.sock" '{"op":"ping","verify":false}' \
               | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["mono"])' ;;
  esac
}

cmd_boot() {
  [ $# -eq 1 ] || die "usage: vm.sh boot RUNDIR"
  local rundir; rundir=$(abspath "$1")
  MEM=${MEM:-256M} KERNEL=$ASSETS/vmlinux INITRD=$ASSETS/initramfs.cpio.gz
  [[ -f $KERNEL && -f $INITRD ]] || die "no guest in $ASSETS: run guest/build.sh first"
  fresh_rundir "$rundir"
  rm -f "$rundir/ram.mem"        # a fresh, sparse RAM file: untouched pages stay holes
  pick_accel; APPEND=$(make_append)
  local t0 line; t0=$(now_ms)
  # BOOT_SHARE=off exists only to prove the snapshot guard (RAM then goes into the stream); never use it.
  launch "$rundir" "$rundir/ram.mem" "${BOOT_SHARE:-on}"
  save_vm "$rundir" "$rundir/ram.mem"
  "${QEMU_CMD[@]}" --version | head -1 >"$rundir/qemu.version" || true   # for the snapshots' meta.json
  if ! line=$(serial --timeout "$BOOT_TIMEOUT" wait-log "$rundir/serial.log" "@@INIT ready "); then
    cmd_stop "$rundir" >&2; die "the guest did not get ready in ${BOOT_TIMEOUT}s (log: $rundir/serial.log)"
  fi
  echo init >"$rundir/guest.state"
  echo "boot: init ready $(($(now_ms) - t0)) ms after launch ($line), pid $(our_pid "$rundir")"
}

cmd_snapshot() {
  [ $# -eq 2 ] || die "usage: vm.sh snapshot RUNDIR SNAPDIR"
  local rundir snapdir; rundir=$(abspath "$1") snapdir=$(abspath "$2")
  need_running "$rundir"; load_vm "$rundir"
  mkdir -p "$snapdir"; rm -f "$snapdir"/{vmstate,memory,meta.json,migrate.json}
  local kind mono t0 t1 t2 t3 size rc=0
  kind=$(cat "$rundir/guest.state")
  # Dated just before the pause; the guest runs on for the few ms until the migration stops it.
  mono=$(guest_mono "$rundir") || die "the guest did not answer before the snapshot"
  t0=$(now_ms)
  qmp --timeout "$TIMEOUT" "$rundir/qmp.sock" save "$snapdir/vmstate.part" >"$snapdir/migrate.json" || rc=$?
  t1=$(now_ms)
  # From here the VM is paused (postmigrate): copy its RAM file while nothing writes it, then let it go on.
  size=$(stat -c %s "$snapdir/vmstate.part" 2>/dev/null || echo 0)
  if [ "$rc" -eq 0 ] && [ "$size" -le "$MAX_VMSTATE" ]; then
    cp --sparse=always "$MEMFILE" "$snapdir/memory.part" || rc=$?
  fi
  t2=$(now_ms)
  # QEMU 7.2 allows postmigrate -> running: `cont` after a completed migration resumes the VM, so both
  # snapshots come from one boot. Checked: qmp.py waits for "running", and the guest must answer below.
  qmp --timeout "$TIMEOUT" "$rundir/qmp.sock" cont >/dev/null || die "cont after the snapshot failed"
  t3=$(now_ms)
  if [ "$rc" -ne 0 ]; then rm -f "$snapdir"/*.part; die "snapshot failed (see $snapdir/migrate.json)"; fi
  if [ "$size" -gt "$MAX_VMSTATE" ]; then
    rm -f "$snapdir"/*.part
    die "device state is $size bytes (> $MAX_VMSTATE): guest RAM went into the stream. The RAM backend must be share=on (boot with vm.sh boot); snapshot refused"
  fi
  local after; after=$(guest_mono "$rundir") || die "the guest does not answer after cont"
  mv "$snapdir/vmstate.part" "$snapdir/vmstate"; mv "$snapdir/memory.part" "$snapdir/memory"
  json_write "$snapdir/meta.json" kind="$kind" mono="$mono" mem="$MEM" accel="$ACCEL" \
    kernel="$KERNEL" initrd="$INITRD" append="$APPEND" vmstate_bytes="$size" \
    qemu="$(cat "$rundir/qemu.version" 2>/dev/null || echo unknown)" created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "snapshot $kind: device state $((t1 - t0)) ms ($size bytes), memory copy $((t2 - t1)) ms" \
       "($(du -k "$snapdir/memory" | cut -f1) KiB allocated), paused $((t3 - t0)) ms; guest mono $mono -> $after after cont"
}

cmd_start_runtime() {
  [[ $# -ge 1 && $# -le 2 ]] || die "usage: vm.sh start-runtime RUNDIR [HEAP_MIB]"
  local rundir line t0; rundir=$(abspath "$1")
  need_running "$rundir"
  [ "$(cat "$rundir/guest.state")" = init ] || die "the runtime already runs in $rundir"
  t0=$(now_ms)
  line=$(serial --timeout "$RUNTIME_TIMEOUT" command "$rundir/serial.sock" "start ${2:-}" "@@READY ") \
    || die "the runtime did not get ready in ${RUNTIME_TIMEOUT}s (log: $rundir/serial.log)"
  echo runtime >"$rundir/guest.state"
  echo "runtime: ready $(($(now_ms) - t0)) ms after start: $line"
}

cmd_make_snapshots() {
  [[ $# -ge 1 && $# -le 2 ]] || die "usage: vm.sh make-snapshots WORKDIR [HEAP_MIB]"
  local w; w=$(abspath "$1")
  mkdir -p "$w"; rm -rf "$w/os" "$w/function"
  # Whatever happens, the QEMU this command started does not outlive it.
  trap 'cmd_stop "'"$w/run"'" >/dev/null 2>&1 || true' EXIT
  cmd_boot "$w/run"
  cmd_snapshot "$w/run" "$w/os"
  cmd_start_runtime "$w/run" "${2:-}"
  cmd_snapshot "$w/run" "$w/function"
  cmd_stop "$w/run"
  trap - EXIT
  echo "snapshots: $w/os (after boot), $w/function (runtime initialised)"
}

cmd_restore() {
  [ $# -eq 3 ] || die "usage: vm.sh restore SNAPDIR RUNDIR MEMFILE"
  local snapdir rundir memfile; snapdir=$(abspath "$1") rundir=$(abspath "$2") memfile=$(abspath "$3")
  local meta=$snapdir/meta.json
  [[ -f $meta && -f $snapdir/vmstate ]] || die "$snapdir is not a snapshot (meta.json, vmstate)"
  MEM=$(json_get "$meta" mem) KERNEL=$(json_get "$meta" kernel) INITRD=$(json_get "$meta" initrd)
  APPEND=$(json_get "$meta" append)
  [[ -f $KERNEL && -f $INITRD ]] || die "the snapshot's kernel/initrd are gone ($KERNEL, $INITRD)"
  pick_accel
  [ "$ACCEL" = "$(json_get "$meta" accel)" ] || die "snapshot taken under $(json_get "$meta" accel), this host gives $ACCEL"
  # QEMU silently creates a missing mem-path (zero-filled) and would run the guest on zeros.
  [ -f "$memfile" ] || die "memory file $memfile does not exist"
  [ "$(stat -L -c %s "$memfile")" -eq "$(numfmt --from=iec "$MEM")" ] || die "memory file $memfile is not $MEM"
  fresh_rundir "$rundir"
  local t0 t1 t2 r; t0=$(now_ms)
  launch "$rundir" "$memfile" off -incoming defer
  t1=$(now_ms)
  save_vm "$rundir" "$memfile"
  json_get "$meta" kind >"$rundir/guest.state"
  if ! r=$(qmp --timeout "$TIMEOUT" "$rundir/qmp.sock" load "$snapdir/vmstate"); then
    cmd_stop "$rundir" >&2; die "restore failed"
  fi
  t2=$(now_ms)
  echo "restore: launch->running $((t2 - t0)) ms (QEMU start $((t1 - t0)) ms, device state->running $((t2 - t1)) ms), pid $(our_pid "$rundir"); $r"
}

cmd_invoke() {
  [ $# -eq 2 ] || die "usage: vm.sh invoke RUNDIR JSON"
  local rundir; rundir=$(abspath "$1")
  need_running "$rundir"
  [ "$(cat "$rundir/guest.state")" = runtime ] || die "no runtime in $rundir (vm.sh start-runtime)"
  serial --timeout "$TIMEOUT" request "$rundir/serial.sock" "$2"
}

cmd_balloon() {
  [ $# -eq 2 ] || die "usage: vm.sh balloon RUNDIR TARGET_MIB"
  local rundir; rundir=$(abspath "$1")
  need_running "$rundir"
  echo "balloon: $(qmp --timeout "$TIMEOUT" "$rundir/qmp.sock" balloon "$2")"
}

cmd_stop() {
  [ $# -eq 1 ] || die "usage: vm.sh stop RUNDIR"
  local rundir pid _; rundir=$(abspath "$1")
  if ! pid=$(our_pid "$rundir"); then echo "stop: no VM running in $rundir"; return 0; fi
  # A polite quit first; a QEMU frozen in a page fault (its memory server gone) ignores it, and SIGTERM too.
  # (No answer to quit within 3 s: no point waiting for it to exit.)
  if qmp --timeout 3 "$rundir/qmp.sock" quit >/dev/null 2>&1; then
    for _ in $(seq 50); do our_pid "$rundir" >/dev/null || break; sleep 0.1; done
  fi
  if our_pid "$rundir" >/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do our_pid "$rundir" >/dev/null || break; sleep 0.1; done
    our_pid "$rundir" >/dev/null && die "QEMU $pid survived SIGKILL"
    echo "stop: QEMU $pid killed (SIGKILL)"
  else
    echo "stop: QEMU $pid quit"
  fi
}

cmd=${1:-}; shift || true
case $cmd in
  boot) cmd_boot "$@" ;;
  snapshot) cmd_snapshot "$@" ;;
  start-runtime) cmd_start_runtime "$@" ;;
  make-snapshots) cmd_make_snapshots "$@" ;;
  restore) cmd_restore "$@" ;;
  invoke) cmd_invoke "$@" ;;
  balloon) cmd_balloon "$@" ;;
  stop) cmd_stop "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
