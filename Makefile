# Set-up and the main jobs. `make venv` builds .venv with everything; `make demo` and `make test` use it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Real datasets (read-only) live beside the project; override to point elsewhere.
export IMGCLF_DATA_DIR ?= $(abspath $(CURDIR)/../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: venv
	$(BIN)/python -m training list
	$(BIN)/python -m training train demo --preset recommended --quiet

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/training_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
