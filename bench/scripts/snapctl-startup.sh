#!/usr/bin/env bash
# Start-up of snapctl as each build ships it: today's framework-dependent ReadyToRun build (out/snapctl before
# issue 10), and the self-contained single file with and without ReadyToRun, with and without compression.
# Measures `snapctl --help` and `snapctl ls` on an empty store with hyperfine (warm-up runs, then RUNS runs each,
# all variants side by side in one run), and the size of each build. Writes bench/results/snapctl-startup.md.
# Usage: bench/scripts/snapctl-startup.sh   (RUNS=40 by default)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS=${RUNS:-40}
need_dotnet
apt_need hyperfine jq
make_workdir startup
START="$(machine_md)"

publish() { # publish DIR ARGS...: one variant of snapctl into $WORK/DIR
  local dir=$1; shift
  say "publishing $dir"
  dotnet publish "$ROOT/src/Snapctl/Snapctl.csproj" -c Release -r linux-x64 -nologo -v quiet -clp:ErrorsOnly \
    -o "$WORK/$dir" "$@" >/dev/null
}
publish fd-r2r --self-contained false -p:PublishReadyToRun=true
sf=(--self-contained true -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true)
publish sf-r2r "${sf[@]}" -p:PublishReadyToRun=true
publish sf-jit "${sf[@]}" -p:PublishReadyToRun=false
publish sf-r2r-z "${sf[@]}" -p:PublishReadyToRun=true -p:EnableCompressionInSingleFile=true
publish sf-jit-z "${sf[@]}" -p:PublishReadyToRun=false -p:EnableCompressionInSingleFile=true

variants=(fd-r2r sf-r2r sf-jit sf-r2r-z sf-jit-z)
mkdir -p "$WORK/empty"
for v in "${variants[@]}"; do "$WORK/$v/snapctl" ls --store "$WORK/empty" >/dev/null; done  # each works at all
for what in help ls; do
  cmds=()
  for v in "${variants[@]}"; do
    if [ "$what" = help ]; then cmds+=(-n "$v" "$WORK/$v/snapctl --help"); else
      cmds+=(-n "$v" "$WORK/$v/snapctl ls --store $WORK/empty"); fi
  done
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/$what.json" "${cmds[@]}" >&2
done

{
  echo "# snapctl start-up: framework-dependent vs self-contained single file"
  echo
  echo "$START"
  echo "- Command: \`bench/scripts/snapctl-startup.sh\` (RUNS=$RUNS; hyperfine -N --warmup 3 --runs $RUNS, the five"
  echo "  builds side by side in one run per command; \`ls\` on an empty directory store)"
  echo
  echo "| build | size | \`--help\` median ms | \`--help\` mean ± sd ms | \`ls\` median ms | \`ls\` mean ± sd ms |"
  echo "|---|---|---|---|---|---|"
  for v in "${variants[@]}"; do
    size=$(du -sb "$WORK/$v" --exclude='*.pdb' --exclude='*.xml' | cut -f1)
    row() { jq -r --arg n "$v" '.results[] | select(.command == $n)
      | "\(.median * 1000 | floor) | \(.mean * 1000 | floor) ± \(.stddev * 1000 | floor)"' "$WORK/$1.json"; }
    echo "| $v | $((size / 1048576)) MiB | $(row help) | $(row ls) |"
  done
  echo
  echo "fd: framework-dependent (needs the .NET 10 runtime; a directory of 30 files), sf: self-contained single"
  echo "file, r2r: ReadyToRun, jit: no ReadyToRun, z: compressed bundle. Sizes exclude .pdb and .xml files."
} > "$RESULTS/snapctl-startup.md"
cat "$RESULTS/snapctl-startup.md"
