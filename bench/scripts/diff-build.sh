#!/usr/bin/env bash
# Diff snapshots (docs/format.md, "Sparse memory files and diff snapshots"). Two measurements, same run:
# 1. A 4 GiB Firecracker-style diff (2 % of its 4 KiB pages dirty, chosen at random, written at their offsets with
#    pwrite, holes elsewhere) built with `build --parent base --diff`, against a full build of the same 4 GiB image
#    (the base with those pages applied, a full snapshot: `--parent base --holes-are-zero`). Each build goes into its
#    own copy of a store holding only the base (hard links: chunk files are never changed in place), so each uploads
#    what it would in production. Correctness once, untimed: the diff build is exported and compared with the full
#    image (cmp).
# 2. A 16 GiB sparse image holding 2,000 data pages (random, 4 KiB), built alone (`--layer os`).
# Each build is timed as a whole process (wall clock) and its reads counted: rchar of /proc/PID/io, the bytes its
# read() calls returned, .NET start-up included. BEFORE=PATH (a snapctl of another commit, e.g. the one before diff
# builds existed) adds its rows for the full build and the 16 GiB image (it has no --diff). REPS (default 3) timed
# repetitions after an untimed warm-up. Writes bench/results/diff-build.md. Usage: bench/scripts/diff-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${REPS:-3}
BEFORE=${BEFORE:-}
SIZE=${SIZE:-4G} BIG_GIB=${BIG_GIB:-16}   # smaller only to try the script out
apt_need jq python3
publish_snapctl
make_workdir diff-build
START="$(machine_md)"   # date and load as the run starts
export SNAPSHOTS_KEYRING="$WORK/keyring"   # a fresh keyring: nothing from the user's own keys is touched

