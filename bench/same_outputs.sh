#!/usr/bin/env bash
# Checks that two medattn binaries write the same records and heatmaps, byte for byte: the
# demo (6 phantoms, models/phantom, jsonl and json), every shared DICOM and NIfTI file with the
# default model, and 64 chest_xray_224/train JPEGs with pneumonia-cxr (heatmaps at batch 8,
# none at batch 5, one image alone at batch 1). Records are compared with the output folder
# masked, PNGs by their pixels (Debian's python3-opencv). Prints "identical" or the files that
# differ (exit 1).
# Usage: bash bench/same_outputs.sh BEFORE_BINARY AFTER_BINARY [WORK_DIR]
set -u
before=$1; after=$2; work=${3:-/tmp/medattn-same-outputs}
root=$(cd "$(dirname "$0")/.." && pwd)
data=${MEDATTN_SHARED_DATA:-$root/../shared/data}
mkdir -p "$work/in64"
ls "$data"/chest_xray_224/train/NORMAL/*.jpeg | head -32 > "$work/list.txt"
ls "$data"/chest_xray_224/train/PNEUMONIA/*.jpeg | head -32 >> "$work/list.txt"
while read -r f; do ln -sf "$f" "$work/in64/$(basename "$f")"; done < "$work/list.txt"
first=$(head -1 "$work/list.txt")
run() {  # run BINARY OUT
  local m=$1 o=$2
  rm -rf "$o"; mkdir -p "$o"
  cd "$root" || exit 2
  "$m" phantom --out "$work/phantoms" --count 6 --seed 2026 >/dev/null 2>&1
  "$m" diagnose -m models/phantom --heatmaps "$o/demo-heat" "$work/phantoms/images" --format jsonl -o "$o/demo.jsonl" --quiet --threads 2
  "$m" diagnose -m models/phantom --format json -o "$o/demo.json" "$work/phantoms/images" --quiet --threads 2
  "$m" diagnose --heatmaps "$o/shared-heat" "$data/dicom" "$data/nifti" --format jsonl -o "$o/shared.jsonl" --quiet --threads 2 --ignore-scope
  "$m" diagnose -m models/pneumonia-cxr --heatmaps "$o/cxr-heat" "$work/in64" --format jsonl -o "$o/cxr.jsonl" --quiet --threads 2 --batch-size 8
  "$m" diagnose -m models/pneumonia-cxr "$work/in64" --format jsonl -o "$o/cxr-noheat.jsonl" --quiet --threads 2 --batch-size 5
  "$m" diagnose -m models/pneumonia-cxr --heatmaps "$o/cxr-heat-b1" "$first" --format jsonl -o "$o/cxr-b1.jsonl" --quiet --threads 2 --batch-size 1
}
run "$before" "$work/before" 2>/dev/null
run "$after" "$work/after" 2>/dev/null
a=$work/before; b=$work/after; bad=0; count=0; pixels=0
for f in "$a"/*.jsonl "$a"/*.json; do
  n=$(basename "$f")
  cmp -s <(sed "s#$a/#OUT/#g" "$f") <(sed "s#$b/#OUT/#g" "$b/$n") || { echo "differ: $n"; bad=1; }
done
# Heatmap PNGs are compared by their decoded pixels (the writer may change the bytes, never the
# pixels), other files byte for byte.
pngs=$work/png-pairs.txt; : > "$pngs"
for d in "$a"/*/; do
  for f in "$d"*; do
    count=$((count + 1))
    g=$b/${f#"$a"/}
    if cmp -s "$f" "$g"; then continue; fi
    if [[ $f == *.png && -f $g ]]; then echo "$f $g" >> "$pngs"; else echo "differ: ${f#"$a"/}"; bad=1; fi
  done
done
pixels=$(/usr/bin/python3 -c 'import sys, cv2, numpy as np
n = 0
for line in open(sys.argv[1]):
    p, q = line.split()
    a, b = (cv2.imread(x, cv2.IMREAD_UNCHANGED) for x in (p, q))
    if a is None or b is None or a.dtype != b.dtype or not np.array_equal(a, b):
        print("differ:", p, file=sys.stderr); n = -1000000
    n += 1
print(n)' "$pngs")
[[ $pixels -lt 0 ]] && bad=1
echo "compared $(ls "$a"/*.json* | wc -l) record files and $count heatmap files ($pixels PNGs with other bytes, the same pixels): $([[ $bad == 0 ]] && echo identical || echo DIFFERENT)"
exit $bad
