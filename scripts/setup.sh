#!/usr/bin/env bash
# Installs, from Debian's archive, exactly the packages medattn needs to build and run,
# and only those that are missing. Safe to run again: it does nothing when all are present.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-openmp
  libopencv-dev libdcmtk-dev libnifti2-dev libzip-dev zlib1g-dev libdeflate-dev libjpeg-dev
  libcli11-dev libspdlog-dev nlohmann-json3-dev catch2 tmux help2man
)
# `setup.sh --test`: also what the test suite drives (a headless browser for the HTML report,
# dicom3tools' dciodvfy and DCMTK's dcmdump/dsrdump that validate the --dicom-out objects).
if [[ "${1:-}" == "--test" ]]; then
  packages+=(chromium dicom3tools dcmtk)
fi
# `setup.sh --bench`: what `make bench`'s Python reference runs on (bench/reference.py), with
# Debian's /usr/bin/python3.
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch python3-opencv python3-numpy time)
fi
# `setup.sh --fuzz`: clang and its libFuzzer runtime.
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
