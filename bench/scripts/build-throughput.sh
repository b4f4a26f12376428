#!/usr/bin/env bash
# Build and export throughput of snapctl on a 1 GiB VM-like image, against `openssl dgst -sha256` of the same file
# measured in the same run: this machine is a shared 2-core VM, so only same-run ratios mean anything.
# After an untimed warm-up repetition, order per repetition: openssl, build (into a fresh store), export (of that
# build), then a disk-write floor (dd of as many bytes as the build stored, fsynced); REPS (default 3) repetitions,
# alternating, so drift in the machine's load hits every step alike. The image is in page cache for every step.
# Writes bench/results/build-throughput.md. Usage: bench/scripts/build-throughput.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPS=${REPS:-3}
apt_need openssl jq
publish_snapctl
make_workdir build-throughput
START="$(machine_md)"   # date and load as the run starts
IMG="$WORK/image.raw"
export SNAPSHOTS_KEYRING="$WORK/keyring"   # a fresh keyring: nothing from the user's own keys is touched

say "generating the 1 GiB image"
GEN=(gen-image --out "$IMG" --size 1G --runtime-seed 2 --function-seed 3)
"$SNAPCTL" "${GEN[@]}" >/dev/null
BYTES=$(stat -c %s "$IMG")
say "warming it into page cache"
cat "$IMG" > /dev/null

# timed OUTFILE CMD...: runs CMD with stdout to OUTFILE, prints its wall-clock seconds. It first flushes the file
# system's dirty pages (sync -f: syncfs), untimed: build's own syncfs flushes the whole file system, so without this
# the first build would also pay for writing out the freshly generated image, and each step for the one before.
timed() {
  local out=$1; shift
  sync -f "$WORK"
  local t0 t1; t0=$(now); "$@" > "$out"; t1=$(now)
  echo "$t1 $t0" | awk '{ printf "%.4f\n", $1 - $2 }'
}

: > "$WORK/build-tmpfs.s"; : > "$WORK/openssl.s"; : > "$WORK/build.s"; : > "$WORK/export.s"; : > "$WORK/dd.s"; : > "$WORK/build.inner"; : > "$WORK/export.inner"
# sink FILE: where repetition $i records a time. Repetition 0 is an untimed warm-up: without it the first
# repetition's writes measured 2-3x slower than the later ones in every writing step, dd included (most likely the
# VM's disk allocating never-written blocks), which says nothing about the store; it also loads snapctl's
# assemblies into page cache.
sink() { if [ "$i" -eq 0 ]; then echo /dev/null; else echo "$WORK/$1"; fi; }
for i in $(seq 0 "$REPS"); do
  if [ "$i" -eq 0 ]; then say "warm-up repetition (not counted)"; else say "repetition $i of $REPS"; fi
  store="$WORK/store-$i" out="$WORK/export-$i.raw"
  timed "$WORK/openssl.out" openssl dgst -sha256 "$IMG" >> "$(sink openssl.s)"
  "$SNAPCTL" init --store "$store" > /dev/null
  timed "$WORK/build-$i.json" "$SNAPCTL" build --store "$store" --name "bench-$i" --layer os --memory "$IMG" --json >> "$(sink build.s)"
  timed "$WORK/export-$i.json" "$SNAPCTL" export --store "$store" --name "bench-$i" --out "$out" --json >> "$(sink export.s)"
  # build and export write to disk and fsync; openssl does not. This floor says how much of their time is the disk.
  uploaded_mib=$(( $(jq -r .uploadedBytes "$WORK/build-$i.json") >> 20 ))
  timed /dev/null dd if="$IMG" of="$WORK/dd.out" bs=1M count="$uploaded_mib" conv=fsync status=none >> "$(sink dd.s)"
  rm -f "$WORK/dd.out"
  # The same build with the store in memory (tmpfs): what build costs when the disk is taken out of it.
  tstore=$(mktemp -d /dev/shm/snapshots-bench.XXXXXX)
  "$SNAPCTL" init --store "$tstore" > /dev/null
  timed /dev/null "$SNAPCTL" build --store "$tstore" --name "bench-$i" --layer os --memory "$IMG" --json >> "$(sink build-tmpfs.s)"
  rm -rf "$tstore"
  jq -r .seconds "$WORK/build-$i.json" >> "$(sink build.inner)"
  jq -r .seconds "$WORK/export-$i.json" >> "$(sink export.inner)"
  # Correctness once, untimed: a fast export of the wrong bytes would be no result at all.
  if [ "$i" -eq 0 ]; then cmp "$IMG" "$out" || { echo "error: the exported image differs from the original" >&2; exit 1; }; fi
  rm -rf "$store" "$out"   # keep disk use to one store at a time
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)   # the machine is shared: a high figure here explains a noisy run
CHUNKS=$(jq -r .chunks "$WORK/build-1.json")
ZERO=$(jq -r .zeroChunks "$WORK/build-1.json")
ZERO_FRACTION=$(awk -v z="$ZERO" -v c="$CHUNKS" 'BEGIN { printf "%.3f", z / c }')
# The image must look like a VM's (about half zero chunks), or the figures say nothing about real builds.
awk -v f="$ZERO_FRACTION" 'BEGIN { exit !(f >= 0.40 && f <= 0.65) }' \
  || { echo "error: zero-chunk fraction $ZERO_FRACTION is not about half: the generator changed" >&2; exit 1; }
