# vein2vein: `make demo` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VENDOR := src/vein2vein/web/static/vendor
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv web-assets chromium pdf-libs demo test lint bench lock clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Browser libraries come from the npm registry at build time (package-lock.json pins them).
web-assets: $(VENDOR)/.stamp

# --ignore-scripts: every file used here ships prebuilt, and no install script (swagger-ui-dist's
# @scarf/scarf reports installs over the network) runs on a build machine.
$(VENDOR)/.stamp: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/plotly.js-dist-min/plotly.min.js $(VENDOR)/plotly.min.js
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js $(VENDOR)/swagger-ui-bundle.js
	cp node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/swagger-ui.css
	@touch $@

# Debian's Chromium drives the page tests (a browser download cannot work here).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the page tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# WeasyPrint (printed audit trails) needs Pango from Debian; the PDF tests read the text with
# poppler's pdftotext.
pdf-libs:
	@ldconfig -p | grep -q libpangoft2-1.0 || { \
	  echo "installing Debian's Pango for PDF reports"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; }
	@command -v pdftotext >/dev/null || { \
	  echo "installing Debian's poppler-utils (the PDF tests read the printed text)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv web-assets chromium pdf-libs lint
	$(BIN)/pytest

demo: venv web-assets pdf-libs
	$(BIN)/v2v db upgrade
	$(BIN)/v2v demo build --reset
	$(BIN)/v2v demo serve --host $(HOST) --port $(PORT)

bench: venv
	$(PY) benchmarks/run.py

# Re-pin dependencies after editing pyproject.toml.
lock: venv
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
	  --no-emit-find-links -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .mypy_cache .ruff_cache .pytest_cache
