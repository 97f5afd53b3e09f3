# unetskip on an official CUDA PyTorch image (docs/docker.md):
#   docker build -t unetskip .
#   docker run --rm --gpus all --ipc=host -v "$PWD/data:/data" -v "$PWD/runs:/runs" \
#       unetskip fit --config configs/unet.yaml
# The demo page (docs/demo.md) needs the demo extra:
#   docker build --build-arg EXTRAS=demo -t unetskip-demo .
#   docker run --rm -p 7860:7860 -v "$PWD/runs:/runs" unetskip-demo demo \
#       --ckpt_path runs/<run>/checkpoints/last.ckpt --host 0.0.0.0
# BASE_IMAGE may be any image with Python >= 3.11, pip, torch >= 2.14.1 and torchvision on PATH: its
# torch and torchvision are kept as they are (scripts/docker_smoke.sh builds on a local Debian base this way).
ARG BASE_IMAGE=pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NO_ALBUMENTATIONS_UPDATE=1

# The user that runs the CLI. Build with `--build-arg USER_UID=$(id -u)` to own what it writes in runs/.
ARG USER_UID=1000
RUN groupadd --gid "${USER_UID}" unetskip \
    && useradd --create-home --uid "${USER_UID}" --gid "${USER_UID}" unetskip

WORKDIR /opt/unetskip

# Dependencies, from pyproject.toml alone, so that a code change reuses this layer. The base's torch and
# torchvision become constraints: pip keeps them, or stops with a conflict, but never replaces them.
# EXTRAS: optional dependency groups of pyproject.toml to add, comma-separated (e.g. demo, export).
ARG EXTRAS=""
COPY pyproject.toml ./
RUN python -m pip list --format=freeze | grep -E '^(torch|torchvision)==' > /tmp/base-torch.txt \
    && python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
extras = [r for e in os.environ['EXTRAS'].split(',') if e for r in p['project']['optional-dependencies'][e]]; \
print('\n'.join(p['build-system']['requires'] + p['project']['dependencies'] + extras))" > /tmp/requirements.txt \
    && python -m pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/base-torch.txt \
    && rm /tmp/base-torch.txt /tmp/requirements.txt

# The package itself: nothing to resolve or download (the build backend came with the dependencies).
# configs/ and notebooks/ ship inside the package too (the benchmark's default configs, the study's notebook).
COPY README.md ./
COPY unetskip ./unetskip
COPY configs ./configs
COPY notebooks ./notebooks
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf build unetskip.egg-info configs notebooks

# Runtime: configs in the working directory; data and runs in volumes. /workspace/data and
# /workspace/runs point at /data and /runs, so the configs' relative paths (data.root
# data/oxford-iiit-pet, runs/) land in the volumes; W&B's offline run folders go to /runs too.
# Commands without a config (test --ckpt_path) log under runs/ as well (the CLI's default_root_dir).
RUN mkdir -p /workspace /data /runs \
    && ln -sfn /data /workspace/data \
    && ln -sfn /runs /workspace/runs \
    && chown "${USER_UID}:${USER_UID}" /workspace /data /runs
WORKDIR /workspace
COPY configs ./configs
ENV WANDB_DIR=/runs
VOLUME ["/data", "/runs"]
# The demo's port (python -m unetskip demo --port, default 7860), when the image has the demo extra.
EXPOSE 7860
USER ${USER_UID}:${USER_UID}
ENTRYPOINT ["unetskip"]
CMD ["--help"]