SHA=$(awk '{ print $NF }' "$WORK/openssl.out")

runs() { paste -sd' ' "$1" | sed 's/ /, /g'; }
M_OSSL=$(median < "$WORK/openssl.s"); M_DD=$(median < "$WORK/dd.s"); M_BUILD=$(median < "$WORK/build.s"); M_EXPORT=$(median < "$WORK/export.s")
# What is left when the disk is taken out: each repetition's step minus the dd floor of the same repetition.
minus_dd() { paste "$1" "$WORK/dd.s" | awk '{ printf "%.4f\n", $1 - $2 }' > "$1.net"; median < "$1.net"; }
NET_BUILD=$(minus_dd "$WORK/build.s"); NET_EXPORT=$(minus_dd "$WORK/export.s")
M_TMPFS=$(median < "$WORK/build-tmpfs.s"); M_BUILD_IN=$(median < "$WORK/build.inner"); M_EXPORT_IN=$(median < "$WORK/export.inner")
gbs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.3f", b / s / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

mkdir -p "$RESULTS"
cat > "$RESULTS/build-throughput.md" <<MD
# Build and export throughput against openssl (1 GiB VM-like image)

- Command: \`bench/scripts/build-throughput.sh\` (REPS=$REPS)
$START
- Image: \`snapctl ${GEN[*]/#$WORK\//}\` (file in a temp dir under .work): $BYTES bytes, sha256 \`$SHA\`,
  $CHUNKS chunks of 512 KiB of which $ZERO all zero (zeroChunks/chunks from build --json = **$ZERO_FRACTION**).
- Method: the image is read once into page cache (\`cat > /dev/null\`), then one untimed warm-up repetition (without
  it the first repetition's writes were 2-3x slower in every writing step, dd included), then $REPS timed repetitions, alternating:
  \`openssl dgst -sha256 IMAGE\`; \`snapctl build --store STORE-N --name bench-N --memory IMAGE --json\` into a fresh
  file store (fresh \$SNAPSHOTS_KEYRING under the temp dir); \`snapctl export --store STORE-N --name bench-N --out OUT --json\`.
  Times are wall clock for the whole process (.NET start-up included), median of $REPS; each step starts after an
  untimed \`sync -f\`, so none pays for writing back another's dirty pages. Throughput = image bytes / s
  (decimal GB/s, all 1 GiB counted, zero chunks included). Ratio = our throughput / openssl's: above 1.0 we are faster.
- What each does: openssl hashes every byte on one core and writes nothing. build reads, drops zero chunks, hashes,
  encrypts and names the rest on $(nproc) workers, writes them to the store and syncfs()es it before publishing
  the manifest. export verifies and decrypts every data chunk and writes a sparse image, fsync()ed. Export output
  was compared byte for byte with the image (cmp) in the warm-up repetition. Load average after the last
  repetition: $LOAD_END (2 cores, shared with other work: compare the runs, not only the medians).
- File system under test (the temp dir's): \`$(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$WORK")\`.
- Disk floor: \`dd if=IMAGE of=X bs=1M count=N conv=fsync\` with N = the MiB the build stored
  ($(jq -r .uploadedBytes "$WORK/build-1.json") bytes in $(jq -r .newChunks "$WORK/build-1.json") chunk files); its throughput is
  counted against the whole image like the others, so it is the ceiling build and export could reach on this disk.

| Step | Runs (s) | Median (s) | Throughput (GB/s) | Ratio vs openssl | Median inside snapctl (s, --json \`seconds\`) |
|------|---------:|-----------:|------------------:|-----------------:|------------------------:|
| openssl dgst -sha256 | $(runs "$WORK/openssl.s") | $M_OSSL | $(gbs "$M_OSSL") | 1.00 | - |
| snapctl build | $(runs "$WORK/build.s") | $M_BUILD | $(gbs "$M_BUILD") | $(ratio "$M_OSSL" "$M_BUILD") | $M_BUILD_IN |
| snapctl export | $(runs "$WORK/export.s") | $M_EXPORT | $(gbs "$M_EXPORT") | $(ratio "$M_OSSL" "$M_EXPORT") | $M_EXPORT_IN |
| disk floor: dd conv=fsync of the stored bytes | $(runs "$WORK/dd.s") | $M_DD | $(gbs "$M_DD") | $(ratio "$M_OSSL" "$M_DD") | - |
| snapctl build, store on tmpfs (/dev/shm: no disk) | $(runs "$WORK/build-tmpfs.s") | $M_TMPFS | $(gbs "$M_TMPFS") | $(ratio "$M_OSSL" "$M_TMPFS") | - |

Build and export both write about as many bytes as the dd floor and wait for them to reach the disk. Each
repetition's time minus that repetition's dd time, a rough estimate of their time besides the disk (as noisy as dd
itself; the median, then the runs): build
$NET_BUILD s ($(runs "$WORK/build.s.net")), export $NET_EXPORT s ($(runs "$WORK/export.s.net")).
MD
cat "$RESULTS/build-throughput.md"
