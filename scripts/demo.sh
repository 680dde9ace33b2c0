#!/usr/bin/env bash
# The demo: generate a few phantom chest radiographs, diagnose them with the shipped
# phantom model, write heatmaps, and say where everything is.
set -euo pipefail
build=${1:-build}
out=demo-out
rm -rf "$out"
echo "== 1. generating 6 phantom radiographs (seed 2026) in $out/phantoms"
"$build/medattn" phantom --out "$out/phantoms" --count 6 --seed 2026
echo
echo "== 2. the shipped model"
"$build/medattn" info -m models/phantom
echo
echo "== 3. diagnosing them, with heatmaps (default method: saliency) in $out/heatmaps"
"$build/medattn" diagnose -m models/phantom --heatmaps "$out/heatmaps" "$out/phantoms/images"
"$build/medattn" diagnose -m models/phantom --format json -o "$out/diagnoses.json" "$out/phantoms/images" 2>/dev/null
echo
echo "== done"
echo "   overlays (image + heatmap):  $out/heatmaps/*.heatmap.png"
echo "   raw maps (16-bit grey PNG):  $out/heatmaps/*.heatmap-raw.png"
echo "   lesion masks (ground truth): $out/phantoms/masks/<class>/"
echo "   JSON results:                $out/diagnoses.json"
