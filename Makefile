# Two commands on a fresh machine: `make study` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
EXTRAS ?= api,wan,notebook,test
PROFILE ?= embedded
DATA_DIR ?= data

.PHONY: setup study smoke test unit nbval clean-cache mutation

setup: $(VENV)/.installed

# On a machine without CUDA the CPU build of torch goes in first, so that nothing pulls CUDA wheels.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PIP) install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null || \
	  $(PIP) install -q --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"; \
	fi
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

study: setup
	$(PY) -m nextads_lib.study run --profile $(PROFILE) --data-dir $(DATA_DIR)

smoke: setup
	$(PY) -m nextads_lib.study run --profile smoke --data-dir build/smoke

unit: setup
	$(PY) -m pytest tests -q

# nbval over every notebook, executed on the smoke profile (see tests/README section in README.md).
nbval: setup
	$(PY) -m nextads_lib.study nbval --profile smoke --data-dir build/nbval

test: setup
	$(PY) -m pytest tests -q
	$(PY) -m nextads_lib.study nbval --profile smoke --data-dir build/nbval

# Mutation testing of the modules whose bugs cost results (needs the dev extra; not part of `make test`).
# One mutmut run per module against its own tests (scripts/mutation_run.py --list), then the score per module
# and the surviving mutants; fails below 80% on a module. MUTATE="store bench" runs some modules only.
MUTATE ?=
mutation: setup
	$(PY) -c "import mutmut" 2>/dev/null || $(PIP) install -q -e ".[dev]"
	$(PY) scripts/mutation_run.py $(MUTATE)
	$(PY) scripts/mutation_report.py $(MUTATE)

clean-cache:
	rm -rf $(DATA_DIR)/interim build
