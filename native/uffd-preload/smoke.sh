#!/usr/bin/env bash
# smoke.sh: a real Linux guest restored under QEMU with its RAM served by `snapctl restore` over userfaultfd,
# QEMU playing Firecracker's Uffd backend through native/bin/qemu-uffd (docs/loader.md).
#
#   native/uffd-preload/smoke.sh        (root; after ./scripts/setup.sh or make -C native + bin/snapctl)
#
# 1. guest assets in $SMOKE_DIR/guest (cached): Debian's kernel (uncompressed vmlinux, PVH entry), a busybox
#    initramfs running guest-ticker.c;
# 2. boot (TCG, RAM in a file, share=on), snapshot with x-ignore-shared (device state only), quit;
# 3. snapctl build of the RAM file into a directory store;
# 4. a plain-file restore (share=off), the ceiling for timing;
# 5. two uffd restores from an all-zero placeholder: the guest must tick on with bad=0; the first goes through a
#    virtio-balloon inflate/deflate (REMOVE events) and ends with QMP quit, the second ends with SIGKILL, and
#    snapctl restore must exit by itself each time, its JSON showing the faults it served;
# 6. two failures that must stop QEMU's start loudly: no handler on the socket, a handshake the handler refuses.
# Every process it starts is stopped by its pid on exit. Env: SMOKE_DIR (default .work/uffd-smoke), TICKS (ticks
# to watch after a restore, default 4), TIMEOUT (seconds per wait, default 60).
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
W=$(realpath -m "${SMOKE_DIR:-$ROOT/.work/uffd-smoke}")
MEM=256M TICKS=${TICKS:-4} TIMEOUT=${TIMEOUT:-60}
PY=/usr/bin/python3 SNAPCTL=$ROOT/bin/snapctl QEMU_UFFD=$ROOT/native/bin/qemu-uffd
STORE=(--store "$W/store" --keyring "$W/keyring")

