#!/usr/bin/env bash
# Runs examples/slurm on a real single-node Slurm started on this machine: installs Debian's slurm-wlm and munge when
# missing (root and apt), configures a cluster of this one node in a temporary folder (proctrack/linuxproc, no
# cgroups), starts munged, slurmctld and slurmd, submits `dfn reproduce --profile smoke` as 2 array tasks plus the
# dependent report job, waits, and checks the report. Ends with "N passed, N failed", or with "skipped: WHY" (exit 0)
# when Slurm cannot be installed or its daemons do not start within a minute.
# Usage: bash tests/slurm.sh   (after a Release build of src/Cli)
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dfn_dll="$repo/src/Cli/bin/Release/net10.0/dfn.dll"
skip() { echo "slurm: skipped: $*"; exit 0; }
[ -f "$dfn_dll" ] || skip "no Release build of dfn at $dfn_dll"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed, and installing them needs root and apt"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } 2>&1 | tail -3
  command -v slurmctld >/dev/null || skip "apt-get could not install slurm-wlm"
fi

work=$(mktemp -d /tmp/dfn-slurm.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# munge: a key of our own and a daemon on a socket in the temporary folder.
mkdir -p "$work/munge" && chmod 700 "$work/munge"
head -c 1024 /dev/urandom > "$work/munge/munge.key" && chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --foreground --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" 2>>"$work/munge/stderr.log" &
pids+=($!)

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool" "$work/out"
cat > "$work/slurm.conf" <<EOF
ClusterName=dfn-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -i >/dev/null 2>&1 &
pids+=($!)
slurmd -D >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %T 2>/dev/null | grep -q idle || skip "the Slurm daemons did not report an idle node within a minute (logs: slurmctld $(tail -1 "$work/slurmctld.log" 2>/dev/null))"
echo "slurm: one node ($host, $(nproc) CPUs) up"

passed=0
failed=0
check() { # check NAME COMMAND...
  if "${@:2}"; then echo "slurm: passed: $1"; passed=$((passed + 1)); else echo "slurm: FAILED: $1"; failed=$((failed + 1)); fi
}

out="$work/out/smoke"
submitted=$(DFN="dotnet $dfn_dll" bash examples/slurm/submit.sh "$out" 2 reproduce --profile smoke --log-every 10)
echo "slurm: $submitted"
for _ in $(seq 600); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
check "every job left the queue within 10 minutes" test -z "$(squeue -h 2>/dev/null)"
check "both array tasks ran a shard" test "$(grep -l 'shard [12]/2: done' "$out"/dfn-cells-*.out 2>/dev/null | wc -l)" = 2
report_complete() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['complete'] and len(r['methods'])==4 and len(r['ntg'])==2 else 1)" "$out/report.json"; }
check "the dependent report job wrote a complete report.json (4 methods, O2 for 2 models)" report_complete
if [ "$failed" -gt 0 ]; then
  for f in "$out"/*.out; do echo "--- $f"; tail -5 "$f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
