# Two commands set everything up on a fresh machine:
#   make test     find Python 3.13, create .venv from uv.lock, run every test
#   make invoke   run the real handler once on embedded defaults (EVENT=infra/events/<file>)
#   make serve    the service on http://127.0.0.1:3000, as the apps will see it (PORT, HOST, ...)
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
EVENT ?= infra/events/ok.json
HOST ?= 127.0.0.1
PORT ?= 3000
WORKERS ?= 4
ALLOWED_ORIGINS ?=
export UV_PYTHON_DOWNLOADS := never
export SAM_CLI_TELEMETRY := 0

# uv from PATH, else a pinned copy bootstrapped into .tools with Python 3.13's pip.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

ENV ?= dev

.PHONY: help test test-unit lint check invoke serve simulate doctor requirements sam-checks static-checks bench bench-publish soak soak-serve soak-items deploy clean browser-test web-errors docs

help:
	@echo "make test          create .venv (Python 3.13, from uv.lock) and run every test"
	@echo "make test-unit     the unit tests alone (tests/unit/), in seconds"
	@echo "make invoke        run the handler locally: EVENT=$(EVENT)"
	@echo "make serve         serve the API on http://$(HOST):$(PORT) (PORT, HOST, WORKERS, ALLOWED_ORIGINS)"
	@echo "make simulate      one Item's life (link, reset login, webhook, repair, remove) through make serve"
	@echo "make doctor        name what is wrong: ARGS=\"--live | --function NAME | --stack NAME | --json\""
	@echo "make browser-test  the web example in headless Chromium (screenshots in .artifacts/web/)"
	@echo "make docs          regenerate the error tables of docs/ and examples/web/errors.json"
	@echo "make web-errors    the same (examples/web/errors.json is one of them)"
	@echo "make lint          ruff + mypy"
	@echo "make check         lint + test"
	@echo "make requirements  export handler/requirements.txt and requirements-webhooks.txt from uv.lock"
	@echo "make sam-checks    SAM CLI from PyPI once, then offline: cfn-lint, sam validate, sam build, smoke test"
	@echo "make static-checks bandit, checkov (offline), audit of the locked runtime dependencies"
	@echo "make bench         benchmark against the baselines, into .bench/ (docs/performance.md)"
	@echo "make bench-publish the same, written to docs/performance-results.md"
	@echo "make soak          20,000 invocations of one warm handler with faults: SOAK_N=20000"
	@echo "make soak-serve    4,000 concurrent requests through make serve: SOAK_SERVE_N=4000 WORKERS=4"
	@echo "make soak-items    the Items lifecycle, one warm container per function, with faults: SOAK_ITEMS_N=1500"
	@echo "make deploy        build and deploy: ENV=dev|prod (needs AWS credentials)"

.tools/bin/uv:
	@py=$$(infra/scripts/find-python313.sh) && "$$py" -m venv .tools && \
		.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	@py=$$(infra/scripts/find-python313.sh) && \
		$(UV) sync --frozen --extra webhooks --python "$$py" --quiet
	@touch $@

test: $(VENV)/.synced
	$(PY) -m pytest

# The pure unit tests alone (tests/unit/): no server, process or browser.
test-unit: $(VENV)/.synced
	$(PY) -m pytest -q tests/unit

browser-test: $(VENV)/.synced
	bash infra/scripts/install-chromium.sh
	$(PY) -m pytest tests/e2e/test_web_serve.py tests/e2e/test_web_browser.py tests/unit/test_web_error_table.py

# The tables of docs/errors.md and docs/clients.md (between their markers) and the page's
# errors.json, generated from the service's error table; a test fails when they drift.
docs web-errors: $(VENV)/.synced
	$(PY) -m infra.webclient

lint: $(VENV)/.synced
	$(VENV)/bin/ruff format --check handler infra tests
	$(VENV)/bin/ruff check handler infra tests
	$(VENV)/bin/mypy handler infra tests

check: lint test

invoke: $(VENV)/.synced
	@EVENT=$(EVENT) $(PY) -m infra.invoke

# exec: Ctrl-C and SIGTERM reach the server itself, which stops everything it started.
serve: $(VENV)/.synced
	@HOST='$(HOST)' PORT='$(PORT)' WORKERS='$(WORKERS)' ALLOWED_ORIGINS='$(ALLOWED_ORIGINS)' \
		exec $(PY) -m infra.gateway

# One Item's lifecycle through make serve (started and stopped here), its health after each
# step; ARGS="--url URL --jwt TOKEN --standin URL" for a make serve already running.
simulate: $(VENV)/.synced
	@$(PY) -m infra.simulate $(ARGS)

# Configuration and secret checks; --live calls Plaid once; --function/--stack read AWS
# (docs/troubleshooting.md).
doctor: $(VENV)/.synced
	@$(PY) -m infra.doctor $(ARGS)

# Every function's runtime dependencies, and the webhook receiver's (the same plus PyJWT and
# cryptography): handler/Makefile installs one of the two per function.
requirements: $(VENV)/.synced
	$(UV) export --frozen --no-dev --no-emit-project --quiet -o handler/requirements.txt
	$(UV) export --frozen --no-dev --no-emit-project --extra webhooks --quiet \
		-o handler/requirements-webhooks.txt

sam-checks: $(VENV)/.synced
	bash .ci/sam-checks.sh

static-checks: $(VENV)/.synced
	bash .ci/static-checks.sh

bench: $(VENV)/.synced
	$(PY) -m infra.bench --out .bench/results.md
	@echo "bench: results in .bench/results.md (.json beside it); 'make bench-publish' writes docs/performance-results.md"

bench-publish: $(VENV)/.synced
	$(PY) -m infra.bench --out docs/performance-results.md

SOAK_N ?= 20000
soak: $(VENV)/.synced
	$(PY) -m infra.bench.soak --invocations $(SOAK_N)

SOAK_SERVE_N ?= 4000
soak-serve: $(VENV)/.synced
	$(PY) -m infra.bench.soak_serve --requests $(SOAK_SERVE_N) --workers $(WORKERS)

SOAK_ITEMS_N ?= 1500
soak-items: $(VENV)/.synced
	$(PY) -m infra.bench.soak_items --cycles $(SOAK_ITEMS_N)

deploy:
	infra/scripts/deploy.sh $(ENV)

clean:
	rm -rf $(VENV) .venv-sam .venv-audit .aws-sam .tools .bench .artifacts .pytest_cache .mypy_cache .ruff_cache
