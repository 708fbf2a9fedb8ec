# Every target builds .venv on first use and reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/factory-tui demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check factory_tui tests benchmarks
	$(BIN)/ruff format --check factory_tui tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format factory_tui tests benchmarks
	$(BIN)/ruff check --fix factory_tui tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/http_ingest.py
	$(BIN)/python benchmarks/mqtt_ingest.py
	$(BIN)/python benchmarks/access.py
	$(BIN)/python benchmarks/tui.py
	$(BIN)/python benchmarks/web.py
	$(BIN)/python benchmarks/disk.py
	$(BIN)/python benchmarks/sites.py
	$(BIN)/python benchmarks/week.py

# Mutation testing of the engine and the wire protocol, with a score per module (slow: tens of
# minutes; not part of `test` or CI). See docs/testing.md.
mutation: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python benchmarks/mutation_report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
