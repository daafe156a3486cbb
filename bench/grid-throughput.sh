#!/usr/bin/env bash
# Cells per hour of a dfn demo grid run three ways on this machine (docs/grids.md, "Throughput"): one process with
# one thread (--jobs 1), two processes with one thread each (--jobs 2), and one process with two threads. Each run
# starts from an empty folder; the wall time covers every cell and the report step. peak_mb is the largest resident
# set of any one process of the run (GNU time's %M: for --jobs, the largest child, i.e. one cell). Run on idle cores.
# Usage: bash bench/grid-throughput.sh [ROOT=/tmp/dfn-grid-bench] [MODEL=mini|small ...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/tmp/dfn-grid-bench}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mini)
dotnet build src/Cli -c Release -nologo -v quiet
copy="$root/bin" && rm -rf "$copy" && mkdir -p "$root" && cp -r src/Cli/bin/Release/net10.0 "$copy"
dfn="$copy/dfn"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p'), $(nproc) cores; $(date -u +%FT%TZ)"
echo "model,way,cells,wall_s,cells_per_hour,peak_mb"
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o)
for model in "${models[@]}"; do
  # The quick demo's budget (800 steps, 3 evaluation points); the small model gets 2 cells to keep the run short.
  methods=vanilla,min-snr,uw:snr:5,nash:snr:5
  [ "$model" = "mini" ] || methods=vanilla,uw:snr:5
  cells=$(echo "$methods" | tr ',' '\n' | wc -l)
  for way in "jobs1:--jobs 1 --threads 1 --workers 1" "jobs2:--jobs 2" "threads2:--threads 2 --workers 2"; do
    name=${way%%:*}
    out="$root/$model-$name"
    rm -rf "$out" "$out.rss"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "${timer[@]}" ${timer:+"$out.rss"} "$dfn" demo --profile quick --model "$model" --methods "$methods" --out "$out" ${way#*:} > "$out.log" 2>&1
    wall=$(echo "$(date +%s.%N) - $start" | bc -l)
    peak=n/a
    [ -s "$out.rss" ] && peak=$(( $(tail -1 "$out.rss") / 1024 ))
    printf '%s,%s,%d,%.1f,%.1f,%s\n' "$model" "$name" "$cells" "$wall" "$(echo "$cells * 3600 / $wall" | bc -l)" "$peak"
  done
done
