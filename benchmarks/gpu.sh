#!/usr/bin/env bash
# One prepared run (≤ 8 minutes) for a machine with a GPU, e.g. through the device tool:
#   carry out/train (andorra.tif, porto.tif: area rasters, since that machine has no GDAL/pyosmium),
#   then: bash benchmarks/gpu.sh            (writes $OUT or out/gpu: device.txt, tiles.txt, embed.txt, train.txt, mnv3/)
# Measures: sampler tiles/s on the GPU; embedding cells/s over 150k cells; training throughput per encoder at 128 and 256 px (live
# sampler vs pre-made tensors); minutes for mobilenetv3_small_100 to reach 95 % validation accuracy.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
AREAS="out/train/andorra.tif out/train/porto.tif"
for a in $AREAS; do [ -f "$a" ] || { echo "missing $a: rasterize it first (loc2vec rasterize ...) and carry out/train" >&2; exit 1; }; done

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/device.txt"

timeout 90 python benchmarks/tiles.py --area out/train/andorra.tif --n 4000 2>&1 | tee "$OUT/tiles.txt"

# Embedding a 150k-cell grid of Andorra (sampler on the device + the shipped model through torch, fp16).
timeout 60 python benchmarks/embed_gpu.py --area out/train/andorra.tif --cells 150000 2>&1 | tee "$OUT/embed.txt"

for enc in loc2vec mobilenetv3_small_100 resnet18 efficientnet_b0 resnet34; do
  for px in 128 256; do
    timeout 40 python benchmarks/train.py --encoder "$enc" --tile-size "$px" --batch-size 128 --steps 10 2>&1 | tee -a "$OUT/train.txt"
  done
done

# Time to 95 % validation triplet accuracy (the curve is in $OUT/mnv3/metrics.csv).
timeout 200 python -m loc2vec_engine.cli train $AREAS --out "$OUT/mnv3" --encoder mobilenetv3_small_100 \
  --tile-size 128 --batch-size 256 --lr 1e-3 --max-minutes 3 --steps 100000 --val-every 50 --val-triplets 512 \
  --patience 1000 --built-up-weight 0.5 --balance-areas 2>&1 | tail -3 | tee "$OUT/mnv3.txt"
python - "$OUT/mnv3/metrics.csv" <<'PY' | tee -a "$OUT/mnv3.txt"
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["val_acc"]]
hit = next((r for r in rows if float(r["val_acc"]) >= 0.95), None)
print("reached 95 %% validation accuracy after %.1f min (step %s)" % (float(hit["elapsed_s"]) / 60, hit["step"])
      if hit else "did not reach 95 %% in the budget; best %.3f" % max(float(r["val_acc"]) for r in rows))
PY
