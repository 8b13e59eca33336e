# The two commands a researcher needs: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
WORK ?= $(or $(TMPDIR),/tmp)/ae_hubert_demo
STUDY_DIR ?= $(CURDIR)/study_work

.PHONY: setup demo demo-full study test test-fast bench bench-scaling bench-gpu gpu-bundle clean-venv

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(VENV)/bin/ae-hubert demo $(WORK)

demo-full: setup
	$(VENV)/bin/ae-hubert demo --full $(WORK)

study: setup  # hours on 2 cores, resumable: rerun after a kill; narrow it with ONLY=H1 SEEDS=1 (or ONLY_SEEDS=2,3)
	$(VENV)/bin/ae-hubert study --work-dir $(STUDY_DIR) $(if $(ONLY),--only $(ONLY)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(ONLY_SEEDS),--only-seeds $(ONLY_SEEDS))

test: setup  # the full suite; TEST_WORKERS=N spreads it over N processes (pays off beyond 2 cores: docs/testing.md)
	$(PY) -m pytest -q $(if $(TEST_WORKERS),-n $(TEST_WORKERS) --dist loadfile) tests

test-fast: setup  # unit level, for the edit loop: no corpus synthesis, no training
	$(PY) -m pytest -q -m "not slow" tests

bench: setup
	$(PY) benchmarks/between_iterations.py
	$(PY) benchmarks/probe_cost.py
	$(PY) benchmarks/layer_targets_speed.py

bench-scaling: setup  # long (about an hour on 2 cores): dump, k-means, label at three data sizes, ours vs stock
	$(PY) benchmarks/scaling.py

bench-gpu: setup  # on a machine with a GPU and this .venv: every GPU figure of docs/gpu.md, then its table
	$(PY) benchmarks/gpu_check.py --out benchmarks/results/gpu.json
	$(PY) benchmarks/gpu_check.py --table benchmarks/results/gpu.json --into docs/gpu.md

gpu-bundle: setup  # .gpu/bundle.tar.gz: what a bare, offline GPU machine needs (docs/gpu.md)
	$(PY) scripts/gpu_bundle.py

clean-venv:
	rm -rf $(VENV)
