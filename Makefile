# Two commands: `make demo` and `make test` (both set everything up first via scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
N ?= 200
PYTEST_ARGS ?= -q -p no:cacheprovider -n 2 --timeout 900
TESTS ?= tests

.PHONY: venv demo test install-check distributed gameday lint torture bench clean

venv:
	@scripts/bootstrap.sh

demo: venv
	$(VENV)/bin/mlchaos demo

# pytest exits 5 when no test ran: that is a failure here too, with a clear message.
# the browser e2e tests need Debian's chromium, the game-day tests redis-server and prometheus:
# installed here when missing (idempotent)
test:
	@scripts/bootstrap.sh --with-browser --with-serving
	@$(PY) -m pytest $(PYTEST_ARGS) $(TESTS); rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: FAILED, no tests ran" >&2; fi; exit $$rc

# the built wheel in fresh virtualenvs outside the repository (pinned stack; the lowest Airflow
# the [airflow] extra declares), used as a user would: scripts/install_check.sh
install-check: venv
	@scripts/install_check.sh

# the example matrix on Airflow with the CeleryExecutor (Redis broker, PostgreSQL metadata, two
# workers) and on Dagster driven by dagster-daemon (PostgreSQL instance), compared with the
# in-process runs; everything on loopback, torn down at the end (redis-server from --with-serving)
distributed:
	@scripts/bootstrap.sh --with-serving
	timeout 2400 $(PY) -m mlchaos_orchestration.testing.distributed $(DISTRIBUTED_ARGS)

# the serving-side game day on the example: private Redis + Prometheus (Debian, installed here),
# the prediction API under uvicorn, Locust load; writes reports/gameday/<time>/postmortem.html
gameday:
	@scripts/bootstrap.sh --with-serving
	$(VENV)/bin/mlchaos gameday

# ruff (incl. banned module-level imports), the formatter's check, mypy on the engine
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# every issue-14 figure measured side by side in one run, each benchmark in its own process
# (faults 10M rows, Parquet streaming 50M rows, interceptors, GX gate 1M rows): summary printed and
# written to benchmarks/results/<time>.txt; BENCH_ARGS e.g. "--parquet-rows 2000000 --only gate"
bench: venv
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

torture: venv
	$(PY) -m mlchaos_orchestration.testing.torture --trials $(N)

clean:
	rm -rf reports .mlchaos .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
