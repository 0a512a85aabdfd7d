# RoboJam Cloud: the two commands a fresh machine needs are `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SERVE_VENV ?= .venv-serve
TOOLS ?= .tools
PY := $(VENV)/bin/python
ROBOJAM_DATA ?= $(abspath ../shared/data)
export ROBOJAM_DATA

.PHONY: help venv serve-venv tools serve test bench bench-load bench-overhead bench-capacity bench-peers quality quality-sweep lint costs policy-venv staging clean

help:
	@echo "make serve  - serve the shipped model on http://127.0.0.1:5000 (NumPy only, no TensorFlow)"
	@echo "make test   - install everything (dev venv + tools) and run the whole test suite"
	@echo "make bench  - inference benchmark (Keras vs NumPy engine): benchmarks/latest.json (see benchmarks/README.md)"
	@echo "make bench-load - the service under 1-64 concurrent clients, batching off vs on (benchmarks/load.json)"
	@echo "make bench-overhead - CPU per request outside inference by stage, against OVERHEAD_BASE (benchmarks/overhead.json)"
	@echo "make bench-peers - the engine against ONNX Runtime and LiteRT, fp32 and int8, one core (benchmarks/peers.json)"
	@echo "make bench-capacity - the deployed service's capacity on one core through Caddy (benchmarks/capacity.json)"
	@echo "make quality - the shipped model's replies against human touch statistics and baselines (benchmarks/quality.json)"
	@echo "make quality-sweep - the quality evaluation over a pi x sigma temperature grid (benchmarks/quality-sweep.json, the model card)"
	@echo "make costs  - price every Pulumi stack offline from the bundled catalogue"
	@echo "make lint   - ruff check + ruff format --check (fails on either)"
	@echo "make staging - build the image with buildah and run each target's container with podman (root, Debian)"

# The full development environment: serving, training, infra and test dependencies.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[serve,train,infra,dev,bench]'
	touch $@

# Serving alone: proves the service installs and runs without TensorFlow.
serve-venv: $(SERVE_VENV)/.installed
$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install -q --upgrade pip
	$(SERVE_VENV)/bin/pip install -q -e '.[serve]'
	touch $@

# Linters that must not share the project venv (checkov pins an old `packaging`).
tools: $(TOOLS)/checkov/.installed
$(TOOLS)/checkov/.installed:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q --upgrade pip
	$(TOOLS)/checkov/bin/pip install -q 'checkov>=3.2,<4'
	touch $@

serve: serve-venv
	ROBOJAM_BIND=$${ROBOJAM_BIND:-127.0.0.1:5000} $(SERVE_VENV)/bin/gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

test: venv tools policy-venv
	$(PY) -m pytest

bench: venv
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
		$(PY) -m benchmarks.inference

# Server pinned to one core, clients on another, loopback only; about 3 minutes.
bench-load: venv
	$(PY) -m benchmarks.load

# The engine against ONNX Runtime and LiteRT on the same artifacts, one core, alternating rounds; a few minutes.
# `--avx2` builds the project for an AVX2 target: make bench-peers ARGS=--avx2
bench-peers: venv
	$(PY) -m benchmarks.peers $(ARGS)

# CPU per request outside inference (stages in process, the whole request over loopback) and req/s at 16/64 clients;
# OVERHEAD_BASE=DIR (e.g. `git worktree add /tmp/overhead-base <commit>`) measures that checkout beside this one.
bench-overhead: venv
	$(PY) -m benchmarks.overhead $(if $(OVERHEAD_BASE),--base $(OVERHEAD_BASE))

# The service as the droplet runs it (defaults, Caddy in front) on one core: the record infra.costs prices from.
bench-capacity: venv
	$(PY) -m benchmarks.capacity

# The continuation-quality evaluation on the shipped weights (model/MODEL_CARD.md); a few minutes on 2 cores.
quality: venv
	$(PY) -m benchmarks.quality --out benchmarks/quality.json --plot model/weights/robojam-quality.png

# The sampling defaults' evidence: `make quality`'s model at each grid point, then the model card's sweep block; about
# 8 CPU-minutes (`python -m benchmarks.quality_sweep --help` for a smaller grid or slice).
quality-sweep: venv
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks.quality_sweep --out benchmarks/quality-sweep.json
	$(PY) -m benchmarks.quality_sweep --card

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

costs: venv
	$(PY) -m infra.costs

# The CrossGuard policy pack's own venv (pulumi-policy cannot share .venv with TensorFlow; see pyproject.toml).
policy-venv: policy/venv/.installed
policy/venv/.installed: policy/requirements.txt
	$(PYTHON) -m venv policy/venv
	policy/venv/bin/pip install -q -r policy/requirements.txt
	touch $@

# Staging on this machine: the image and every target run for real (docs/staging.md); state in build/staging.
staging: venv
	$(PY) -m staging

clean:
	rm -rf $(VENV) $(SERVE_VENV) $(TOOLS) .pytest_cache
