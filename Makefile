# One target per habit. `make run` and `make test` are the README's two commands.
# uv from PATH, else a private copy in .venv-tools/ (the system Python is never touched).
UV ?= $(shell command -v uv 2>/dev/null || echo .venv-tools/bin/uv)
UV_VERSION := 0.13.8
PY := .venv/bin/python
# Test files run on this many pytest-xdist workers (tests mostly wait on real servers).
TEST_WORKERS ?= 3

.PHONY: setup runtime run test test-deps clients-test check fmt pytest chaos fuzz frontend frontend-test bench schema clean

.venv-tools/bin/uv:
	python3 -m venv .venv-tools
	.venv-tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

setup: | $(UV) ## Create .venv from uv.lock (pinned, every group: tests, lint, bench) and build the dashboard.
	$(UV) sync --frozen --all-groups
	$(MAKE) frontend

runtime: | $(UV) ## What running needs and no more: runtime dependencies from uv.lock (dev tools already there stay).
	$(UV) sync --frozen --no-dev --inexact

# The dashboard is rebuilt only when missing or older than its sources (and its packages
# reinstalled only when the lockfile changed), so `make run` starts at once the second time.
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/graphiql.html \
	frontend/vite.config.ts frontend/tsconfig*.json frontend/package.json -type f 2>/dev/null)

frontend: frontend/dist/index.html ## Install the dashboard's npm packages (lockfile) and build it.

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

run: runtime frontend ## Migrate, then run API + worker + dashboard (the demo kinds); prints the admin key.
	@$(PY) -m conveyor dev

test: setup check pytest frontend-test clients-test ## Everything CI runs.

check: ## Lint, format check, layer contract, schema drift, types, migration lint (squawk).
	.venv/bin/ruff check conveyor tests bench migrations examples
	.venv/bin/ruff format --check conveyor tests bench migrations examples
	.venv/bin/lint-imports
	$(PY) -m conveyor export-schema --check
	.venv/bin/mypy conveyor migrations/env.py migrations/lint.py examples/acme/acme_jobs
	$(PY) migrations/lint.py

pytest: test-deps ## Unit, integration (real PostgreSQL + Redis), e2e (real processes) and chaos tests.
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-deps: ## npm packages the tests run: the graphql-http audit suite, the client kit and the client suite (lockfiles).
	cd tests/http-audit && npm ci --no-audit --no-fund
	cd clients/typescript && npm ci --no-audit --no-fund && npm run build
	cd tests/clients && npm ci --no-audit --no-fund

clients-test: test-deps ## The TypeScript client kit: build (tsc --strict, in test-deps) and its unit tests.
	cd clients/typescript && npm test

chaos: ## Only the fault-injection tests (kill -9, Redis/PostgreSQL restarts).
	$(PY) -m pytest -q -m chaos

FUZZ_SECONDS ?= 600
fuzz: ## The schema-aware fuzzer alone, for longer (FUZZ_SECONDS, default 600; `make test` runs 45).
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -q tests/e2e/test_fuzz.py

frontend-test: ## Dashboard lint (ESLint, React hooks rules), unit tests, and the drift check of its generated client.
	@if [ -f frontend/package.json ]; then cd frontend && npm run lint && npm run codegen:check && npm test; fi

fmt:
	.venv/bin/ruff format conveyor tests bench migrations examples
	.venv/bin/ruff check --fix conveyor tests bench migrations examples

schema: ## Regenerate schema.graphql (and the frontend's typed operations).
	$(PY) -m conveyor export-schema
	@if [ -f frontend/package.json ]; then cd frontend && npm run codegen; fi

bench: ## The benchmark suite; writes docs/benchmarks.md.
	$(PY) -m bench.run

clean:
	rm -rf .venv .venv-tools frontend/node_modules frontend/dist .pytest_cache .mypy_cache .ruff_cache
