#!/usr/bin/env bash
# Builds the release artifact: out/release/snapctl-RID (default linux-x64), the self-contained single-file snapctl
# (runs on a host without .NET), and out/release/snapctl-RID.sha256 (`sha256sum -c` format). Needs the .NET 10
# SDK. Usage: scripts/release.sh [RID]    Install: copy the file onto PATH as `snapctl` (it needs nothing beside it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rid="${1:-linux-x64}"
rel="$ROOT/out/release"
mkdir -p "$rel"
say "publishing snapctl for $rid"
publish_snapctl "$rel/.publish-$rid" "$rid"
mv -f "$rel/.publish-$rid/snapctl" "$rel/snapctl-$rid"
rm -rf "$rel/.publish-$rid"
(cd "$rel" && sha256sum "snapctl-$rid" > "snapctl-$rid.sha256")
say "out/release/snapctl-$rid ($(du -h "$rel/snapctl-$rid" | cut -f1)): $(cut -d' ' -f1 "$rel/snapctl-$rid.sha256")"
