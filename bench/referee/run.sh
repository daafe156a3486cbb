#!/usr/bin/env bash
# The outside referee (docs/fidelity.md, "The outside referee"): the authors' released code trains vanilla and ANT-UW
# on MNIST digits (bench/referee/referee.py), and `dfn evaluate` scores every sample folder against held-out digits.
#
#   bench/referee/run.sh ANT_CLONE OUT [referee.py train options: --steps 48000 --sample-every 4000 --samples 1000 ...]
#
# ANT_CLONE: a clone of gohyojun15/ANT_diffusion (the study used commit 1c14183). Needs, for $PYTHON (default
# /usr/bin/python3): PyTorch, torchvision and timm (the released DiT imports timm, which imports torchvision), Pillow
# and NumPy; a GPU for useful speed (DiT-S/2 on one CPU core: several seconds per step). Resumable: run it again after
# any stop; finished sample folders and scores are kept. Writes OUT/real/, OUT/vanilla/, OUT/uw/ and OUT/scores.jsonl
# (one `dfn evaluate --json` object per line, with its method and step), and prints the scores as a table at the end.
# REFEREE_TRAIN=0 only scores: for sample folders trained elsewhere (a GPU machine without .NET) and copied into OUT.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: bench/referee/run.sh ANT_CLONE OUT [referee.py train options]" >&2; exit 2; fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ant=$1 out=$2
shift 2
py=${PYTHON:-/usr/bin/python3}
read -r -a dfn <<< "${DFN:-dotnet run --project $repo/src/Cli -c Release --}"
modules="torch, torchvision, timm, PIL, numpy"
[ "${REFEREE_TRAIN:-1}" = 0 ] && modules="torch, PIL, numpy"  # scoring reads and writes digits only
if ! "$py" -c "import $modules" 2>/dev/null; then
  echo "referee: $py needs PyTorch, torchvision, timm, Pillow and NumPy (timm: put a clone of huggingface/pytorch-image-models on PYTHONPATH)" >&2
  exit 2
fi
count=1000
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do [ "${args[i]}" = "--samples" ] && count=${args[i + 1]}; done
mkdir -p "$out"
"${dfn[@]}" data fetch mnist
"$py" "$here/referee.py" real --out "$out"
if [ "${REFEREE_TRAIN:-1}" != 0 ]; then
  for method in vanilla uw; do
    "$py" "$here/referee.py" train --ant "$ant" --out "$out" --method "$method" "$@"
  done
fi
# Score each sample folder once; a line of scores.jsonl names its folder, so a resumed run skips what it has.
touch "$out/scores.jsonl"
for folder in "$out"/vanilla/samples-* "$out"/uw/samples-*; do
  [ -d "$folder" ] || continue
  case "$folder" in *.partial) continue ;; esac
  name=${folder#"$out"/}
  grep -q "\"folder\": \"$name\"" "$out/scores.jsonl" && continue
  score=$("${dfn[@]}" evaluate --real "$out/real" --fake "$folder" --count "$count" --json)
  method=${name%%/*} step=$((10#${name##*samples-}))
  echo "{\"folder\": \"$name\", \"method\": \"$method\", \"step\": $step, \"score\": $score}" >> "$out/scores.jsonl"
done
"$py" - "$out/scores.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
scores = {(r["method"], r["step"]): r["score"] for r in rows}
print(f"{'step':>8} {'vanilla FD':>11} {'ANT-UW FD':>11} {'vanilla KID':>12} {'ANT-UW KID':>12}")
def cell(method, step, key, width, digits):
    s = scores.get((method, step))
    return f"{s[key]:>{width}.{digits}f}" if s else f"{'-':>{width}}"
for step in sorted({s for _, s in scores}):
    print(f"{step:>8} {cell('vanilla', step, 'fd_resnet18', 11, 2)} {cell('uw', step, 'fd_resnet18', 11, 2)} "
          f"{cell('vanilla', step, 'kid', 12, 4)} {cell('uw', step, 'kid', 12, 4)}")
PY
