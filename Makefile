# shadow-constructs: `make demo` (set up, synthesize, validate, plan) and `make test` (set up, test).
# Everything installs into this folder: .venv (Python) and node_modules (the pinned CDK CLI).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CDK    := node_modules/.bin/cdk
PYRIGHT := node_modules/.bin/pyright
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo synth lint typecheck test test-fast bench bench-judge bench-tests models clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The main job: synthesize the example app with the real CDK CLI (cdk-nag runs inside the
# synth and fails it on any unacknowledged finding), lint every template, print the plan; then
# the whole shadow test on the local emulator: deploy that assembly, traffic, promotion
# workflow, report, destroy (scripts/demo.py). SCENARIO=regressed shadows a much slower model.
SCENARIO  ?= healthy
DEMO_PORT ?= 5055
demo: setup
	@test -f scenarios/$(SCENARIO).json || { echo "make demo: SCENARIO must be healthy or regressed (a file in scenarios/), got '$(SCENARIO)'" >&2; exit 2; }
	rm -rf cdk.out
	$(CDK) synth --quiet --no-notices --no-version-reporting -c shadow-test-config=scenarios/$(SCENARIO).json > /dev/null
	@echo "cdk-nag AwsSolutions: no unacknowledged findings"
	$(BIN)/cfn-lint cdk.out/*.template.json
	@echo "cfn-lint: no errors in $$(ls cdk.out/*.template.json | wc -l) template(s)"
	@echo
	$(BIN)/shadow-plan cdk.out
	$(BIN)/python scripts/demo.py --scenario $(SCENARIO) --port $(DEMO_PORT) --assembly cdk.out

# Only the synthesis, validation and plan (no emulator).
synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet --no-notices --no-version-reporting > /dev/null
	$(BIN)/cfn-lint cdk.out/*.template.json
	$(BIN)/shadow-plan cdk.out

# pyright (one Node thread, about a minute of CPU) runs alongside the tests, which leave a core idle now and then;
# its report follows pytest's, and either failing fails the target.
test: setup
	$(BIN)/ruff check .
	@log=$$(mktemp); echo "$(PYRIGHT) > $$log &"; $(PYRIGHT) > $$log 2>&1 & typecheck=$$!; \
	echo "$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10"; \
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10; tests=$$?; \
	wait $$typecheck; types=$$?; echo "$(PYRIGHT):"; cat $$log; rm -f $$log; \
	test $$tests -eq 0 && test $$types -eq 0

# The inner loop, while you change code: everything but the tests marked `outer` (the CDK CLI lifecycles, the emulator
# server, the wheel build), i.e. units, synth assertions, handlers and the report engine. `make test` (and CI) runs all.
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not outer" -q

lint: setup
	$(BIN)/ruff check .

# The pinned pyright (package.json) over the shipped code and the example app, as [tool.pyright] in
# pyproject.toml sets it: standard mode, Python 3.11, the packages in .venv.
typecheck: setup
	$(PYRIGHT)

bench: setup
	$(BIN)/python benchmarks/synth_bench.py

# How long the inner loop (make test-fast) and the whole suite take here, and how many tests each runs.
bench-tests: setup
	$(BIN)/python benchmarks/suite_bench.py

# Our promotion verdict against a threshold rule and a Kayenta-faithful judge on simulated tests.
bench-judge: setup
	$(BIN)/python benchmarks/judge_bench.py --rpm 200
	$(BIN)/python benchmarks/judge_bench.py --rpm 40

# Rebuild the two committed model archives (deterministic; run by hand).
models: setup
	$(BIN)/python scripts/build_models.py

clean:
	rm -rf cdk.out .pytest_cache .demo
