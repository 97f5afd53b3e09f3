#!/usr/bin/env bash
# Prepare what benchmarks/gpu.sh needs on a GPU machine that has torch, torchvision, lightning,
# torchmetrics, timm, opencv and scipy but no network: wheels for the rest (into .whl/) and a slice of
# Oxford-IIIT Pet (into .bench_data/), both ignored by git (.gitignore). Run it from the repository root,
# where pip can reach PyPI:
#   bash benchmarks/gpu_carry.sh [DATA_ROOT] [NUM_IMAGES]
# DATA_ROOT: a full or partial Oxford-IIIT Pet folder (default ../shared/data/oxford-iiit-pet);
# NUM_IMAGES: how many trainval images to copy (default 250, about 25 MB; the carry limit is 64 MiB).
# GPU_PYTHON (default 3.12) is the GPU machine's Python version, for the compiled wheels.
set -euo pipefail
DATA_ROOT=${1:-../shared/data/oxford-iiit-pet}
NUM_IMAGES=${2:-250}
GPU_PYTHON=${GPU_PYTHON:-3.12}
PYTHON=${PYTHON:-python3}

# The versions this repository is tested with; the GPU image lacks them (or has other versions).
WHEELS=(
    segmentation-models-pytorch==0.6.0 timm==1.0.31 huggingface-hub==2.4.0
    albumentations==2.0.8 albucore==0.0.24 stringzilla==5.3.2 simsimd==6.5.16
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
rm -rf .whl && mkdir -p .whl
PLATFORMS=()
for n in 17 27 28 31 34 35; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" \
    --implementation cp "${PLATFORMS[@]}" --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"

# A slice of the dataset in the official layout: NUM_IMAGES trainval and 50 test names, a fixed random
# sample (all breeds, so all kinds of image sizes), with their images and trimaps.
DEST=.bench_data/oxford-iiit-pet
rm -rf .bench_data && mkdir -p "$DEST/images" "$DEST/annotations/trimaps"
shuf -n "$NUM_IMAGES" --random-source=<(yes) "$DATA_ROOT/annotations/trainval.txt" > "$DEST/annotations/trainval.txt"
shuf -n 50 --random-source=<(yes) "$DATA_ROOT/annotations/test.txt" > "$DEST/annotations/test.txt"
cut -d' ' -f1 "$DEST/annotations/trainval.txt" "$DEST/annotations/test.txt" | while read -r name; do
    cp "$DATA_ROOT/images/$name.jpg" "$DEST/images/"
    cp "$DATA_ROOT/annotations/trimaps/$name.png" "$DEST/annotations/trimaps/"
done
du -sh .whl .bench_data
