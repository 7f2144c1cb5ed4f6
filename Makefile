# The two commands of the README: `make up` runs the exchange, `make test` runs every check.
# Both create the virtual environment and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# freqtrade (for its live-trading test) pins numpy/pandas/TA-Lib of its own: a separate environment,
# with the versions of pyproject.toml's optional group "freqtrade"
FT_VENV := .venv-freqtrade
FT_STAMP := $(FT_VENV)/.installed
# the compiled book-only peers of the engine benchmark (C++ limit-order-book, nautilus_trader's Rust
# book) need Python >= 3.13: a separate environment with pyproject.toml's optional group "peers".
# Its Python: PEERS_PYTHON if given, else the first python3.13 on PATH or under ~/.pyenv/versions
# that runs
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_PYTHON ?=

.PHONY: up test lint bench clean

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "DPG needs Python >= 3.11 (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(STAMP) $(CORE_STAMP)

# the compiled core (setup.py: mypyc): built by the install above, rebuilt when a source of the core
# changes (until then the pure-Python core runs, with a warning)
CORE_STAMP := $(VENV)/.core-built
$(CORE_STAMP): $(STAMP) $(wildcard src/dpg/core/*.py)
	$(BIN)/python -c 'import subprocess, sys, tomllib; subprocess.check_call([sys.executable, "-m", "pip", "install", \
		"--quiet", "--disable-pip-version-check", *tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]])'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(CORE_STAMP)

$(FT_STAMP): pyproject.toml
	@test -x $(FT_VENV)/bin/python || $(PYTHON) -m venv $(FT_VENV)
	$(FT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(FT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $$($(PYTHON) -c \
		'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["freqtrade"]))')
	@touch $(FT_STAMP)

$(PEERS_STAMP): pyproject.toml
	@test -x $(PEERS_VENV)/bin/python || { \
		py=; for c in $(PEERS_PYTHON) python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
			if "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then py=$$c; break; fi; done; \
		if [ -z "$$py" ]; then echo "$(PEERS_VENV): no Python >= 3.13 found (PATH, ~/.pyenv/versions/3.13*);" \
			"install one or set PEERS_PYTHON=/path/to/python3.13"; exit 1; fi; \
		echo "$(PEERS_VENV): with $$py"; "$$py" -m venv $(PEERS_VENV); }
	$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $$($(PYTHON) -c \
		'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["peers"]))')
	@touch $(PEERS_STAMP)

# the web exchange's libraries, pinned by src/dpg/web/package-lock.json, copied into src/dpg/web/vendor/
# (its devDependencies, axe-core for the browser tests' accessibility check, stay in node_modules: never served)
WEB := src/dpg/web
WEB_STAMP := $(WEB)/vendor/.installed

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(WEB)/vendor && mkdir -p $(WEB)/vendor/noble-hashes
	cp $(WEB)/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs $(WEB)/vendor/lightweight-charts.mjs
	cp $(WEB)/node_modules/lightweight-charts/LICENSE $(WEB)/vendor/lightweight-charts.LICENSE.txt
	cp $(WEB)/node_modules/qrcode-generator/dist/qrcode.mjs $(WEB)/vendor/qrcode.mjs
	cp $(WEB)/node_modules/@noble/hashes/*.js $(WEB)/node_modules/@noble/hashes/LICENSE $(WEB)/vendor/noble-hashes/
	@touch $(WEB_STAMP)

up test: $(WEB_STAMP)

# the contract toolchain from npm (contracts/package-lock.json): forge, and the anvil nodes the
# custody tests start (dpg up's dev chains run in its own process); build.sh keeps its own stamp
CHAIN_STAMP := contracts/node_modules/.dpg-lock.sha256

$(CHAIN_STAMP): contracts/package.json contracts/package-lock.json
	contracts/build.sh --toolchain

test: $(CHAIN_STAMP)

up: $(CORE_STAMP)
	$(BIN)/dpg up $(ARGS)

lint: $(CORE_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: lint $(FT_STAMP) $(PEERS_STAMP)
	$(BIN)/pytest $(ARGS)

# without a Python 3.13 the engine benchmark still runs, and prints that it skipped the compiled peers
bench: $(CORE_STAMP)
	-@$(MAKE) --no-print-directory $(PEERS_STAMP)
	$(BIN)/dpg bench engine --json
	$(BIN)/dpg bench durable --json

clean:
	rm -rf $(VENV) $(FT_VENV) $(PEERS_VENV) .pytest_cache .mypy_cache .ruff_cache
