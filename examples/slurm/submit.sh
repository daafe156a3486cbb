#!/usr/bin/env bash
# Submits a dfn grid to Slurm: SHARDS array tasks, each running one shard of the cells, then the report as a job that
# depends on all of them. Prints the two job ids.
# Usage: DFN="dotnet /path/to/dfn.dll" bash examples/slurm/submit.sh OUT SHARDS COMMAND [OPTIONS...]
#   e.g. bash examples/slurm/submit.sh /shared/runs/full 15 reproduce --profile full --seeds 3  (12 cells + 3 O2 specialists cells)
# OUT must be on a file system every node sees (and that supports flock: NFS v4, Lustre, BeeGFS do).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: submit.sh OUT SHARDS COMMAND [OPTIONS...]  (COMMAND: reproduce or demo)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
export OUT=$1 SHARDS=$2
shift 2
export DFN_ARGS="$*" DFN=${DFN:-dfn}
mkdir -p "$OUT"
cells=$(sbatch --parsable --array="1-$SHARDS" --chdir="$OUT" --export=ALL "$here/cells.sbatch")
report=$(sbatch --parsable --dependency="afterany:$cells" --chdir="$OUT" --export=ALL "$here/report.sbatch")
echo "cells: job $cells (array 1-$SHARDS); report: job $report (after all of them); output in $OUT"
