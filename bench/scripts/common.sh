# Shared by the benchmark scripts: the project's lib.sh (set -euo pipefail, ROOT, say, apt_need, publish_snapctl:
# a current snapctl, published again on every run since publishing is cheap next to a benchmark), a temp dir
# under .work that is removed on exit, and the facts every result file must state.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"
RESULTS="$ROOT/bench/results"
SNAPCTL="$ROOT/out/snapctl/snapctl"

# make_workdir NAME: sets WORK to a fresh directory under .work (gitignored), removed when the script exits,
# whatever the exit path. Only this run's own directory is removed, so concurrent runs do not clash.
make_workdir() {
  mkdir -p "$ROOT/.work"
  WORK="$(mktemp -d "$ROOT/.work/$1.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
}

# machine_md: the lines every result file starts with, so a figure is never read without its context.
machine_md() {
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- Machine: $(nproc) cores (\`nproc\`), CPU \`$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\`," \
    "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Commit: \`$(git -C "$ROOT" rev-parse --short HEAD)\`$(git -C "$ROOT" diff --quiet HEAD -- src bench ':!bench/results' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- .NET: $(dotnet --version 2>/dev/null || echo '?'), openssl: $(openssl version 2>/dev/null || echo '?')"
}

# now: wall-clock seconds with nanoseconds, for timing whole commands (process start included, as a user sees it).
now() { date +%s.%N; }

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# restore_run OUT RESTORE_ARGS... -- VMM_ARGS...: one `snapctl restore` and one replay-vmm against each other, both
# on RESTORE_CPUS (taskset; default all). Writes OUT.h (handler JSON), OUT.err, OUT.v (VMM JSON); with
# RESTORE_PERF=1 also OUT.perf: `perf stat -x,` of the handler process (page faults, task clock).
restore_run() {
  local out=$1; shift
  local rargs=() vargs=()
  while [ "$1" != "--" ]; do rargs+=("$1"); shift; done; shift
  vargs=("$@")
  local sock="$WORK/uffd.$RANDOM.sock"
  local cpus=${RESTORE_CPUS:-0-$(( $(nproc) - 1 ))}
  local perf=()
  [ "${RESTORE_PERF:-0}" = 1 ] && perf=(perf stat -x, -e page-faults,task-clock -o "$out.perf")
  taskset -c "$cpus" "${perf[@]}" "$SNAPCTL" restore --json --uffd-socket "$sock" --accept-timeout 120 "${rargs[@]}" > "$out.h" 2> "$out.err" &
  local hpid=$!
  for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.05; done
  taskset -c "$cpus" "$ROOT/native/bin/replay-vmm" --socket "$sock" --timeout 120 "${vargs[@]}" > "$out.v"
  wait "$hpid"
}

# build_function_stack SIZE: VM-like images os.img, rt.img, fn.img under $WORK and the layers os -> rt -> fn
# (tenant bench) in $SNAPSHOTS_STORE: the snapshot the loader benchmarks restore.
build_function_stack() {
  "$SNAPCTL" init > /dev/null # stores are made on purpose; init on a made one does nothing
  "$SNAPCTL" gen-image --out "$WORK/os.img" --size "$1" > /dev/null
  "$SNAPCTL" gen-image --out "$WORK/rt.img" --size "$1" --runtime-seed 2 > /dev/null
  "$SNAPCTL" gen-image --out "$WORK/fn.img" --size "$1" --runtime-seed 2 --function-seed 3 > /dev/null
  "$SNAPCTL" build --name os --layer os --memory "$WORK/os.img" > /dev/null
  "$SNAPCTL" build --name rt --layer runtime --parent os --holes-are-zero --memory "$WORK/rt.img" > /dev/null
  "$SNAPCTL" build --name fn --parent rt --holes-are-zero --memory "$WORK/fn.img" --tenant bench > /dev/null
}

# warm_function_stack SIZE: build_function_stack, then fill the local disk cache at $WORK/cache with every chunk of
# fn (an export); sets CACHE to the restore options that use it, and PAGES/GAP (defaults 6000 and 20 us) for
# `log synth` traces.
warm_function_stack() {
  build_function_stack "$1"
  CACHE=(--cache-dir "$WORK/cache" --cache-size 4G)
  "$SNAPCTL" export --name fn --tenant bench --out "$WORK/warm.out" "${CACHE[@]}" > /dev/null
  rm -f "$WORK/warm.out"
  PAGES=${PAGES:-6000}; GAP=${GAP:-20}
}

