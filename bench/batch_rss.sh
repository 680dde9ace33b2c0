#!/usr/bin/env bash
# Peak memory of `diagnose` on 1k and 20k small images: flat means streaming works.
# Usage: bash bench/batch_rss.sh [BUILD_DIR]   (prints one line per run)
set -euo pipefail
build=${1:-build}
work=${BENCH_DIR:-$build/bench-batch}
mkdir -p "$work"
for n in 1000 20000; do
  [[ -d "$work/ph$n/images" ]] || "$build/medattn" phantom --out "$work/ph$n" --count "$n" --seed 5 --size 64 2>/dev/null
done
for n in 1000 20000; do
  for extra in "" "--heatmaps $work/heat$n"; do
    rm -rf "$work/heat$n" "$work/out$n.jsonl"
    log=$("$build/medattn" diagnose -m models/phantom "$work/ph$n/images" -o "$work/out$n.jsonl" --quiet $extra 2>&1 >/dev/null)
    peak=$(sed -n 's/.*peak memory \([0-9]*\) MB.*/\1/p' <<<"$log")
    rate=$(sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p' <<<"$log" | head -1)
    printf 'diagnose %6d images %-10s peak RSS %5s MB  %8s images/s\n' "$n" "${extra:+heatmaps}" "$peak" "$rate"
  done
done
