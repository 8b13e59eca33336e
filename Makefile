# The two commands a researcher needs: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
WORK ?= $(or $(TMPDIR),/tmp)/ae_hubert_demo

.PHONY: setup demo demo-full test bench bench-scaling clean-venv

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(VENV)/bin/ae-hubert demo $(WORK)

demo-full: setup
	$(VENV)/bin/ae-hubert demo --full $(WORK)

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) benchmarks/between_iterations.py
	$(PY) benchmarks/probe_cost.py
	$(PY) benchmarks/ae_hubert_speed.py

bench-scaling: setup  # long (about an hour on 2 cores): dump, k-means, label at three data sizes, ours vs stock
	$(PY) benchmarks/scaling.py

clean-venv:
	rm -rf $(VENV)
