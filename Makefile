# Two commands set everything up: `make run` and `make test` each create .venv
# when it is missing and (re)install the project only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format bench bench-smoke bytecode clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(RUN_STAMP)

# The project's bytecode, compiled ahead as pip compiles the image's wheel: an editable
# install is otherwise compiled at every start wherever PYTHONDONTWRITEBYTECODE is set.
# Only changed files are compiled again; a stale .pyc is never used (Python checks).
bytecode: $(RUN_STAMP)
	@$(PY) -m compileall -q model service > /dev/null

run: $(RUN_STAMP) bytecode
	$(VENV)/bin/backprop-serve

# pytest exits 5 when it collected no test; that is a failure here too.
test: $(TEST_STAMP) bytecode
	$(PY) -m pytest -W error::RuntimeWarning $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(TEST_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks (see bench/README.md). Every bench/<name>.py listed in BENCH_SCRIPTS takes
# --out PATH (writes one Markdown section there: a "## title" line and at least one
# table) and --smoke (runs a few seconds, same table shape). `make bench` runs them in
# this order and assembles bench/RESULTS.md from the sections; `make bench-smoke` runs
# them in smoke mode and checks that each wrote its table (tests/bench runs it).
BENCH_SCRIPTS := train runtime serve accesslog grpc_infer mixed cluster replica
BENCH_OUT := bench/out
BENCH_SMOKE_OUT ?= $(BENCH_OUT)/smoke

bench: $(TEST_STAMP) bytecode
	@mkdir -p $(BENCH_OUT)
	@for name in $(BENCH_SCRIPTS); do \
		echo "== bench/$$name.py"; \
		$(PY) bench/$$name.py --out $(BENCH_OUT)/$$name.md || exit 1; \
	done
	$(PY) bench/results.py assemble $(BENCH_OUT) $(BENCH_SCRIPTS)

bench-smoke: $(TEST_STAMP) bytecode
	@rm -rf $(BENCH_SMOKE_OUT) && mkdir -p $(BENCH_SMOKE_OUT)
	@for name in $(BENCH_SCRIPTS); do \
		$(PY) bench/$$name.py --smoke --out $(BENCH_SMOKE_OUT)/$$name.md > /dev/null || exit 1; \
	done
	$(PY) bench/results.py check $(BENCH_SMOKE_OUT) $(BENCH_SCRIPTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
	find model service bench tests -name __pycache__ -prune -exec rm -rf {} +
