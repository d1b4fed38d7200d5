# Two commands do all setup on a fresh machine:
#   make demo   install everything, train on real data (Fashion-MNIST), print the results
#   make test   install everything, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch/torchvision pinned to the pair this machine serves from local disk (CUDA build, runs on CPU too)
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

.PHONY: fashion-mnist
fashion-mnist:
	@test -n "$$TRANSFERKIT_FASHION_MNIST" || dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }

demo: install fashion-mnist
	$(BIN)/transferkit demo --out demo-out

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

bench: install fashion-mnist
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_serve.py

lint: install
	$(BIN)/python -m ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) demo-out bench-out runs
