#!/usr/bin/env bash
# Measures every heatmap method of models/phantom on 300 fresh phantoms (seed 123, never seen
# in training): pointing game and IoU against the known lesion masks, deletion and insertion
# AUC, and the randomisation check. Prints one JSON line per method.
set -euo pipefail
build=${1:-build}
model=${2:-models/phantom}
data="$build/phantom-heldout"
[ -d "$data/images" ] || "$build/medattn" phantom --out "$data" --count 300 --seed 123
# Every method of the table (explain/registry.h), as the binary lists it.
for method in $("$build/medattn" --completion methods); do
  extra=""
  case "$method" in rollout|gradcam|attn-grad|saliency) extra="--randomization-check" ;; esac
  "$build/medattn" evaluate -m "$model" "$data/images" --masks "$data/masks" --method "$method" $extra \
    --format json 2>/dev/null
done
