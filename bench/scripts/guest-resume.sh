#!/usr/bin/env bash
# The real guest (guest/: Debian kernel + python3 runtime under QEMU microvm, TCG here) resumed from its function
# snapshot to its first answer, by each loader, from each tier, side by side in one run:
#   ceiling   the RAM file on local disk (QEMU maps it privately; page cache warm)
#   uffd      `snapctl restore` over userfaultfd (QEMU as Firecracker's Uffd backend: native/bin/qemu-uffd)
#   chunkfs   `snapctl mount` (QEMU mapping the ChunkFs file as Firecracker's File backend: native/bin/qemu-file)
# each without and with prefetch (a plan merged from recorded restores of both loaders, attached with its pack),
# from the local disk cache (warm), from a warm Redis Cluster (no local cache), and from s3rver alone.
# Figures: launch to first answer (wall, ms) and the guest's own clock at that answer minus its clock at the
# snapshot (it runs only while the VM runs: the stall the guest saw, immune to launch noise). Then read
# amplification per loader (bytes fetched and installed vs pages touched) with and without the read-ahead control,
# and the function layer's dedup. Starts and stops its own s3rver (port 4660) and Redis Cluster (7160-7164), by pid.
# Usage: [TIERS="local redis s3"] bench/scripts/guest-resume.sh [REPS]   (writes bench/results/chunkfs-guest.md and its logs to bench/traces/)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${1:-3}
TIERS=${TIERS:-local redis s3}   # a subset for a quick look, e.g. TIERS=local
apt_need jq gcc make redis-server redis-tools qemu-system-x86 busybox-static cpio xz-utils fuse3
publish_snapctl
make -s -C "$ROOT/native"
make_workdir guestresume
PY=/usr/bin/python3 VM="$ROOT/guest/vm.sh" S="$SNAPCTL"
export S3_PORT=4660 S3_STATE="$WORK/s3rver" REDIS_BASE_PORT=7160 REDIS_MASTERS=5 REDIS_STATE="$WORK/redis"
pids=() mounts=()
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for d in "$WORK"/run.*; do [ -d "$d" ] && "$VM" stop "$d" >/dev/null 2>&1 || true; done
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  "$ROOT/scripts/services/s3rver.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/services/redis-cluster.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop_all EXIT
"$ROOT/scripts/services/s3rver.sh" start > /dev/null
"$ROOT/scripts/services/redis-cluster.sh" start > /dev/null
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_EC2_METADATA_DISABLED=true
export SNAPSHOTS_STORE="s3://bench/guest?endpoint=http://127.0.0.1:$S3_PORT" SNAPSHOTS_KEYRING="$WORK/keys"
REDIS="redis://$(seq -s, -f "127.0.0.1:%g" 7160 7164)"
ID=(--name fn --tenant bench)
REQ='{"id":1,"op":"work","n":2000,"seed":7,"verify":false}'
WANT=$(cd "$ROOT/guest" && "$PY" -B -c 'import json, handler; print(json.dumps(handler.work(2000, 7)))')

say "guest assets and snapshots (one boot: os, then function)"
"$ROOT/guest/build.sh" > /dev/null
"$VM" make-snapshots "$WORK/snaps" > /dev/null 2>&1
SNAP="$WORK/snaps/function"
SNAP_MONO=$(jq .mono "$SNAP/meta.json")
"$S" init > /dev/null
"$S" build --name os --layer os --memory "$WORK/snaps/os/memory" > /dev/null
fn_build=$("$S" build "${ID[@]}" --parent os --holes-are-zero --memory "$SNAP/memory" 2>&1)
IMAGE=$(stat -c %s "$SNAP/memory")

# loader_start KIND OUT ARGS...: starts `snapctl restore` (uffd) or `snapctl mount` (fs) and waits until ready;
# sets LOADER (pid) and TARGET (the socket or the file QEMU is given).
loader_start() {
  local kind=$1 out=$2; shift 2
  if [ "$kind" = uffd ]; then
    TARGET="$WORK/uffd.$RANDOM.sock"
    "$S" restore --json "${ID[@]}" --uffd-socket "$TARGET" --accept-timeout 120 "$@" > "$out.json" 2> "$out.err" &
  else
    local mnt="$WORK/mnt.$RANDOM"; mkdir -p "$mnt"; mounts+=("$mnt")
    "$S" mount --json "${ID[@]}" --mountpoint "$mnt" "$@" > "$out.json" 2> "$out.err" &
    TARGET="$mnt/fn"
  fi
  LOADER=$!; pids+=("$LOADER")
  for _ in $(seq 1200); do grep -qE "serving|mounted" "$out.err" 2>/dev/null && return 0; sleep 0.05; done
  echo "loader did not get ready: $(cat "$out.err")" >&2; return 1
}