say "4 GiB base image, its diff (2 % of pages dirty) and the full image with the same pages"
GEN=(gen-image --out "$WORK/base.img" --size "$SIZE" --runtime-seed 2)
"$SNAPCTL" "${GEN[@]}" > /dev/null
cp --sparse=always "$WORK/base.img" "$WORK/full.img"
# write_pages BASE DIFF FULL BIG: the dirty pages at their offsets (pwrite) into a fresh sparse DIFF and over FULL;
# BIG: a fresh 16 GiB sparse file with 2,000 random data pages. Prints the dirty page count.
DIRTY_PAGES=$(python3 - "$WORK/base.img" "$WORK/diff.mem" "$WORK/full.img" "$WORK/big.mem" "$BIG_GIB" \
  "$WORK/runs.mem" <<'PY'
import os, random, sys
base, diff, full, big = sys.argv[1:5]
big_size = int(sys.argv[5]) << 30
runs = sys.argv[6]
P = 4096
size = os.path.getsize(base)
rng = random.Random(2)
dirty = sorted(rng.sample(range(size // P), size // P * 2 // 100))
d = os.open(diff, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
f = os.open(full, os.O_WRONLY)
os.ftruncate(d, size)
for page in dirty:
    data = rng.randbytes(P)
    os.pwrite(d, data, page * P)
    os.pwrite(f, data, page * P)
os.close(d); os.close(f)
b = os.open(big, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.ftruncate(b, big_size)
for page in rng.sample(range(big_size // P), 2000):
    os.pwrite(b, rng.randbytes(P), page * P)
os.close(b)
r = os.open(runs, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.ftruncate(r, size)
for start in rng.sample(range(size // P // 128), len(dirty) // 128):
    os.pwrite(r, rng.randbytes(128 * P), start * 128 * P + rng.randrange(128) * P)
os.close(r)
print(len(dirty))
PY
)
cat "$WORK/base.img" "$WORK/full.img" "$WORK/diff.mem" "$WORK/runs.mem" > /dev/null   # page cache: every build reads from memory

say "base layer"
"$SNAPCTL" build --store "$WORK/store-base" --name base --layer os --memory "$WORK/base.img" --json > "$WORK/base.json"

# measured OUT CMD...: runs CMD with stdout to OUT after an untimed `sync -f` (no step pays for another's dirty
# pages); prints "SECONDS RCHAR": its wall clock, and the bytes its read() calls returned (the wrapper shell's rchar,
# which includes its waited-for children).
measured() {
  local out=$1; shift
  sync -f "$WORK"
  OUT=$out bash -c 't0=$(date +%s.%N); "$@" > "$OUT"; rc=$?; t1=$(date +%s.%N)
    r=$(awk "/^rchar/ { print \$2 }" /proc/$$/io); echo "$t1 $t0 $r"; exit $rc' _ "$@" \
    | awk '{ printf "%.4f %.0f\n", $1 - $2, $3 }'   # %d would clamp at 2^31 in mawk
}

# run_build ROW SNAPCTL copy|fresh ARGS...: one build; appends "SECONDS RCHAR" to $WORK/ROW.s (discarded in the
# warm-up) and leaves its JSON in $WORK/ROW.json. copy: into a fresh hard-linked copy of the base store; fresh: into
# an empty store; removed afterwards.
run_build() {
  local row=$1 snapctl=$2 store=$3; shift 3
  if [ "$store" = copy ]; then store="$WORK/store-$row"; rm -rf "$store"; cp -al "$WORK/store-base" "$store"
  else store="$WORK/store-$row"; rm -rf "$store"; fi
  local sink="$WORK/$row.s"; [ "$i" -eq 0 ] && sink=/dev/null
  measured "$WORK/$row.json" "$snapctl" build --store "$store" --json "$@" >> "$sink"
  if [ "$i" -eq 0 ] && [ "$row" = diff ]; then
    "$SNAPCTL" export --store "$store" --name d --out "$WORK/diff.out" > /dev/null
    cmp "$WORK/full.img" "$WORK/diff.out" || { echo "error: the diff build's export differs from the full image" >&2; exit 1; }
    rm -f "$WORK/diff.out"
  fi
  rm -rf "$store"
}

rows=(full diff runs big)
[ -n "$BEFORE" ] && rows+=(full-before big-before)
for r in "${rows[@]}"; do : > "$WORK/$r.s"; done
for i in $(seq 0 "$REPS"); do
  if [ "$i" -eq 0 ]; then say "warm-up repetition (not counted)"; else say "repetition $i of $REPS"; fi
  run_build full "$SNAPCTL" copy --name f --layer runtime --parent base --holes-are-zero --memory "$WORK/full.img"
  run_build diff "$SNAPCTL" copy --name d --layer runtime --parent base --diff --memory "$WORK/diff.mem"
  run_build runs "$SNAPCTL" copy --name r --layer runtime --parent base --diff --memory "$WORK/runs.mem"
  run_build big "$SNAPCTL" fresh --name big --layer os --memory "$WORK/big.mem"
  if [ -n "$BEFORE" ]; then
    run_build full-before "$BEFORE" copy --name f --layer runtime --parent base --memory "$WORK/full.img"
    run_build big-before "$BEFORE" fresh --name big --layer os --memory "$WORK/big.mem"
  fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

med() { cut -d' ' -f"$2" "$WORK/$1.s" | median; }
runs() { cut -d' ' -f1 "$WORK/$1.s" | paste -sd' ' | sed 's/ /, /g'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
field() { jq -r ".$2 // \"-\"" "$WORK/$1.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { # row NAME LABEL
  echo "| $2 | $(runs "$1") | $(med "$1" 1) | $(mib "$(med "$1" 2)") | $(field "$1" readBytes) | $(field "$1" chunks) |" \
    "$(field "$1" zeroChunks) / $(field "$1" inheritedChunks) / $(field "$1" dedupedChunks) / $(field "$1" newChunks) |" \
    "$(field "$1" parentChunksRead) | $(mib "$(field "$1" uploadedBytes)") |"
}

mkdir -p "$RESULTS"
{
  echo "# Diff snapshots: build --diff against a full build ($SIZE); a $BIG_GIB GiB sparse image"
  echo
  echo "- Command: \`$( [ -n "$BEFORE" ] && echo "BEFORE=$BEFORE ")bench/scripts/diff-build.sh\` (REPS=$REPS)"
  echo "$START"
  echo "- Base: \`snapctl ${GEN[*]/#$WORK\//}\`, built as layer \`base\` ($(jq -r .newChunks "$WORK/base.json") data" \
    "chunks of $(jq -r .chunks "$WORK/base.json")). Diff: a fresh sparse $SIZE file with $DIRTY_PAGES random 4 KiB pages" \
    "(2 %) written at their offsets with pwrite; full: the base (cp --sparse=always) with the same pages written over it."
  echo "  Runs: a fresh sparse $SIZE file with as many pages dirty, in runs of 128 pages (512 KiB) at random page offsets."
  echo "  $BIG_GIB GiB image: a fresh sparse file with 2,000 random 4 KiB data pages."
  echo "- Builds: full \`build --name f --layer runtime --parent base --holes-are-zero --memory full.img\`; diff \`build --name d --layer runtime --parent" \
    "base --diff --memory diff.mem\`; $BIG_GIB GiB \`build --name big --layer os --memory big.mem\`; each with \`--store COPY" \
    "--json\`, the full and diff builds into a hard-linked copy of the store holding only the base. Before: the same" \
    "full and $BIG_GIB GiB builds by \`$BEFORE\` (no --holes-are-zero there: it read holes as zeros)."
  echo "- Method: images in page cache; one untimed warm-up repetition, then $REPS, alternating; wall clock of the whole" \
    "process (.NET start-up included), median. read() MiB: rchar of the process (/proc/PID/io): the memory file's" \
    "bytes read, plus the parent's chunks a diff build reads from the (file) store; readBytes: the memory file's" \
    "only, from build --json (empty before: the counter is new). The diff build's export was compared with full.img (cmp) in the warm-up: identical." \
    "File system: \`$(findmnt -no SOURCE,FSTYPE -T "$WORK")\`. Load average after: $LOAD_END (2 shared cores)."
  echo
  echo "| Build | Runs (s) | Median (s) | read() MiB (median) | readBytes | chunks | zero / inherited / deduped / new | parentChunksRead | uploaded MiB |"
  echo "|---|---:|---:|---:|---:|---:|---|---:|---:|"
  row full "$SIZE full image, --parent --holes-are-zero"
  row diff "$SIZE diff (2 % dirty), --parent --diff"
  row runs "$SIZE diff, 2 % dirty in runs of 128 pages (512 KiB, not aligned), --parent --diff"
  [ -n "$BEFORE" ] && row full-before "$SIZE full image, --parent (before)"
  row big "$BIG_GIB GiB sparse, 2,000 data pages"
  [ -n "$BEFORE" ] && row big-before "$BIG_GIB GiB sparse, 2,000 data pages (before)"
  echo
  echo "Diff vs full build (median time): $(ratio "$(med diff 1)" "$(med full 1)") x;" \
    "read() bytes: $(ratio "$(med diff 2)" "$(med full 2)") x."
  if [ -n "$BEFORE" ]; then
    echo "$BIG_GIB GiB sparse image, before vs now (median time): $(ratio "$(med big-before 1)" "$(med big 1)") x;" \
      "read() bytes: $(mib "$(med big-before 2)") MiB before, $(mib "$(med big 2)") MiB now."
  fi
  cat <<'TXT'

Reading (written for the run above; the machine was shared, so compare within a run):
- Holes cost nothing now: the 16 GiB image's reads fell from the whole image to its 2,000 pages, and the full 4 GiB
  image (gen-image's, sparse where zero) is read by extent too. What is left is per data *chunk*: 2,000 scattered
  pages touch about 1,950 chunks of 512 KiB, each hashed, encrypted, written and synced (about 1 GB uploaded).
- Randomly scattered dirty pages are the diff's worst case: 2 % of pages at random touch over 90 % of the chunks,
  so the diff and the full build upload the same new chunks, and the diff also reads and decrypts the parent's
  chunk for every chunk partly dirty over parent data (parentChunksRead). It reads about 20 times fewer bytes of
  the memory file and is about as fast or somewhat slower. Dirty pages in runs of 512 KiB
  leave most chunks wholly in holes: inherited without a read, and the build is about ten times faster.
TXT
} > "$RESULTS/diff-build.md"
cat "$RESULTS/diff-build.md"
