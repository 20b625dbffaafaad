# Every target sets up .venv itself: a fresh clone needs only Python 3.11+
# (and Java 17 + Maven, or Docker, for the Kafka broker).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DURATION ?= 120

.PHONY: venv tools test unit integration lint format schemas demo clean kafka-start kafka-stop

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	@touch $(STAMP)

# Prometheus and promtool (Debian's prometheus package) for the monitoring tests, and
# chromium (headless) for the test that renders the training report in a browser.
tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing prometheus and chromium (apt-get)"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus chromium >/dev/null; }

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/rescorer schemas check

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schemas: venv
	$(VENV)/bin/rescorer schemas export

unit: venv tools
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

integration: venv tools
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

# The whole suite: lint, then both tiers in one pytest run (one broker for the session).
test: lint tools
	$(PY) -m pytest $(PYTEST_ARGS)

kafka-start: venv
	$(VENV)/bin/rescorer kafka start

kafka-stop: venv
	$(VENV)/bin/rescorer kafka stop

demo: venv
	$(PY) -m rescorer demo --duration $(DURATION)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
