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

# build_all: builds the solution (Release) and publishes snapctl to out/snapctl with bin/snapctl as its launcher.
# ReadyToRun: a restore is short-lived, and compiling its chunk path at the first fault cost tens of ms
# (bench/results/uffd-restore.md).
build_all() {
  need_dotnet
  say "building native/ (replay-vmm)"
  make -s -C "$ROOT/native"
  say "building Snapshots.sln"
  dotnet build "$ROOT/Snapshots.sln" -c Release -nologo -v quiet -clp:ErrorsOnly
  dotnet publish "$ROOT/src/Snapctl/Snapctl.csproj" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -nologo -v quiet -clp:ErrorsOnly -o "$ROOT/out/snapctl"
  mkdir -p "$ROOT/bin"
  cat > "$ROOT/bin/snapctl" <<'LAUNCHER'
#!/usr/bin/env bash
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$here/out/snapctl/snapctl" "$@"
LAUNCHER
  chmod +x "$ROOT/bin/snapctl"
}
