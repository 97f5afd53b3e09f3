#!/usr/bin/env bash
# Build the Docker image with podman and smoke-run it, on a machine with no Docker engine and no
# reachable registry (see docs/docker.md). Re-runnable; run as root from anywhere:
#   apt-get install -y podman runc debootstrap     # once
#   scripts/docker_smoke.sh
# Steps (each timed):
#   1. the local base, built once and then reused: Debian bookworm (debootstrap) with Python 3.11 and
#      $TORCH_SPEC installed into /opt/venv from pip's usual sources (here, this machine's local wheels);
#   2. the image, with BASE_IMAGE pointing at that base;
#   3. `--help`; a `fit` with fast_dev_run on synthetic data (tests/conftest.py) mounted read-only at
#      /data; a one-epoch `fit` that writes a checkpoint into /runs; `test` from that checkpoint alone.
# Containers run with --network=none. Environment: PYTHON (a Python with the dev dependencies, for
# the synthetic data; default .venv/bin/python), WORK (scratch folder), TORCH_SPEC, BASE_IMAGE, IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
WORK=${WORK:-/var/tmp/unetskip-docker}
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
BASE_IMAGE=${BASE_IMAGE:-localhost/unetskip-base:torch2.14.1}
IMAGE=${IMAGE:-localhost/unetskip:dev}
USER_UID=1000

mkdir -p "$WORK"
# Podman's default ulimits are refused on these machines, and crun fails on their cgroup layout.
printf '[containers]\ndefault_ulimits = []\n' > "$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
podman() { command podman --runtime runc "$@"; }

step() { printf '\n== %s\n' "$*"; STEP_START=$SECONDS; }
done_step() { printf -- '-- %s s\n' "$((SECONDS - STEP_START))"; }

build_local_base() {
    local rootfs="$WORK/rootfs"
    rm -rf "$rootfs" "$WORK/wheels"
    # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
    "$PYTHON" -m pip download --quiet --dest "$WORK/wheels" $TORCH_SPEC
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs"
    cp -al "$WORK/wheels" "$rootfs/tmp/wheels"
    # env -i: none of this machine's pip settings (PIP_FIND_LINKS, ...) inside the chroot.
    chroot "$rootfs" env -i PATH=/usr/bin:/bin python3 -m venv /opt/venv
    # shellcheck disable=SC2086
    chroot "$rootfs" env -i PATH=/usr/bin:/bin /opt/venv/bin/pip install --quiet --no-index --find-links /tmp/wheels $TORCH_SPEC
    rm -rf "$rootfs/tmp/wheels" "$WORK/wheels"
    tar -C "$rootfs" -c . | podman import \
        --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'WORKDIR /workspace' - "$BASE_IMAGE"
    rm -rf "$rootfs"
}

if podman image exists "$BASE_IMAGE"; then
    echo "local base $BASE_IMAGE exists (podman rmi it to rebuild)"
else
    step "local base $BASE_IMAGE"
    build_local_base
    done_step
fi

step "build $IMAGE"
# pip inside the build needs the network and this machine's CA bundle; the docker format keeps SHELL.
podman build --format docker --network=host \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" .
done_step
podman image ls "$IMAGE"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-150 | head -n 20

smoke="$WORK/smoke"
rm -rf "$smoke"
mkdir -p "$smoke/data" "$smoke/runs"
PYTHONPATH="$PWD:$PWD/tests" "$PYTHON" -c \
    "import sys; from pathlib import Path; from conftest import make_pet_folder; \
make_pet_folder(Path(sys.argv[1]))" "$smoke/data/oxford-iiit-pet"
chown "$USER_UID:$USER_UID" "$smoke/runs"  # the image's user writes there

run() {
    podman run --rm --network=none --shm-size=1g \
        -v "$smoke/data:/data:ro" -v "$smoke/runs:/runs" "$IMAGE" "$@"
}
tiny=(--data.download false --data.image_size 32 --data.batch_size 4 --model.net.base_channels 4
    --model.net.depth 2 --trainer.enable_progress_bar false)

step "--help"
run --help
done_step

step "fit, fast_dev_run"
run fit --config configs/unet.yaml "${tiny[@]}" --trainer.fast_dev_run true
done_step

step "fit, one short epoch, into /runs"
run fit --config configs/unet.yaml "${tiny[@]}" --trainer.max_epochs 1 \
    --trainer.limit_train_batches 2 --trainer.limit_val_batches 1
done_step
# fast_dev_run leaves a last.ckpt too (in runs/checkpoints): take the newest.
ckpt=$(find "$smoke/runs" -name last.ckpt -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
if [[ -z "$ckpt" ]]; then
    echo "error: no last.ckpt under $smoke/runs" >&2
    exit 1
fi
ls -lnR "$smoke/runs"

step "test from the checkpoint alone"
run test --ckpt_path "runs/${ckpt#"$smoke/runs/"}" \
    --trainer.enable_progress_bar false
ls -ln "$smoke/runs"
done_step
echo "smoke run passed in $SECONDS s"
