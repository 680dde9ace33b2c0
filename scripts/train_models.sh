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
  --seed 1 --threads 2 --modalities CR,DX --body-part CHEST --age-range 1-5 \
  --view 'frontal (anterior-posterior) chest radiograph, downsampled to 28x28' \
  --population "paediatric patients aged one to five years, Guangzhou Women and Children's Medical Center (Kermany et al. 2018), via MedMNIST v2 PneumoniaMNIST: one hospital" \
  --intended-use 'Pneumonia against normal on 28x28 paediatric frontal chest radiographs (MedMNIST PneumoniaMNIST)' \
  --limitations 'Sees 28x28 pixels only; one hospital, children only, frontal views only; never shown adults, lateral views or other diseases. A benchmark model, not for clinical use.'
"$build/medattn" evaluate -m models/pneumoniamnist "$shared/pneumoniamnist/pneumoniamnist_trainval.npz" --split val --shift \
  --shift-set radiograph --shift-limit 500 --shift-to-card --threads 2 > /dev/null
# BreastMNIST starts from an encoder pretrained (masked image modelling, 60 epochs, about 30
# minutes of one core) on 4,000 images of each shared set, labels unused: chosen on the shift
# benchmark (docs/robustness.md, session 6). Its card then gets its shift summary.
"$build/medattn" pretrain "$shared/pneumoniamnist/pneumoniamnist_trainval.npz" \
  "$shared/breastmnist/breastmnist_trainval.npz" "$shared/chest_xray_224/train" "$shared/brain_mri_224/Training" \
  "$shared/ham10000/metadata.csv" --out "$build/pretrain-mim28" --objective mim --limit 4000 --epochs 60 \
  --batch-size 128 --lr 1e-3 --image-size 28 --stem 32,64 --dim 64 --depth 2 --heads 4 --threads 1
"$build/medattn" train "$shared/breastmnist/breastmnist_trainval.npz" --split train --val-split val \
  --classes malignant,normal_or_benign --out models/breastmnist --name breastmnist --image-size 28 --stem 32,64 \
  --dim 64 --depth 2 --heads 4 --epochs 100 --batch-size 32 --lr 1e-3 --weight-decay 0.1 --label-smoothing 0.05 \
  --ema 0.99 --hflip --members 3 --modalities US --seed 1 --threads 1 --init "$build/pretrain-mim28" \
  --body-part BREAST --view '2D B-mode breast ultrasound, downsampled to 28x28' \
  --intended-use 'Malignant against normal or benign on 28x28 breast ultrasound images (MedMNIST BreastMNIST)' \
  --population 'women aged 25 to 75 years, Baheya Hospital, Cairo, 2018 (Al-Dhabyani et al. 2020), via MedMNIST v2 BreastMNIST: one hospital' \
  --limitations 'Sees 28x28 pixels only; 546 training images from one hospital and one device family; normal and benign are one class. A benchmark model, not for clinical use.'
"$build/medattn" evaluate -m models/breastmnist "$shared/breastmnist/breastmnist_trainval.npz" --split val --shift \
  --shift-set ultrasound --shift-to-card --threads 2 > /dev/null
"$build/medattn" train "$shared/chest_xray_224/train" --out models/pneumonia-cxr --name pneumonia-cxr \
  --classes NORMAL,PNEUMONIA --group-regex 'person([0-9]+)_' --val-fraction 0.15 --image-size 64 --stem 16,32,64 \
  --dim 96 --depth 4 --heads 4 --epochs 40 --batch-size 64 --lr 1e-3 --label-smoothing 0.05 --ema 0.999 \
  --seed 1 --threads 2 --modalities CR,DX --body-part CHEST --age-range 1-5 \
  --view 'frontal (anterior-posterior) chest radiograph' \
  --population "paediatric patients aged one to five years, Guangzhou Women and Children's Medical Center (Kermany et al. 2018): one hospital" \
  --intended-use 'Pneumonia (bacterial or viral) against normal on paediatric frontal chest radiographs, at 64 px' \
  --limitations "One hospital, children only, frontal views only; never shown adults, lateral views, other devices or other diseases; image-level labels; validation images come from the same patients' population and hospital. Not for clinical use."
"$build/medattn" evaluate -m models/pneumonia-cxr "$shared/chest_xray_224/train" --val-fraction 0.15 --seed 1 \
  --group-regex 'person([0-9]+)_' --shift --shift-limit 500 --shift-to-card --threads 2 > /dev/null
"$build/medattn" train "$shared/brain_mri_224/Training" --out models/brain-mri --name brain-mri \
  --classes glioma,meningioma,notumor,pituitary --val-fraction 0.15 --image-size 128 --stem 16,32,64,96 \
  --dim 96 --depth 4 --heads 4 --epochs 28 --batch-size 64 --lr 1e-3 --label-smoothing 0.05 --ema 0.999 --hflip \
  --seed 1 --threads 2 --modalities MR --body-part 'HEAD, BRAIN' \
  --view '2D axial, coronal and sagittal MRI slices (T1, contrast T1, T2, FLAIR mixed)' \
  --population "the Kaggle merge by Nickparvar of figshare (Cheng et al. 2015), SARTAJ and Br35H brain MRI slices; patients' ages, sites and scanners not recorded" \
  --intended-use 'Glioma, meningioma, pituitary tumour or no tumour on single 2D brain MRI slices, at 128 px' \
  --limitations 'Single slices, not volumes; sequences and planes are mixed and unlabelled; some notumor training images are CT slices, not MRI (a shortcut of the data); images of other hospitals were found to be called notumor too often. Not for clinical use.'
"$build/medattn" evaluate -m models/brain-mri "$shared/brain_mri_224/Training" --val-fraction 0.15 --seed 1 --shift \
  --shift-limit 500 --shift-to-card --threads 2 > /dev/null
# HAM10000 dermoscopy: the same recipe with and without the clinical covariates. The two were
# trained at the same time, one thread each (so each took about 45 minutes of one core).
for variant in skin-ham10000 skin-ham10000-image; do
  clinical=()
  [[ $variant == skin-ham10000 ]] && clinical=(--clinical age:num,sex:cat,localization:cat)
  "$build/medattn" train "$shared/ham10000/metadata.csv" --split train --val-split val --out "models/$variant" \
    --channels 3 --image-size 96 --stem 16,32,64 --dim 96 --depth 3 --heads 4 --epochs 20 --batch-size 64 \
    --lr 1e-3 --weight-decay 0.05 --label-smoothing 0.05 --ema 0.995 --hflip --vflip --seed 1 --threads 1 \
    --modalities XC,DMS --body-part SKIN --view 'dermoscopy (contact or polarised) of a single pigmented lesion' \
    --population 'HAM10000 (Tschandl et al. 2018): patients of the Department of Dermatology, Medical University of Vienna, and of a skin cancer practice in Queensland, Australia; mostly fair skin' \
    --intended-use "Seven classes of pigmented skin lesions (akiec, bcc, bkl, df, mel, nv, vasc) on dermoscopy images $([[ $variant == skin-ham10000 ]] && echo 'with age, sex and body site' || echo alone), at 96 px" \
    --limitations 'Dermoscopy only, not clinical (macroscopic) photographs; mostly fair skin; 67% of training images are nv; two sites. Not for clinical use.' \
    "${clinical[@]}" &
done
wait
"$build/medattn" evaluate -m models/skin-ham10000-image "$shared/ham10000/metadata.csv" --split val --shift --shift-limit 500 \
  --shift-to-card --threads 2 > /dev/null
