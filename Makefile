# Everything installs into .venv (created on first use). Each target installs what is missing first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch is pinned to the CPU wheel first; a bare `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
CONFIG ?= configs/synthetic.yaml

.PHONY: install browser test test-slow test-all lint train-synthetic predict-synthetic bench ablation clean

$(STAMP): pyproject.toml setup.cfg
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	@# torch's pin is repeated: litdata requires torchvision, whose newest release requires a newer torch, and
	@# without the pin pip "upgrades" torch to that (CUDA) build
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev,demo,stream]" "$(TORCH_SPEC)"
	@# the torchvision matching the pin is PyPI's CUDA build: with the CPU torch it fails on import (and breaks
	@# libraries that import it when present); nothing here uses it, so it goes
	@$(PY) -c "import torchvision" 2>/dev/null || $(PY) -m pip uninstall -y -q torchvision
	@touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q

# The demo's browser tests drive Debian's chromium (Playwright's own browser download is not used).
# Installed once when missing (root, or passwordless sudo); if that fails those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } || \
	  echo "warning: could not install chromium; the demo's browser tests will be skipped"

test-slow: install browser
	$(PY) -m pytest -q -m slow

test-all: install browser
	$(PY) -m pytest -q -m "slow or not slow"

lint: install
	$(PY) -m ruff check s2dm_lightning tests benchmarks

train-synthetic: install
	$(PY) -m s2dm_lightning fit --config $(CONFIG)

predict-synthetic: install
	$(PY) -m s2dm_lightning predict --config $(CONFIG) --ckpt_path $$(ls -t logs/synthetic/version_*/checkpoints/last.ckpt | head -n 1)

bench: install
	$(PY) benchmarks/bench_training.py

# The shared-noise and flow-fusion ablations (long: 4 trainings per seed); ABLATION_ARGS="--smoke" checks the pipeline.
ablation: install
	$(PY) benchmarks/ablation.py $(ABLATION_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
