#!/usr/bin/env bash
# The runs of the fidelity study (docs/fidelity.md), in the order they were run: each is one resumable `dfn reproduce`
# folder under ROOT; run the script again after any stop and every finished part is skipped. One process at a time,
# one libtorch thread and one ResNet-18 thread, so the other core stays free. Precision `auto`: bf16 where the CPU has
# native bfloat16 and its kernels pass the check (every run recorded in docs/fidelity.md up to 2026-12-07), fp32
# elsewhere; a fixed `--precision bf16` would stop with exit 2 on a CPU without it.
# Usage: bash bench/fidelity-study.sh [ROOT=/work/runs/fidelity] [DFN=a dfn binary; default: a copy of this build]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/work/runs/fidelity}
mkdir -p "$root"
if [ -n "${2:-}" ]; then
  dfn=$2
else
  # A long run must not load assemblies a later build overwrites: it runs from a copy of this build, kept by commit.
  commit=$(git rev-parse --short HEAD)
  copy="$root/bin-$commit"
  if [ ! -x "$copy/dfn" ]; then
    dotnet build src/Cli -c Release -nologo -v quiet
    rm -rf "$copy.tmp" && cp -r src/Cli/bin/Release/net10.0 "$copy.tmp" && mv "$copy.tmp" "$copy"
  fi
  dfn=$copy/dfn
fi
run() { # run NAME ARGS...: one reproduce folder, its log beside it
  local name=$1; shift
  echo "== $name $(date -u +%FT%TZ)"
  "$dfn" reproduce --profile quick --threads 1 --workers 1 --precision auto --no-observations --log-every 2000 \
    --out "$root/$name" "$@" >> "$root/$name.log" 2>&1 || { code=$?; echo "$name: exit $code"; [ "$code" -ne 130 ] || exit 130; }
}
# 1. The released code's recipe, seed 0 first (EMA 0.9999 from step 0 needs a long budget; vanilla was still improving at 48,000).
run official --recipe official --seeds 1 --steps 48000 --evaluate-every 4000
# 2. The single factors that separate ours from official, one seed each, on official's budget.
run official-linear --recipe official:schedule=linear --seeds 1 --steps 48000 --evaluate-every 4000
run official-snr --recipe official:objective=snr --seeds 1 --steps 48000 --evaluate-every 4000
run official-clip-all --recipe official:clip=all --seeds 1 --steps 48000 --evaluate-every 4000
# 3. Our recipe to its plateau, and the anneal from ANT's weights to uniform, 3 seeds.
run ours --recipe ours --seeds 3 --steps 16000 --evaluate-every 2000 --methods uw:snr:5+anneal:4000,nash:snr:5+anneal:4000
# 4. Official's other two seeds.
run official --recipe official --seeds 3 --steps 48000 --evaluate-every 4000
# 5. The regime, our recipe: a 4x larger model at 28x28 (2 seeds), and v-prediction (3 seeds, 8,000 steps).
run ours-small --recipe ours --model small --seeds 2 --steps 16000 --evaluate-every 2000
run ours-v --recipe ours:prediction=v --seeds 3 --steps 8000 --evaluate-every 2000
# 6. One factor of official on ours, at ours's budget and run 3's sampler: the cosine schedule, 3 seeds (it changes the verdicts).
run ours-cosine --recipe ours:schedule=squaredcos_cap_v2,sampler=ddim --seeds 3 --steps 8000 --evaluate-every 2000
# 7. The other two factors of official on ours, the same way, one seed each: equal timestep clusters; Nash-only clipping.
run ours-timestep --recipe ours:objective=timestep,sampler=ddim --seeds 1 --steps 8000 --evaluate-every 2000
run ours-clip-nash --recipe ours:clip=nash,sampler=ddim --seeds 1 --steps 8000 --evaluate-every 2000
# 8. The three factors together on ours, 3 seeds (ANT ahead on every seed).
run ours-official3 --recipe ours:schedule=squaredcos_cap_v2,objective=timestep,clip=nash,sampler=ddim --seeds 3 --steps 8000 --evaluate-every 2000
# 8b. The same three factors to 16,000 steps, 3 seeds: does ANT's lead survive vanilla's catching up?
run ours-official3-16k --recipe ours:schedule=squaredcos_cap_v2,objective=timestep,clip=nash,sampler=ddim --seeds 3 --steps 16000 --evaluate-every 2000
# 7b. The clip factor's second seed (seed 0 again with it: the folder of 7 went with its machine).
run ours-clip-nash --recipe ours:clip=nash,sampler=ddim --seeds 2 --steps 8000 --evaluate-every 2000
echo "== all done $(date -u +%FT%TZ)"
