#!/usr/bin/env bash
# Peak memory of `diagnose` with heatmaps on large radiographs (3000x3000, 16-bit PNG), the
# default model. Prints "peak_rss_mb_large <MB>" (the process's peak resident set, from
# /usr/bin/time when present, else medattn's own "peak memory" line).
# Usage: bash bench/large_rss.sh [BUILD_DIR]   (BENCH_LARGE_COUNT images, default 1000; the
# inputs are hard links to four distinct files, the heatmaps are removed at the end)
set -euo pipefail
build=${1:-build}
work=${BENCH_DIR:-$build/bench-large}
count=${BENCH_LARGE_COUNT:-1000}
side=${BENCH_LARGE_SIDE:-3000}
"$build/medattn_make_radiographs" "$work/rad$side" "$count" "$side"
rm -rf "$work/heat" "$work/out.jsonl"
if [[ -x /usr/bin/time ]]; then
  log=$(/usr/bin/time -f 'maxrss_kb %M' "$build/medattn" diagnose "$work/rad$side" --threads "${BENCH_THREADS:-2}" --heatmaps "$work/heat" \
        -o "$work/out.jsonl" --quiet 2>&1 >/dev/null)
  kb=$(sed -n 's/^maxrss_kb \([0-9]*\)$/\1/p' <<<"$log")
  peak=$(( (kb + 512) / 1024 ))
else
  log=$("$build/medattn" diagnose "$work/rad$side" --threads "${BENCH_THREADS:-2}" --heatmaps "$work/heat" -o "$work/out.jsonl" --quiet 2>&1 >/dev/null)
  peak=$(sed -n 's/.*peak memory \([0-9]*\) MB.*/\1/p' <<<"$log")
fi
printf 'peak_rss_mb_large %s\n' "$peak"
printf '# %d images of %dx%d 16-bit, heatmaps, default model\n' "$count" "$side" "$side"
rm -rf "$work/heat"
