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

.PHONY: setup study smoke test unit nbval notebooks clean-cache mutation

setup: $(VENV)/.installed

# uv installs (about 4x faster than pip here) from the sources pip is configured with (scripts/uv_args.py); pip
# is the fallback. On a machine without CUDA the CPU build of torch goes in first, so that nothing pulls CUDA wheels.
# --compile-bytecode: uv leaves no .pyc behind (pip compiles), and where PYTHONDONTWRITEBYTECODE is set (as on this
# machine) every kernel and worker process would otherwise compile numpy, pandas, scipy... from source again.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q uv || true
	if [ -x $(VENV)/bin/uv ] && UVA="$$($(PY) scripts/uv_args.py)" && \
	   { command -v nvidia-smi >/dev/null 2>&1 || \
	     $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $$UVA "torch==$(TORCH_VERSION)+cpu" || \
	     $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $$UVA --extra-index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"; } && \
	   $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) $$UVA -e ".[$(EXTRAS)]"; then :; else \
	  echo "[setup] uv unavailable or failed: installing with pip"; \
	  if ! command -v nvidia-smi >/dev/null 2>&1; then \
	    $(PIP) install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null || \
	    $(PIP) install -q --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"; \
	  fi; \
	  $(PIP) install -q -e ".[$(EXTRAS)]"; \
	fi
	$(PY) -m compileall -q nextads_lib  # the study's own modules, for the same reason
	touch $@

study: setup
	$(PY) -m nextads_lib.study run --profile $(PROFILE) --data-dir $(DATA_DIR)

smoke: setup
	$(PY) -m nextads_lib.study run --profile smoke --data-dir build/smoke

unit: setup
	$(PY) -m pytest tests -q

# The smoke profile with papermill into build/nbval, then nbval re-executes each notebook there and compares
# its `# NBVAL_CHECK_OUTPUT` cells with the committed references in tests/nbval/ (README: "Notebooks and
# regression checks").
nbval: setup
	$(PY) -m nextads_lib.study nbval --profile smoke --data-dir build/nbval

# After a change meant to move a result: re-execute $(PROFILE) (default embedded, reusing the cache) into
# notebooks/ with outputs, then the smoke profile into tests/nbval/; prints each checked output that changed.
# `make notebooks PROFILE=smoke DATA_DIR=build/nbval` tries the mechanism in minutes (then `git checkout -- notebooks/`).
notebooks: setup
	$(PY) -m nextads_lib.study run --profile $(PROFILE) --data-dir $(DATA_DIR)
	$(PY) -m nextads_lib.study publish --profile $(PROFILE) --data-dir $(DATA_DIR)
	$(PY) -m nextads_lib.study run --profile smoke --data-dir build/nbval
	$(PY) -m nextads_lib.study references --profile smoke --data-dir build/nbval

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
