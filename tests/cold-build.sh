#!/usr/bin/env bash
# The cold-cache build check: a fresh clone builds every time on a machine that has never restored the paket tool.
# Clones this repository into a temporary folder and builds it ROUNDS times (default 5), each from a clean work tree
# with a fresh DOTNET_CLI_HOME and a NuGet package folder without paket (a hard-linked copy of the warm folder, so
# the other packages need no download); the last round runs the README's first command (`dotnet run --project
# src/Cli`) the same way. Parallel project restores once raced to extract the paket nupkg and failed 3 builds in 5, and
# later one node read a project's Paket restore files while another wrote them (1 build in 5 on a loaded machine).
# A round passes when the build succeeds without printing a warning; it prints what the build left on disk (CI once ran
# out of disk here when every application copied TorchSharp's natives: Directory.Build.props links them instead).
# Prints one line per round and ends with "N passed, N failed". Usage: bash tests/cold-build.sh [ROUNDS]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
warm=${NUGET_PACKAGES:-$HOME/.nuget/packages}
if [ ! -d "$warm" ]; then
  echo "cold-build: no warm package folder at $warm (build the solution once first)"
  echo "0 passed, 1 failed"
  exit 1
fi
# Beside the warm folder, so that hard links work (same file system).
work=$(mktemp -d "$(dirname "$warm")/dfn-cold-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone --quiet "$root" "$work/repo"

# Fresh tool state for one round: a package folder without paket and an empty CLI home.
fresh_state() {
  local round=$1
  rm -rf "$work/packages" "$work/cli-home"
  cp -al "$warm" "$work/packages"
  rm -rf "$work/packages/paket"
  mkdir -p "$work/cli-home"
  git -C "$work/repo" clean -xdfq
}

passed=0
failed=0
record() {
  local name=$1 code=$2 log=$3 started=$4
  # The build prints no warnings (a compiled build task once warned only on a cold tool cache).
  if [ "$code" -eq 0 ] && grep -q ': warning ' "$log"; then
    echo "cold-build: $name printed warnings:"
    grep ': warning ' "$log" | head -5
    failed=$((failed + 1))
  elif [ "$code" -eq 0 ]; then
    # Disk written: the work tree's blocks not shared with the package folder (du counts a hard link once).
    local written=$(du -sm "$work/packages" "$work/repo" | awk 'NR == 2 { print $1 }')
    echo "cold-build: $name passed ($(( $(date +%s) - started )) s, $written MB on disk)"
    passed=$((passed + 1))
  else
    echo "cold-build: $name FAILED (exit $code); last lines:"
    grep -E 'error|Unhandled' "$log" | head -5
    tail -5 "$log"
    failed=$((failed + 1))
  fi
}

for round in $(seq 1 "$rounds"); do
  fresh_state "$round"
  log="$work/build-$round.log"
  started=$(date +%s)
  (cd "$work/repo" && NUGET_PACKAGES="$work/packages" DOTNET_CLI_HOME="$work/cli-home" DOTNET_NOLOGO=1 \
     dotnet build DiffusionFunctional.sln -c Release -nologo -v quiet) >"$log" 2>&1
  record "solution build $round of $rounds" $? "$log" "$started"
done

# The README's first command, on a cold tool cache: its build and start (--version instead of the long demo).
fresh_state readme
log="$work/readme.log"
started=$(date +%s)
(cd "$work/repo" && NUGET_PACKAGES="$work/packages" DOTNET_CLI_HOME="$work/cli-home" DOTNET_NOLOGO=1 \
   dotnet run --project src/Cli -c Release -- --version) >"$log" 2>&1
record "dotnet run --project src/Cli" $? "$log" "$started"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
