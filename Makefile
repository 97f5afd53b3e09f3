# Two commands do everything on a fresh machine; each creates .venv and installs what it needs.
#   make fit     train the default experiment (CONFIGS=... to choose, ARGS=... for extra flags)
#   make test    ruff, then the test suite
VENV ?= .venv
PYTHON ?= python3
# Which torch to install first (smp needs timm, which needs torchvision). CI pins it in .ci/run.
TORCH_SPEC ?= torch torchvision
CONFIGS ?= configs/unet.yaml
ARGS ?=

PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install fit test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

fit: $(STAMP)
	$(PY) -m unetskip fit $(foreach c,$(CONFIGS),--config $(c)) $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs lightning_logs wandb .pytest_cache .ruff_cache
