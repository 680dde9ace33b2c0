#!/usr/bin/env bash
# Rebuilds models/phantom exactly as shipped: 3000 phantoms (seed 1), then train.
set -euo pipefail
build=${1:-build}
out=${2:-models/phantom}
[ -d "$build/phantom-train/images" ] || "$build/medattn" phantom --out "$build/phantom-train" --count 3000 --seed 1
"$build/medattn" train "$build/phantom-train/images" --out "$out" --name phantom \
  --classes normal,nodule,consolidation --image-size 96 --stem 16,32,64 --dim 64 --depth 3 \
  --heads 4 --epochs 24 --batch-size 32 --lr 1e-3 --val-fraction 0.2 --seed 1 --threads 2
