# Shared by the project's scripts: install Debian packages only when missing, find the repo root.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_need PKG...: installs the packages that are not installed yet (idempotent, quiet).
apt_need() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1 || ! dotnet --list-sdks | grep -q '^10\.'; then
    echo "error: the .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux-debian); 'dotnet --list-sdks' shows no 10.x" >&2
    exit 1
  fi
}

# publish_snapctl [OUT [RID]]: publishes snapctl as one self-contained file, OUT/snapctl (default out/snapctl,
# linux-x64): no .NET runtime needed where it runs, nothing beside it needed. ReadyToRun: a restore is short-lived,
# and compiling its chunk path at the first fault cost tens of ms (bench/results/uffd-restore.md); it also halves
# start-up (bench/results/snapctl-startup.md). Uncompressed: compression saves disk and costs start-up there.
# IncludeNativeLibrariesForSelfExtract: no native library of ours ships today (Blake3 3.x is managed), so the
# bundle is one file either way; the flag keeps it one file if a package brings one.
publish_snapctl() {
  local out="${1:-$ROOT/out/snapctl}" rid="${2:-linux-x64}"
  need_dotnet
  rm -rf "$out"   # no framework-dependent leftovers (snapctl.dll, deps.json) beside the single file
  dotnet publish "$ROOT/src/Snapctl/Snapctl.csproj" -c Release -r "$rid" --self-contained true \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRun=true \
    -nologo -v quiet -clp:ErrorsOnly -o "$out" >/dev/null
}

# build_all: builds the solution (Release), publishes snapctl (publish_snapctl) and links bin/snapctl to it.
# bin/snapctl is a relative symlink, not a script: the single file needs nothing next to it, so a link to bin/snapctl
# from anywhere (ln -s .../bin/snapctl /usr/local/bin/) resolves through to it, and `cp bin/snapctl DIR` copies
# the binary itself, which runs on its own.
build_all() {
  need_dotnet
  say "building native/ (replay-vmm)"
  make -s -C "$ROOT/native"
  say "building Snapshots.sln"
  dotnet build "$ROOT/Snapshots.sln" -c Release -nologo -v quiet -clp:ErrorsOnly
  say "publishing snapctl (self-contained single file: out/snapctl/snapctl)"
  publish_snapctl
  say "publishing snapd (out/snapd/snapd, on the .NET and ASP.NET Core runtimes)"
  publish_snapd
  mkdir -p "$ROOT/bin"
  ln -sfn ../out/snapctl/snapctl "$ROOT/bin/snapctl"
  ln -sfn ../out/snapd/snapd "$ROOT/bin/snapd"
}

# publish_snapd [OUT]: the daemon, framework-dependent (a host runs one; the shared runtimes serve it), ReadyToRun
# so that its first restores do not wait for the JIT. deploy/snapd.service starts it from /usr/local/lib/snapd.
publish_snapd() {
  local out="${1:-$ROOT/out/snapd}"
  need_dotnet
  rm -rf "$out"
  dotnet publish "$ROOT/src/Snapd/Snapd.csproj" -c Release -r linux-x64 --self-contained false \
    -p:PublishReadyToRun=true -nologo -v quiet -clp:ErrorsOnly -o "$out" >/dev/null
}
