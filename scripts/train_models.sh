#!/usr/bin/env bash
# Retrains the shipped real-data models from ../shared/data with their committed settings.
# models/pneumoniamnist, models/breastmnist, models/pneumonia-cxr, models/brain-mri, and the two
# HAM10000 models (skin-ham10000 with clinical covariates, skin-ham10000-image without).
set -euo pipefail
build=${1:-build}
shared=${SHARED_DATA:-../shared/data}
"$build/medattn" train "$shared/pneumoniamnist/pneumoniamnist_trainval.npz" --split train --val-split val \
  --classes normal,pneumonia --out models/pneumoniamnist --name pneumoniamnist --image-size 28 --stem 32,64 \
  --dim 96 --depth 4 --heads 4 --epochs 30 --batch-size 64 --lr 1e-3 --label-smoothing 0.05 --ema 0.999 \
  --seed 1 --threads 2
"$build/medattn" train "$shared/breastmnist/breastmnist_trainval.npz" --split train --val-split val \
  --classes malignant,normal_or_benign --out models/breastmnist --name breastmnist --image-size 28 --stem 32,64 \
  --dim 64 --depth 2 --heads 4 --epochs 100 --batch-size 32 --lr 1e-3 --weight-decay 0.1 --label-smoothing 0.05 \
  --ema 0.99 --hflip --members 3 --modalities US --seed 1 --threads 1
"$build/medattn" train "$shared/chest_xray_224/train" --out models/pneumonia-cxr --name pneumonia-cxr \
  --classes NORMAL,PNEUMONIA --group-regex 'person([0-9]+)_' --val-fraction 0.15 --image-size 64 --stem 16,32,64 \
  --dim 96 --depth 4 --heads 4 --epochs 40 --batch-size 64 --lr 1e-3 --label-smoothing 0.05 --ema 0.999 \
  --seed 1 --threads 2
"$build/medattn" train "$shared/brain_mri_224/Training" --out models/brain-mri --name brain-mri \
  --classes glioma,meningioma,notumor,pituitary --val-fraction 0.15 --image-size 128 --stem 16,32,64,96 \
  --dim 96 --depth 4 --heads 4 --epochs 28 --batch-size 64 --lr 1e-3 --label-smoothing 0.05 --ema 0.999 --hflip \
  --seed 1 --threads 2
# HAM10000 dermoscopy: the same recipe with and without the clinical covariates. The two were
# trained at the same time, one thread each (so each took about 45 minutes of one core).
for variant in skin-ham10000 skin-ham10000-image; do
  clinical=()
  [[ $variant == skin-ham10000 ]] && clinical=(--clinical age:num,sex:cat,localization:cat)
  "$build/medattn" train "$shared/ham10000/metadata.csv" --split train --val-split val --out "models/$variant" \
    --channels 3 --image-size 96 --stem 16,32,64 --dim 96 --depth 3 --heads 4 --epochs 20 --batch-size 64 \
    --lr 1e-3 --weight-decay 0.05 --label-smoothing 0.05 --ema 0.995 --hflip --vflip --seed 1 --threads 1 \
    "${clinical[@]}" &
done
wait
