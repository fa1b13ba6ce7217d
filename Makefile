# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench-slow pecanpy-env clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch pulls a multi-GB GPU build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,text,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/embedlab demo -o demo-report

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

# Optional: node2vec (pecanpy) for benchmarks/node2vec_blogcatalog.py only, in its own
# environment; it never enters .venv nor the package's dependencies.
PECANPY_VENV := .venv-pecanpy
# The versions pip resolved and installed for pecanpy 2.0.9 on Python 3.11 here.
PECANPY_PINS := pecanpy==2.0.9 gensim==4.4.0 numba==0.68.1 llvmlite==0.50.0 \
	numba-progress==1.2.0 nptyping==2.5.0 numpy==1.26.4 scipy==1.17.1 smart-open==9.0.4 \
	wrapt==2.5.2 tqdm==4.70.1 typing-extensions==4.16.0

$(PECANPY_VENV)/.installed:
	$(PYTHON) -m venv $(PECANPY_VENV)
	$(PECANPY_VENV)/bin/pip install $(PECANPY_PINS)
	touch $@

pecanpy-env: $(PECANPY_VENV)/.installed

clean:
	rm -rf $(VENV) $(PECANPY_VENV) demo-report .pytest_cache .mypy_cache .ruff_cache
