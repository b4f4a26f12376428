#!/usr/bin/env bash
# The main job on the embedded default: an OS layer, a runtime layer and two function layers built from
# generated VM-like images into a directory origin; dedup figures; one exported back and compared; then
# restored on demand into replay-vmm (Firecracker's side of the userfaultfd protocol), every touched page checked.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
D="$ROOT/.work/demo"; rm -rf "$D"; mkdir -p "$D"
export SNAPSHOTS_STORE="file://$D/store" SNAPSHOTS_KEYRING="$D/keyring"
S="$ROOT/bin/snapctl"
SIZE=${DEMO_SIZE:-256M}

say "generating VM-like images ($SIZE each)"
"$S" gen-image --out "$D/os.img" --size "$SIZE"
"$S" gen-image --out "$D/runtime.img" --size "$SIZE" --runtime-seed 2
"$S" gen-image --out "$D/fn-a.img" --size "$SIZE" --runtime-seed 2 --function-seed 3
"$S" gen-image --out "$D/fn-b.img" --size "$SIZE" --runtime-seed 2 --function-seed 4

say "creating the store, then building layers: os -> runtime -> two function layers (tenant acme)"
"$S" init
"$S" build --name os --layer os --memory "$D/os.img"
"$S" build --name runtime --layer runtime --parent os --holes-are-zero --memory "$D/runtime.img"
"$S" build --name fn-a --parent runtime --holes-are-zero --memory "$D/fn-a.img" --tenant acme
"$S" build --name fn-b --parent runtime --holes-are-zero --memory "$D/fn-b.img" --tenant acme
"$S" ls

say "dedup"
images=$(( $(stat -c %s "$D/os.img") + $(stat -c %s "$D/runtime.img") + $(stat -c %s "$D/fn-a.img") + $(stat -c %s "$D/fn-b.img") ))
stored=$(find "$D/store/chunks" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
manifests=$(find "$D/store/manifests" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
awk -v i="$images" -v s="$stored" -v m="$manifests" 'BEGIN {
  printf "images: %.1f MiB in 4 snapshots; stored: %.1f MiB of chunks (%.1f %% of the images) + %.1f KiB of manifests (%.4f %%)\n",
    i/1048576, s/1048576, 100*s/i, m/1024, 100*m/i }'

say "export fn-a back through its chain and compare"
"$S" export --name fn-a --tenant acme --out "$D/fn-a.out" --cache-dir "$D/cache"
cmp "$D/fn-a.img" "$D/fn-a.out" && echo "fn-a.out is byte-identical to fn-a.img"
"$S" verify --name fn-a --tenant acme

say "restore fn-a into a VMM on demand (userfaultfd, Firecracker's protocol; replay-vmm plays the VMM)"
SOCK="$D/fn-a.sock"
"$S" restore --name fn-a --tenant acme --uffd-socket "$SOCK" --cache-dir "$D/cache" --accept-timeout 60 > "$D/restore.txt" 2> "$D/restore.err" &
handler=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
"$ROOT/native/bin/replay-vmm" --image "$D/fn-a.img" --socket "$SOCK" --touch random:5000:1 --timeout 60
wait "$handler"
cat "$D/restore.txt" # what the restore did, for people (--json: docs/cli/schemas/restore.schema.json)

say "the same through snapd, the worker-host daemon: its API on a Unix socket, one restore, its metrics"
"$ROOT/bin/snapd" --store "$SNAPSHOTS_STORE" --keyring "$SNAPSHOTS_KEYRING" --state-dir "$D/snapd" \
  --api-socket "$D/snapd/api.sock" --cache-dir "$D/cache" > "$D/snapd.log" 2>&1 &
snapd=$!
export SNAPD_API="$D/snapd/api.sock"
for _ in $(seq 200); do "$S" restores health >/dev/null 2>&1 && break; sleep 0.1; done
"$S" restores health
id=$("$S" restores create --snapshot fn-a --tenant acme --json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
"$ROOT/native/bin/replay-vmm" --image "$D/fn-a.img" --socket "$D/snapd/restores/$id.sock" --touch random:5000:2 \
  --vcpus 2 --timeout 60
for _ in $(seq 100); do "$S" restores get "$id" | grep -q -e exited -e failed && break; sleep 0.1; done
"$S" restores get "$id"
kill -TERM "$snapd"; wait "$snapd"
echo
echo "Try it: export SNAPSHOTS_STORE=$SNAPSHOTS_STORE SNAPSHOTS_KEYRING=$SNAPSHOTS_KEYRING; ./bin/snapctl ls"
