#!/usr/bin/env bash
# Leave-one-city-out trainings that the CPU cannot afford, for a task lent a GPU machine (device tool):
# the shipped recipe on 128-px tiles (infonce_comp_128), trained on the GPU, scored back here.
#   here:   python benchmarks/cities.py                      # out/cities/*.tif (26 MB: carry it)
#   there:  run(command="bash benchmarks/gpu_loco.sh", carry=["out/cities"], timeout_s=560)
#   here:   cp -r FILES_AT/loco/* out/loco/ && python benchmarks/loco.py --recipe infonce_comp_128 \
#               --hybrid-share 0.5 --composition-transform sqrt --out docs/quality_loco_128.md
# That machine has no GDAL or pyosmium: loco.py --train-only trains and exports (area rasters are read with
# tifffile) and never evaluates. MINUTES per held-out city (default 1.5: four cities fit one 10-minute call).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
OUT=${OUT:-out/gpu}
RECIPE=${RECIPE:-infonce_comp_128}
MINUTES=${MINUTES:-1.5}
[ -n "$(ls out/cities/*.tif 2>/dev/null)" ] || { echo "missing out/cities/*.tif: run benchmarks/cities.py here and carry out/cities" >&2; exit 1; }
mkdir -p "$OUT/loco"
{ nvidia-smi --query-gpu=name,memory.total --format=csv; python -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/device.txt"
timeout 540 python benchmarks/loco.py --recipe "$RECIPE" --minutes "$MINUTES" --device cuda --train-only \
  --hybrid-share 0.5 --composition-transform sqrt --work "$OUT/loco" --areas out/cities 2>&1 | tee "$OUT/loco.txt"
rm -f "$OUT"/loco/*/last.pt  # best.pt re-exports; last.pt only resumes, and the way back is small
