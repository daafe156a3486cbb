#!/usr/bin/env bash
# How often the kernel check flags each configuration over fresh processes with no cached verdict (docs/platform.md).
# Usage: bash bench/kernel-detection.sh [RUNS=20] [CONFIGURATIONS="onednn auto aten"]; build first (dotnet build src/Cli -c Release).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
configurations=${2:-onednn auto aten}
dfn=src/Cli/bin/Release/net10.0/dfn
export DFN_CACHE=$(mktemp -d)
trap 'rm -rf "$DFN_CACHE"' EXIT
for configuration in $configurations; do
  flagged=0; passed=0; seconds=""
  for i in $(seq 1 "$runs"); do
    rm -rf "$DFN_CACHE/kernels"
    out=$(DFN_KERNELS=$configuration "$dfn" kernels --recheck --json 2>/dev/null); code=$?
    if [ "$code" -eq 2 ]; then flagged=$((flagged + 1)); else passed=$((passed + 1)); fi
    seconds="$seconds $(echo "$out" | grep -o '"CheckSeconds":[0-9.]*' | cut -d: -f2 | cut -c1-4)"
  done
  echo "$configuration: flagged $flagged of $runs, passed $passed; check seconds:$seconds"
done
