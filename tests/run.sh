#!/usr/bin/env bash
# Builds the solution once, runs every test program, and ends with one line: "N passed, N failed".
# Usage: bash tests/run.sh [extra Expecto arguments, e.g. --filter "Clustering"]
set -uo pipefail
cd "$(dirname "$0")/.."

# Each entry is a test project; each is an Expecto console program.
projects=(tests/Core.Tests tests/Api.Tests tests/Cli.Tests tests/Generators.Tests)

if ! dotnet build DiffusionFunctional.sln -c Release -nologo -v quiet; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
for project in "${projects[@]}"; do
  ls "$project"/*.?sproj >/dev/null 2>&1 || continue
  name=$(basename "$project")
  log=$(mktemp)
  echo "== $name"
  dotnet run --project "$project" -c Release --no-build -- --colours 0 --no-spinner "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  summary=$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" | grep -E 'EXPECTO! [0-9]+ tests? run' | tail -1)
  if [ -z "$summary" ]; then
    echo "$name: no test summary (exit code $code)"
    failed=$((failed + 1))
  else
    p=$(echo "$summary" | sed -E 's/.* ([0-9]+) passed.*/\1/')
    f=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    e=$(echo "$summary" | sed -E 's/.* ([0-9]+) errored.*/\1/')
    passed=$((passed + p))
    failed=$((failed + f + e))
    if [ "$code" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
      echo "$name: exit code $code with no failed test"
      failed=$((failed + 1))
    fi
  fi
  rm -f "$log"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
