# `make run` and `make test` create the virtual environment on first use (about 2 minutes:
# torch installs from local disk), then run the main job, or the import-layer check and the
# whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The main job's data: the CIFAR-10 JPEG copy in ../shared/data when it is there (extracted
# once into data/), otherwise the name cifar10 (downloaded through torchvision when online).
SHARED_CIFAR := ../shared/data/cifar10-jpeg.tar.xz
DATA ?= $(if $(wildcard $(SHARED_CIFAR)),data/cifar10-jpeg,cifar10)
MODEL ?= resnet20
RECIPE ?= fast

.PHONY: run test test-fast env clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

data/cifar10-jpeg:
	mkdir -p data
	tar -xJf $(SHARED_CIFAR) -C data

run: env $(filter data/%,$(DATA))
	$(BIN)/reslearn train --data $(DATA) --model $(MODEL) --recipe $(RECIPE)

test: env
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks hubconf.py
	$(BIN)/python -m pytest

# The tier to run while working (about 2 minutes on 2 cores): no subprocess and no slow test.
test-fast: env
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks hubconf.py
	$(BIN)/python -m pytest -q -m "not slow and not subprocess"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