started=()   # pids to stop on exit: snapctl restores and QEMUs (QEMU's from its -pidfile)
cleanup() { # only a pid whose command line still names this smoke's directory: never a reused pid
  for p in "${started[@]}"; do
    tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -qF "$W/" && kill -9 "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- guest assets ----
assets() {
  local g=$W/guest
  mkdir -p "$g"
  apt_need qemu-system-x86 busybox-static cpio xz-utils gcc libc6-dev python3
  local mods="virtio_ring virtio virtio_mmio virtio_balloon" m  # for the balloon; Debian builds them as modules
  if [ ! -s "$g/vmlinux" ] || [ ! -s "$g/modules/virtio_balloon.ko" ]; then
    say "fetching Debian's kernel (apt-get download)"
    local pkg; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    (cd "$g" && rm -rf x ./*.deb && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null &&
     dpkg-deb -x ./"$pkg"_*.deb x)
    # vmlinuz is a bzImage; the ELF inside (after the xz magic) has the PVH note microvm boots directly.
    $PY -c "import sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(d[d.find(b'\xfd7zXZ\x00'):])" \
      "$(ls "$g"/x/boot/vmlinuz-*)" | xz -dc > "$g/vmlinux.tmp" 2>/dev/null || true  # trailing data: expected
    readelf -n "$g/vmlinux.tmp" | grep -q 0x00000012 || fail "no PVH entry note in the extracted vmlinux"
    mkdir -p "$g/modules"
    for m in $mods; do cp "$(find "$g/x/lib/modules" -name "$m.ko")" "$g/modules/"; done
    mv "$g/vmlinux.tmp" "$g/vmlinux"; rm -rf "$g/x" "$g"/*.deb
  fi
  if [ ! -s "$g/initramfs.cpio.gz" ] || [ "$ROOT/native/uffd-preload/guest-ticker.c" -nt "$g/initramfs.cpio.gz" ] ||
     [ "${BASH_SOURCE[0]}" -nt "$g/initramfs.cpio.gz" ]; then
    local r=$g/root; rm -rf "$r"; mkdir -p "$r"/{bin,proc,sys,dev,lib}
    gcc -O2 -static -o "$r/bin/ticker" "$ROOT/native/uffd-preload/guest-ticker.c"
    cp /bin/busybox "$r/bin/"; for m in sh mount insmod; do ln -s busybox "$r/bin/$m"; done
    cp "$g"/modules/*.ko "$r/lib/"
    { echo '#!/bin/sh'; echo 'mount -t proc proc /proc'; echo 'mount -t devtmpfs devtmpfs /dev 2>/dev/null'
      for m in $mods; do echo "insmod /lib/$m.ko"; done
      echo 'exec /bin/ticker 64 4'; } > "$r/init"; chmod +x "$r/init"
    (cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -9) > "$g/initramfs.cpio.gz"
  fi
}

# ---- QEMU and QMP ----
qmp() { # SOCK (JSON | wait-migrate | wait-running)...
  "$PY" - "$@" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(500):
    try: s.connect(sys.argv[1]); break
    except OSError: time.sleep(0.01)
f = s.makefile('rw')
def reply():
    while True:
        m = json.loads(f.readline())
        if 'event' not in m: return m
def cmd(name, args=None):
    f.write(json.dumps({'execute': name, 'arguments': args or {}}) + '\n'); f.flush()
    r = reply()
    if 'error' in r: sys.exit('qmp %s: %s' % (name, r['error']))
    return r['return']
reply(); cmd('qmp_capabilities')
for a in sys.argv[2:]:
    if a == 'wait-migrate':
        while (r := cmd('query-migrate')).get('status') not in ('completed', 'failed', 'cancelled'): time.sleep(0.01)
        if r['status'] != 'completed': sys.exit('migration %s' % r['status'])
    elif a.startswith('wait-balloon:'):  # until the guest's balloon reaches the target (bytes)
        t = int(a.split(':')[1]); end = time.time() + 60
        while cmd('query-balloon')['actual'] != t:
            if time.time() > end: sys.exit('balloon: %d bytes, not %d' % (cmd('query-balloon')['actual'], t))
            time.sleep(0.05)
    elif a == 'wait-running':
        while cmd('query-status')['status'] != 'running': time.sleep(0.005)
    else:
        j = json.loads(a); cmd(j['execute'], j.get('arguments'))
PY
}
IGNORE_SHARED='{"execute":"migrate-set-capabilities",
  "arguments":{"capabilities":[{"capability":"x-ignore-shared","state":true}]}}'

# qemu RUNDIR MEMFILE SHARE [extra args]: starts QEMU daemonized with QEMU=... (default qemu-system-x86_64);
# returns QEMU's start status, records the pid.
qemu() {
  local run=$1 memfile=$2 share=$3 khz; shift 3
  khz=$(awk '/^cpu MHz/{printf "%d", $4*1000; exit}' /proc/cpuinfo)
  mkdir -p "$run"; rm -f "$run"/{serial.log,qmp.sock,qemu.pid}
  local rc=0
  timeout 30 "${QEMU:-qemu-system-x86_64}" -M microvm,memory-backend=mem -accel tcg -cpu max -smp 1 -m "$MEM" \
    -object memory-backend-file,id=mem,size="$MEM",mem-path="$memfile",share="$share" \
    -kernel "$W/guest/vmlinux" -initrd "$W/guest/initramfs.cpio.gz" \
    -append "console=ttyS0 reboot=k panic=-1 quiet tsc_early_khz=$khz lpj=$((khz*4)) tsc=reliable" \
    -device virtio-balloon-device -nodefaults -no-user-config -display none -serial file:"$run/serial.log" \
    -qmp unix:"$run/qmp.sock",server=on,wait=off -daemonize -pidfile "$run/qemu.pid" "$@" 2>"$run/qemu.err" || rc=$?
  [ -s "$run/qemu.pid" ] && started+=("$(cat "$run/qemu.pid")")
  return $rc
}
last_tick() { grep -a "^TICK" "$1/serial.log" 2>/dev/null | tail -1 | awk "{print \$2}" || true; }
wait_tick() { # RUNDIR AFTER: waits for a tick numbered above AFTER, prints its line
  local end=$(( $(date +%s) + TIMEOUT )) n
  while [ "$(date +%s)" -lt "$end" ]; do
    n=$(last_tick "$1")
    if [ -n "$n" ] && [ "$n" -gt "$2" ]; then grep -a "^TICK $n " "$1/serial.log" | tr -d '\r'; return 0; fi
    sleep 0.02
  done
  fail "no guest tick above $2 within ${TIMEOUT}s ($1/serial.log)"
}
wait_gone() { # PID SECONDS
  local end=$(( $(date +%s) + $2 ))
  while kill -0 "$1" 2>/dev/null; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.05; done
}
quit() { # RUNDIR: QMP quit, then wait for that QEMU to be gone (it removes its pidfile as it goes)
  local pid; pid=$(cat "$1/qemu.pid")
  qmp "$1/qmp.sock" '{"execute":"quit"}' || true
  wait_gone "$pid" 10 || fail "QEMU $pid ($1) did not quit"
}
check_ticks() { # RUNDIR AFTER: every tick after the restore has bad=0
  local bad; bad=$(grep -a '^TICK' "$1/serial.log" | tr -d '\r' | awk -v a="$2" '$2 > a && $4 != "bad=0"')
  [ -z "$bad" ] || fail "memory corruption after the restore: $bad"
}

# ---- the handler ----
handler_start() { # RUNDIR: snapctl restore in the background, until its ready line
  local run=$1 t0; mkdir -p "$run"; rm -f "$run/h.sock"; t0=$(now_ms)
  "$SNAPCTL" restore "${STORE[@]}" --name smoke --uffd-socket "$run/h.sock" --accept-timeout 60 --json \
    >"$run/handler.json" 2>"$run/handler.err" &
  HPID=$!; started+=("$HPID")
  local end=$(( $(date +%s) + TIMEOUT ))
  until grep -q "^snapctl: serving" "$run/handler.err"; do
    kill -0 "$HPID" 2>/dev/null || fail "snapctl restore exited: $(cat "$run/handler.err")"
    [ "$(date +%s)" -lt "$end" ] || fail "snapctl restore not ready within ${TIMEOUT}s"
    sleep 0.02
  done
  echo "  snapctl restore ready after $(( $(now_ms) - t0 )) ms"
}
field() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# ---------------------------------------------------------------------------------------------------------------
[ -x "$SNAPCTL" ] && [ -x "$QEMU_UFFD" ] || fail "build first: ./scripts/setup.sh (or make -C native and build_all)"
mkdir -p "$W"; assets

say "boot and snapshot"
rm -rf "${W:?}"/{boot,snap,store,keyring,plain,uffd1,uffd2,nosock,refused} "$W"/*.mem
qemu "$W/boot" "$W/boot.mem" on || fail "boot: $(cat "$W/boot/qemu.err")"
wait_tick "$W/boot" 1 >/dev/null
mkdir -p "$W/snap"
qmp "$W/boot/qmp.sock" "$IGNORE_SHARED" \
  "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $W/snap/vmstate\"}}" wait-migrate
LAST=$(last_tick "$W/boot"); LAST_MONO=$(grep -a "^TICK $LAST " "$W/boot/serial.log" | tr -d '\r' | awk '{print $3}')
quit "$W/boot"
vmstate=$(stat -c %s "$W/snap/vmstate")
# RAM in the stream would mean share=off at boot: the RAM file would be zeros and every restore would "work".
[ "$vmstate" -lt 4000000 ] || fail "vmstate is $vmstate bytes: guest RAM went into the stream"
echo "snapshot: vmstate $vmstate bytes, last tick $LAST ($LAST_MONO)"

say "snapctl build"
"$SNAPCTL" build "${STORE[@]}" --name smoke --memory "$W/boot.mem" --layer os --json > "$W/build.json"
echo "build: $(tr -d '\n ' < "$W/build.json" | cut -c1-300)"
truncate -s "$MEM" "$W/zero.mem"   # the all-zero placeholder QEMU is given instead of the RAM file
cmp -s "$W/zero.mem" "$W/boot.mem" && fail "the RAM file is all zeros"

restore() { # RUNDIR MEMFILE: incoming migration; sets T_LAUNCH T_RUN T_TICK FIRST
  local run=$1 t0; t0=$(now_ms)
  qemu "$run" "$2" off -incoming defer || return 1
  T_LAUNCH=$(( $(now_ms) - t0 ))
  qmp "$run/qmp.sock" "$IGNORE_SHARED" \
    "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"exec:cat $W/snap/vmstate\"}}" wait-running
  T_RUN=$(( $(now_ms) - t0 ))
  FIRST=$(wait_tick "$run" "$LAST"); T_TICK=$(( $(now_ms) - t0 ))
  wait_tick "$run" $(( LAST + TICKS )) >/dev/null
  check_ticks "$run" "$LAST"
  echo "  launch ${T_LAUNCH} ms, running ${T_RUN} ms, first tick ${T_TICK} ms: $FIRST; $TICKS more ticks bad=0"
}

say "restore from the plain RAM file (share=off): the ceiling"
restore "$W/plain" "$W/boot.mem" || fail "plain restore: $(cat "$W/plain/qemu.err")"
quit "$W/plain"

for run in uffd1 uffd2; do
  say "restore through qemu-uffd from the zero placeholder, served by snapctl restore ($run)"
  handler_start "$W/$run"
  SNAP_UFFD_SOCKET="$W/$run/h.sock" SNAP_UFFD_MEM_PATH="$W/zero.mem" SNAP_UFFD_VERBOSE=1 QEMU=$QEMU_UFFD \
    restore "$W/$run" "$W/zero.mem" || fail "$run: QEMU did not start: $(cat "$W/$run/qemu.err")"
  qpid=$(cat "$W/$run/qemu.pid")
  if [ $run = uffd1 ]; then
    # The REMOVE path: QEMU discards each page the balloon takes (fallocate punch on the memfd, then
    # MADV_DONTNEED: a REMOVE event each); after the deflate the guest's churn allocates them again.
    n=$(last_tick "$W/$run")
    qmp "$W/$run/qmp.sock" '{"execute":"balloon","arguments":{"value":201326592}}' wait-balloon:201326592 \
      '{"execute":"balloon","arguments":{"value":268435456}}' wait-balloon:268435456 || fail "$run: balloon cycle"
    wait_tick "$W/$run" $(( $(last_tick "$W/$run") + TICKS )) >/dev/null
    check_ticks "$W/$run" "$LAST"
    echo "  balloon inflated by 64 MiB and deflated (ticks $n-$(last_tick "$W/$run")): every tick bad=0"
    quit "$W/$run"; how="QMP quit"
  else kill -9 "$qpid"; how="SIGKILL"; fi
  wait_gone "$HPID" 15 || fail "$run: snapctl restore did not exit after QEMU's $how"
  wait "$HPID" || true
  sed 's/^/  qemu: /' "$W/$run/qemu.err"
  j=$W/$run/handler.json
  [ -s "$j" ] || fail "$run: no JSON from snapctl restore: $(cat "$W/$run/handler.err")"
  [ "$(field "$j" vmmPid)" = "$qpid" ] || fail "$run: handler's VMM pid $(field "$j" vmmPid) is not QEMU's $qpid"
  [ "$(field "$j" outcome)" = exited ] || fail "$run: outcome $(field "$j" outcome): $(field "$j" reason)"
  faults=$(field "$j" faults); [ "$faults" -gt 0 ] || fail "$run: no faults served"
  echo "  after $how: snapctl restore exited; vmmPid $qpid (QEMU's -pidfile), faults $faults," \
    "pages copied $(field "$j" pagesCopied), zero pages $(field "$j" zeroPages), chunks $(field "$j" chunksLoaded)," \
    "fault p50 $(field "$j" faultP50Us) us, REMOVE events $(field "$j" removeEvents) ($(field "$j" removedPages) pages)"
  [ $run = uffd2 ] || [ "$(field "$j" removeEvents)" -gt 0 ] || fail "$run: the balloon sent no REMOVE events"
done

say "failures must stop QEMU's start"
if SNAP_UFFD_SOCKET="$W/nosock/none.sock" SNAP_UFFD_MEM_PATH="$W/zero.mem" QEMU=$QEMU_UFFD \
   qemu "$W/nosock" "$W/zero.mem" off -incoming defer; then fail "QEMU started with no handler"; fi
grep -q "snap-uffd-preload.*no uffd handler" "$W/nosock/qemu.err" || fail "no message: $(cat "$W/nosock/qemu.err")"
echo "  no handler: QEMU refused to start: $(grep -m1 snap-uffd-preload "$W/nosock/qemu.err")"
# A 512 MiB region for a 256 MiB snapshot: the handler refuses the handshake and kills the VMM.
handler_start "$W/refused"
if MEM=512M SNAP_UFFD_SOCKET="$W/refused/h.sock" SNAP_UFFD_MEM_PATH="$W/refused/none.mem" SNAP_UFFD_MEM_SIZE=512M \
   QEMU=$QEMU_UFFD qemu "$W/refused" "$W/refused/none.mem" off -incoming defer; then
  fail "QEMU started although the handler refused its handshake"
fi
wait_gone "$HPID" 15 || fail "snapctl restore did not exit after refusing"
[ "$(field "$W/refused/handler.json" outcome)" = failed ] ||
  fail "the handler did not refuse: $(cat "$W/refused/handler.err")"
[ ! -e "$W/refused/none.mem" ] || fail "QEMU created its mem-path: the preload did not stand in for it"
echo "  refused handshake: QEMU's start failed (killed by the handler): $(field "$W/refused/handler.json" reason)"
say "smoke passed"
