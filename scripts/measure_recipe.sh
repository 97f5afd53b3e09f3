#!/usr/bin/env bash
# Train one configuration and score its masks on the test split at the images' original size
# (docs/recipe.md). Run from the repository root:
#   scripts/measure_recipe.sh OUT_DIR FIT_FLAGS...
#   scripts/measure_recipe.sh runs/recipe/unet-seed0 --config configs/unet.yaml \
#       --config configs/cpu.yaml --config configs/cpu_subset.yaml --seed_everything 0
# Writes under OUT_DIR: fit.log, wall.txt (fit wall seconds and the load average before and after),
# the CSV logger's metrics and checkpoints, and one masks_<variant>/ folder and scores_<variant>.json
# per variant: best (the checkpoint of the best validation Dice), best_tta (the same, flip TTA),
# last_tta (the last epoch's checkpoint, flip TTA) and, when the checkpoint holds raw weights beside
# an EMA (EMAWeights), raw_tta (best's raw weights, flip TTA). Environment: PYTHON (default python),
# DATA_ROOT (default ../shared/data/oxford-iiit-pet), VARIANTS (default "best best_tta last_tta raw_tta").
set -euo pipefail

PYTHON=${PYTHON:-python}
DATA_ROOT=${DATA_ROOT:-../shared/data/oxford-iiit-pet}
VARIANTS=${VARIANTS:-best best_tta last_tta raw_tta}
out=$1
shift
mkdir -p "$out"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/wall.txt"
start=$(date +%s)
"$PYTHON" -m unetskip fit "$@" --data.root "$DATA_ROOT" --trainer.default_root_dir "$out" \
    --trainer.logger CSVLogger --trainer.logger.save_dir "$out" > "$out/fit.log" 2>&1
echo "fit wall_s: $(($(date +%s) - start))" >> "$out/wall.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/wall.txt"

checkpoints=$(dirname "$(ls "$out"/*/version_*/checkpoints/last.ckpt | tail -1)")
best=$(ls "$checkpoints"/epoch*.ckpt | tail -1)
"$PYTHON" scripts/score_masks.py --data.root "$DATA_ROOT" --write_list "$out/test_images.txt"
for variant in $VARIANTS; do
    case $variant in
        best | best_tta) ckpt=$best ;;
        last_tta) ckpt=$checkpoints/last.ckpt ;;
        raw_tta)
            ckpt=$out/raw_weights.ckpt
            # The raw weights EMAWeights keeps beside the average, as a checkpoint of their own.
            "$PYTHON" -c "
import sys, torch
checkpoint = torch.load(sys.argv[1], map_location='cpu', weights_only=True)
if 'current_model_state' not in checkpoint:
    sys.exit('no raw weights in ' + sys.argv[1])
checkpoint['state_dict'] = checkpoint.pop('current_model_state')
checkpoint.pop('averaging_state', None)
torch.save(checkpoint, sys.argv[2])" "$best" "$ckpt" || continue
            ;;
        *)
            echo "unknown variant $variant" >&2
            exit 2
            ;;
    esac
    tta=--no_tta
    [[ $variant == *_tta ]] && tta=--tta
    "$PYTHON" -m unetskip predict --ckpt_path "$ckpt" --input "$out/test_images.txt" \
        --output "$out/masks_$variant" $tta > "$out/predict_$variant.log" 2>&1
    "$PYTHON" scripts/score_masks.py "$out/masks_$variant" --data.root "$DATA_ROOT" --json \
        > "$out/scores_$variant.json"
    echo "$variant ($(basename "$ckpt")): $(cat "$out/scores_$variant.json")"
done
cat "$out/wall.txt"
