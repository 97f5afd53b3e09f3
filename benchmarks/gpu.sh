#!/usr/bin/env bash
# The speed tables on one GPU at 256 px, in one call: each table is cut off at its time limit, so the whole
# script ends within 9 minutes (expected: about 5 on an H100).
# Prepare the wheels and data it carries with benchmarks/gpu_carry.sh, then, from the repository root on the
# GPU machine (torch, lightning and torchmetrics installed; no network):
#   bash benchmarks/gpu.sh
# It prints the card and four tables, each also saved as JSON and log under $OUT (default bench_out/):
#   default   the training defaults (bf16-mixed and channels_last, chosen automatically), with Lightning's
#             overhead and the data loader; also unet_full_res (stem_stride 1, base_channels 16, depth 5:
#             the full-resolution U-Net, the default before)
#   fp32      32-true, contiguous: what the defaults gain
#   bf16_nchw bf16-mixed, contiguous: what channels_last adds on its own
#   compile   the defaults plus torch.compile, unet and smp_unet only (compile time = the warm-up column)
# 32-true convolutions run in TF32 on the GPU (PyTorch's default for cuDNN).
set -uo pipefail
OUT=${OUT:-bench_out}
PYTHON=${PYTHON:-python3}
DATA=${DATA:-.bench_data/oxford-iiit-pet}
BATCH=${BATCH:-16}  # the configs' data.batch_size
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/unetskip-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/unetskip-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD:$PYTHONPATH

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
"$PYTHON" - <<'EOF' | tee -a "$OUT/gpu.txt" || exit 1
import os, torch, lightning, segmentation_models_pytorch, albumentations
print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}")
print(f"lightning {lightning.__version__}, smp {segmentation_models_pytorch.__version__}, "
      f"albumentations {albumentations.__version__}, cpus {len(os.sched_getaffinity(0))}")
print(f"card: {torch.cuda.get_device_name()}, capability {torch.cuda.get_device_capability()}, "
      f"bf16 {torch.cuda.is_bf16_supported()}")
EOF

bench() {  # NAME SECONDS ARGS...: one table, cut off after SECONDS so the whole call stays bounded
    local name=$1 seconds=$2
    shift 2
    echo "=== $name: python -m unetskip bench --device cuda --image-size 256 --batch-size $BATCH $*"
    timeout "$seconds" "$PYTHON" -m unetskip.bench --device cuda --image-size 256 --batch-size "$BATCH" \
        --steps 20 --repeats 5 --data-root "$DATA" --json "$OUT/$name.json" "$@" 2>&1 | tee "$OUT/$name.log"
}
sed -e 's/stem_stride: 2/stem_stride: 1/; s/base_channels: 32/base_channels: 16/; s/depth: 4/depth: 5/' \
    configs/unet.yaml > "$OUT/unet_full_res.yaml"
bench default 150 --configs configs/unet.yaml configs/no_skip.yaml configs/smp_unet.yaml "$OUT/unet_full_res.yaml"
bench fp32 60 --precision 32-true --no-channels-last --skip-overhead --skip-loader
bench bf16_nchw 60 --precision bf16-mixed --no-channels-last --skip-overhead --skip-loader
bench compile 240 --compile --skip-overhead --skip-loader --configs configs/unet.yaml configs/smp_unet.yaml

echo "=== summary (train img/s per table)"
"$PYTHON" - "$OUT" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    result = json.loads(path.read_text())
    rows = ", ".join(f"{m['name']} {m['train_img_s']:.0f}" for m in result["models"])
    print(f"{path.stem:10s} {rows}")
EOF
