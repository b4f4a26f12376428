#!/usr/bin/env bash
# Checks the house style, naming the file and line of every finding; exit status 0 only when all three pass:
#   1. formatting and code style: `dotnet format --verify-no-changes` (rules in .editorconfig);
#   2. analyzers: the solution builds with AnalysisLevel latest-recommended and warnings as errors;
#   3. no *.cs line under src/, tests/ or bench/ is over 120 characters.
# .ci/run runs it before the tests. To fix 1: `dotnet format Snapshots.sln`; 2 and 3 are fixed by hand.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_dotnet
cd "$ROOT"
failed=()

say "style 1/3: dotnet format --verify-no-changes"
if ! dotnet format Snapshots.sln --verify-no-changes; then failed+=("format"); fi

say "style 2/3: build with analyzers (warnings are errors)"
if ! dotnet build Snapshots.sln -c Release -nologo -v quiet -clp:ErrorsOnly; then failed+=("analyzers"); fi

say "style 3/3: lines over 120 characters"
max=120
# grep counts characters, not bytes, in a UTF-8 locale.
long=$(LC_ALL=C.UTF-8 grep -rnE --include='*.cs' --exclude-dir=bin --exclude-dir=obj "^.{$((max + 1)),}" src tests bench \
  | sed -E "s/^([^:]+:[0-9]+):.*/\1: line over $max characters/" || true)
if [ -n "$long" ]; then printf '%s\n' "$long"; failed+=("line length"); fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "style: FAILED (${failed[*]})" >&2
  exit 1
fi
echo "style: ok"