# resume KIND OUT [LOADER_ARGS...]: one restore of the function snapshot to its first answer (checked); appends
# "wall_ms stall_ms" to OUT.fig and leaves the loader's JSON in OUT.json. KIND: ceiling, uffd, fs, fs-thp (QEMU
# with its own hugepage advice).
resume() {
  local kind=$1 out=$2; shift 2
  local run="$WORK/run.$RANDOM" qemu=() mem
  case $kind in
    ceiling) cp --sparse=always "$SNAP/memory" "$WORK/ceiling.mem"; cat "$WORK/ceiling.mem" > /dev/null
             mem="$WORK/ceiling.mem" ;;
    uffd) loader_start uffd "$out" "$@"; mem="$WORK/placeholder.mem"; truncate -s "$IMAGE" "$mem"
          qemu=(env SNAP_UFFD_SOCKET="$TARGET" SNAP_UFFD_MEM_PATH="$mem" QEMU="$ROOT/native/bin/qemu-uffd") ;;
    fs) loader_start fs "$out" "$@"; mem=$TARGET; qemu=(env QEMU="$ROOT/native/bin/qemu-file") ;;
    fs-thp) loader_start fs "$out" "$@"; mem=$TARGET ;;
  esac
  local t0 t1 answer
  t0=$(now)
  "${qemu[@]}" "$VM" restore "$SNAP" "$run" "$mem" > /dev/null 2>&1
  answer=$("$VM" invoke "$run" "$REQ")
  t1=$(now)
  echo "$answer" | jq -e --argjson want "$WANT" '.ok and .result == $want' > /dev/null \
    || { echo "wrong answer from $kind: $answer" >&2; exit 1; }
  "$VM" stop "$run" > /dev/null 2>&1
  if [ "$kind" != ceiling ]; then
    [ "$kind" = uffd ] || kill -TERM "$LOADER"
    wait "$LOADER" || true
  fi
  awk -v a="$t0" -v b="$t1" -v m="$(echo "$answer" | jq .mono)" -v s="$SNAP_MONO" \
    'BEGIN { printf "%.1f %.1f\n", (b - a) * 1000, (m - s) * 1000 }' >> "$out.fig"
}

say "recording three restores with each loader (no prefetch, page-exact), merging them into one plan"
for r in 1 2 3; do
  resume uffd "$WORK/rec.u$r" --no-prefetch --record "$WORK/u$r.log"
  resume fs "$WORK/rec.f$r" --no-prefetch --record "$WORK/f$r.log"
done
"$S" log merge --out "$WORK/plan.bin" "$WORK"/u{1,2,3}.log "$WORK"/f{1,2,3}.log > /dev/null
"$S" log attach "${ID[@]}" "$WORK/plan.bin" > /dev/null
mkdir -p "$ROOT/bench/traces/guest"
cp "$WORK"/u{1,2,3}.log "$WORK"/f{1,2,3}.log "$ROOT/bench/traces/guest/"
planned=$("$S" log show --json "$WORK/plan.bin" | jq .pages)

say "warming the local cache and Redis with fn and its pack"
CACHE=(--cache-dir "$WORK/cache" --cache-size 4G)
for n in fn fn.pack; do
  "$S" warm --name "$n" "${CACHE[@]}" > /dev/null
  "$S" warm --name "$n" --cache-dir "$WORK/w.$n" --distributed "$REDIS" > /dev/null
done

