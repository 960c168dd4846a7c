# The two commands: `make run` (the chat on this machine) and `make test` (every check).
# Everything is installed into the project: .venv/ for Python, node_modules/ for the
# pinned CDK CLI and a supported Node.js, which goes first on PATH so that both the CLI
# and the jsii runtime behind aws-cdk-lib use it. Python comes in two levels, each with its
# marker in .venv/: `make run` installs requirements-run.txt (the CDK app and the sandbox:
# .venv/.run-installed), `make test` adds requirements-dev.txt on top (the test, lint and
# bench tools: .venv/.installed). Either order works, and neither reinstalls the other's.

SHELL := /bin/bash
PYTHON ?= python3
export PYTHON
VENV := .venv
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

HOST ?= 127.0.0.1
PORT ?= 8080
# The sandbox's server API (HTTPS, IAM-signed) and its CA, where bin/chat-admin --sandbox looks.
SERVER_API_PORT ?= 8081
SANDBOX_TLS_DIR ?= .sandbox/tls
# The stack `make run` and `make conformance` run: by default the one the last
# `make synth` made (a stage's, with CDK_ARGS="-c stage=dev"); STACK=<name> picks another.
STACK ?=
SANDBOX_STACK := $(if $(STACK),--stack $(STACK))
CDK := cdk --no-notices
# Extra arguments for `cdk synth`, e.g. CDK_ARGS="-c signIn=true -c signInIssuer=…". With
# signIn=true in them, `make synth` first builds the authorizer's layer (needs PyPI).
CDK_ARGS ?=
SIGN_IN_LAYER := $(if $(findstring signIn=true,$(CDK_ARGS)),authorizer-layer)

SUITES := unit adapters handler authorizer infra sandbox e2e browser hostile bench
# pytest-xdist: test modules are spread over this many worker processes (a module stays on
# one worker, so its fixtures are made once). One per core by default: 3 workers on 2 cores
# finished about 13 % sooner (README, "Test"), but then the tests that measure time (rate
# limits, idle timers, browsers waiting on frames) see a machine too busy more often.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadscope

.PHONY: help preflight run-setup setup authorizer-layer synth run conformance test test-fast lint typecheck web-tests docs bench load load-rooms clean $(addprefix test-,$(SUITES))

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  make test-<suite>  one pytest suite, where <suite> is one of: $(SUITES)"

preflight: ## check what make cannot install (Python 3.11+, npm, Chromium); seconds
	@bin/preflight tools
	@bin/preflight browser >/dev/null

# aws-cdk-lib's Python is 176 MB of generated bindings, of which a synth imports a fraction:
# pip's bytecode compilation of all of it would take half a minute of `make run`'s first
# start, so this level skips it for aws_cdk (Python compiles what a synth imports, in
# memory) and compiles the rest (boto3, moto, aiohttp...: the function workers' imports).
# `make test`'s level compiles aws_cdk too. As with pip's own compilation, a file that does
# not compile is left as source, not an error.
$(VENV)/.run-installed: requirements.txt requirements-run.txt
	@bin/preflight tools
	@echo "==> Python environment for make run ($(VENV): the CDK app and the sandbox)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --no-compile -r requirements-run.txt 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	@$(VENV)/bin/python -m compileall -q -j0 -x '/aws_cdk/' $(VENV)/lib >/dev/null || true
	@touch $@

$(VENV)/.installed: $(VENV)/.run-installed requirements-dev.txt
	@echo "==> Python environment for make test ($(VENV): the test, lint and bench tools)"
	@$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	@$(VENV)/bin/python -m compileall -q -j0 $(VENV)/lib >/dev/null || true
	@touch $@

node_modules/.installed: package.json package-lock.json
	@bin/preflight tools
	@echo "==> Node.js tooling (node_modules: CDK CLI, Node 22, Lighthouse for the browser tests)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The two installs `make run` needs, side by side (pip and npm each wait on the network).
run-setup: ## install only what `make run` needs: the CDK app, the sandbox, the CDK CLI
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(VENV)/.run-installed node_modules/.installed

setup: $(VENV)/.installed node_modules/.installed ## install everything `make test` needs (idempotent)

authorizer-layer: run-setup ## build the sign-in authorizer's layer (PyJWT, cryptography; needs PyPI)
	@python -m infra.authorizer_layer 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0

synth: run-setup $(SIGN_IN_LAYER) ## synthesize the CloudFormation template into cdk.out/ (offline)
	@echo "==> cdk synth (node $$(node --version))"
	@$(CDK) synth --quiet $(CDK_ARGS)
	@echo "Template: $$(python -m sandbox --print-template $(SANDBOX_STACK))"

lint: setup ## ruff check, ruff format --check, actionlint (the GitHub workflows)
	@echo "==> ruff"
	@ruff check .
	@ruff format --check .
	@echo "==> actionlint"
	@actionlint .github/workflows/*.yml

typecheck: setup ## mypy
	@echo "==> mypy"
	@mypy

test: preflight lint typecheck web-tests ## every check and every test
	@echo "==> pytest"
	@CHROMIUM="$$(bin/preflight browser)" pytest $(PYTEST_PARALLEL)

# The inner loop spreads single tests, not modules, over the workers (`--dist load`): these
# suites' fixtures are per test, and their modules are uneven (rooms handler ~25 s, most ~1 s).
test-fast: web-tests ## the inner loop: unit, handler and web-client tests (about 35 s)
	@echo "==> pytest tests/unit tests/handler"
	@pytest -q -n $(TEST_WORKERS) --dist load tests/unit tests/handler

web-tests: setup ## the web client's unit tests (node --test)
	@echo "==> web client unit tests (node --test)"
	@node --test --test-reporter=dot web/tests/*.test.js

$(addprefix test-,$(SUITES)): test-%: setup ## one pytest suite: make test-unit, test-e2e, ...
	@CHROMIUM="$$(bin/preflight browser)" pytest $(PYTEST_PARALLEL) tests/$*

run: synth ## run the whole chat locally on http://$(HOST):$(PORT)
	@python -m sandbox $(SANDBOX_STACK) --host $(HOST) --port $(PORT) \
		--server-api-port $(SERVER_API_PORT) --tls-dir $(SANDBOX_TLS_DIR)

conformance: synth ## bin/conformance against a sandbox of the synthesized stack (started and stopped)
	@template="$$(python -m sandbox --print-template $(SANDBOX_STACK))" && \
		bin/conformance --sandbox "$$template" $(CONFORMANCE_ARGS)

docs: run-setup ## write docs/configuration.md from lambda_src/chat/settings.json and infra/context_keys.json
	@python bin/build-config-docs

bench: setup synth ## run the benchmarks over HTTPS (~10 min): bench/results/latest.json, docs/performance.md
	@python -m bench

load: setup synth ## 200 clients, 10,000 messages, churn, through the sandbox: bench/results/load.json
	@python -m bench.load $(LOAD_ARGS)

load-rooms: setup synth ## 200 v2 clients in 50 rooms, 3,000 posts, typing, rejoins: bench/results/load-rooms.json
	@python -m bench.load --scenario rooms $(LOAD_ARGS)

clean: ## remove generated files (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
