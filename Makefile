# Two commands: `make demo` and `make test` (both set everything up first via scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
N ?= 200
PYTEST_ARGS ?= -q -p no:cacheprovider -n 2 --timeout 900
TESTS ?= tests

.PHONY: venv demo test lint torture clean

venv:
	@scripts/bootstrap.sh

demo: venv
	$(VENV)/bin/mlchaos demo

# pytest exits 5 when no test ran: that is a failure here too, with a clear message.
# the browser e2e test needs Debian's chromium: installed here when missing (idempotent)
test:
	@scripts/bootstrap.sh --with-browser
	@$(PY) -m pytest $(PYTEST_ARGS) $(TESTS); rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "make test: FAILED, no tests ran" >&2; fi; exit $$rc

# ruff (incl. banned module-level imports), the formatter's check, mypy on the engine
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

torture: venv
	$(PY) -m mlchaos_orchestration.testing.torture --trials $(N)

clean:
	rm -rf reports .mlchaos .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
