# llm4cell: two-command quickstart.  `make demo` then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/llm4cell annotate --demo -o $(DEMO_DIR)/pbmc68k_annotated.h5ad \
		--report $(DEMO_DIR)/pbmc68k_report.html
	@echo ""
	@echo "Outputs:"
	@echo "  annotated data : $(DEMO_DIR)/pbmc68k_annotated.h5ad"
	@echo "  per-group table: $(DEMO_DIR)/pbmc68k_annotated.csv"
	@echo "  HTML report    : $(DEMO_DIR)/pbmc68k_report.html"

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_annotate.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