say "resuming: $REPS rounds, every configuration once per round"
rm -f "$WORK"/*.fig
for r in $(seq "$REPS"); do
  for tier in $TIERS; do
    case $tier in local) T=("${CACHE[@]}") ;; redis) T=(--distributed "$REDIS") ;; s3) T=() ;; esac
    [ "$tier" = local ] && resume ceiling "$WORK/ceiling"
    resume uffd "$WORK/$tier.uffd.np.$r" --no-prefetch "${T[@]}"; mv "$WORK/$tier.uffd.np.$r.fig" "$WORK/$tier.uffd.np.fig.$r"
    resume uffd "$WORK/$tier.uffd.pf.$r" --prefetch "${T[@]}"; mv "$WORK/$tier.uffd.pf.$r.fig" "$WORK/$tier.uffd.pf.fig.$r"
    resume fs "$WORK/$tier.fs.np.$r" --no-prefetch "${T[@]}"; mv "$WORK/$tier.fs.np.$r.fig" "$WORK/$tier.fs.np.fig.$r"
    resume fs "$WORK/$tier.fs.pf.$r" --prefetch "${T[@]}"; mv "$WORK/$tier.fs.pf.$r.fig" "$WORK/$tier.fs.pf.fig.$r"
  done
done
med() { cat "$WORK"/$1 | awk -v c="$2" '{ print $c }' | median; }
ceil_wall=$(med "ceiling.fig" 1); ceil_stall=$(med "ceiling.fig" 2)
rows=""
for tier in $TIERS; do
  for cfg in uffd.np uffd.pf fs.np fs.pf; do
    wall=$(med "$tier.$cfg.fig.*" 1); stall=$(med "$tier.$cfg.fig.*" 2)
    j="$WORK/$tier.$cfg.1.json"
    if [[ $cfg == uffd* ]]; then
      detail=$(jq -r '"\(.faults) faults, \(.prefetchedPages) pages prefetched, \(.chunksLoaded) chunks"' "$j")
    else
      detail=$(jq -r '.files[0] | "\(.reads) reads, \(.prefetchedPages) pages prefetched, \(.chunksLoaded) chunks"' "$j")
    fi
    rows+=$(awk -v t="$tier" -v c="$cfg" -v w="$wall" -v s="$stall" -v cw="$ceil_wall" -v cs="$ceil_stall" -v d="$detail" 'BEGIN {
      printf "| %s | %s | %.0f | %.2fx | %.0f | %.2fx | %s |\n", t, c, w, w/cw, s, s/cs, d }')$'\n'
  done
done

say "read amplification (local cache, no prefetch): what each loader fetched and installed for the pages touched"
touched=$("$S" log show --json "$WORK/u1.log" | jq .touches)
amp=""
amp_row() { # LABEL KIND ARGS...
  local label=$1 kind=$2; shift 2
  resume "$kind" "$WORK/amp" --no-prefetch "${CACHE[@]}" "$@"
  local j="$WORK/amp.json" fetched installed
  if [ "$kind" = uffd ]; then
    fetched=$(jq '.chunksLoaded * 524288' "$j"); installed=$(jq '(.pagesCopied + .zeroPages) * 4096' "$j")
  else
    fetched=$(jq '.files[0].chunksLoaded * 524288' "$j"); installed=$(jq '.files[0].readBytes' "$j")
  fi
  amp+=$(awk -v l="$label" -v f="$fetched" -v i="$installed" -v t="$touched" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.1fx | %.1fx |\n", l, f/1048576, i/1048576, f/(t*4096), i/(t*4096) }')$'\n'
  rm -f "$WORK/amp.fig"
}
amp_row "uffd, fault-around 1" uffd --fault-around 1
amp_row "uffd, fault-around 4 (default)" uffd
amp_row "ChunkFs, read-ahead 0" fs --read-ahead 0
amp_row "ChunkFs, read-ahead 128K (default)" fs --read-ahead 128K
amp_row "ChunkFs, QEMU's own hugepage advice (read-ahead 128K)" fs-thp --read-ahead 128K

fn_new=$(echo "$fn_build" | grep -oE '[0-9]+ new' | grep -oE '[0-9]+')
fn_zero=$(echo "$fn_build" | grep -oE '[0-9]+ zero' | grep -oE '[0-9]+')
fn_inh=$(echo "$fn_build" | grep -oE '[0-9]+ inherited' | grep -oE '[0-9]+')
{
  echo "# The real guest resumed lazily: userfaultfd and ChunkFs, from each tier"
  echo
  echo "Command: \`bench/scripts/guest-resume.sh $REPS\` (medians of $REPS rounds; every configuration once per round, interleaved)"
  machine_md
  echo
  echo "Guest: guest/ (Debian 12 kernel $(grep -m1 "^linux-image" "$ROOT/.work/guest/versions.txt" 2>/dev/null | cut -d= -f1 | sed "s/linux-image-//"), busybox, python3.11 runtime with a"
  echo "48 MiB fragmented heap), QEMU 7.2 microvm, 256 MiB RAM, **TCG** (no VT-x here). Invocation: \`$REQ\`, its"
  echo "answer checked against the host's own computation. Function layer built over the os layer (same boot) in"
  echo "s3rver; the plan merged from 3 uffd + 3 ChunkFs recorded restores ($planned pages), attached with its pack."
  echo "Wall: from launching QEMU (vm.sh restore: QEMU start, device state, two Python helper starts) to the answer."
  echo "Guest clock: at the answer minus at the snapshot (it runs only while the VM runs); the ceiling's is the guest's"
  echo "own work, the rest of a loader's is the stall the guest saw. Target: with prefetch within 1.05x of the ceiling."
  echo
  echo "| tier | loader | wall to first answer (ms) | / ceiling | guest clock at the answer (ms) | / ceiling | served (run 1) |"
  echo "|---|---|---|---|---|---|---|"
  awk -v w="$ceil_wall" -v s="$ceil_stall" 'BEGIN { printf "| local disk | ceiling (plain file) | %.0f | 1.00x | %.0f | 1.00x | |\n", w, s }'
  printf '%s' "$rows"
  echo
  echo "## Read amplification (local cache, no prefetch; the guest touched $touched pages, $(( touched * 4 / 1024 )) MiB, by its first answer)"
  echo
  echo "| loader and read-ahead control | fetched (MiB of chunks) | installed (MiB) | fetched / touched | installed / touched |"
  echo "|---|---|---|---|---|"
  printf '%s' "$amp"
  echo
  echo "## Dedup of the real guest"
  echo
  echo "Function layer over its os layer: $(( IMAGE >> 20 )) MiB image, 512 KiB chunks: $fn_zero zero, $fn_inh inherited from the os layer,"
  echo "$fn_new new: $(awk -v n="$fn_new" -v i="$IMAGE" 'BEGIN { printf "%.1f %%", 100 * n * 524288 / i }') of the image is unique to the function layer (Lambda's median for new uploads: 2.5 %)."
  echo "\`snapctl build\` said: \`$(echo "$fn_build" | tail -1)\`"
} > "$RESULTS/chunkfs-guest.md"
cat "$RESULTS/chunkfs-guest.md"
