# The two commands of the README:  `make lab` (set up + open the notebooks)  and  `make test` (set up + run all tests).
# `make check` is the edit loop: every test not marked slow, in about a minute.
# Everything lives in .venv, at the versions the tests passed with (constraints.txt; `make constraints` rewrites it
# from a .venv that passed); a stamp per extra re-installs only when pyproject.toml or constraints.txt changes.
# The pins hold for the Python they were made with (its header says which); on another, PIN is empty and pip
# resolves pyproject.toml's ranges, saying so, instead of stopping with ResolutionImpossible.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIN     = $$($(BIN)/python tools/constraints.py --pip-args)
PYTEST_ARGS ?=

.PHONY: lab test check chromium data book clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip

# --no-compile: pip would byte-compile all ~13,500 installed modules (about 30 CPU s, one core); Python compiles the
# ~4,000 the course and the tests import (about 10 s) as it first imports them.
$(VENV)/.lab: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --no-compile $(PIN) -e '.[notebooks]'
	touch $@

$(VENV)/.test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --no-compile $(PIN) -e '.[notebooks,test,book]'  # book: tests/test_book.py builds two pages
	touch $@

constraints: $(VENV)/.test
	$(BIN)/python tools/constraints.py > constraints.txt

lab: $(VENV)/.lab
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)  # root: containers, Colab-like VMs

# The browser test needs Debian's chromium; it is installed when we are root, otherwise that test skips.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will skip"; }

# The data and training tests read the helmet data in ../shared; without it, this fetches it once into
# ~/.cache/fla/test-shared (~11 MB). Offline it gives up within seconds and those tests skip, saying how.
data: $(VENV)/.test
	$(BIN)/python tests/shared_data.py

# The static course in _build/book/html (open index.html): the notebooks executed (01-03 and 05 in full mode,
# 04 and 06 in quick mode with the shipped runs) and rendered by Sphinx + myst-nb, offline. Reruns re-execute
# only notebooks (or package code) that changed.
book: $(VENV)/.test data
	$(BIN)/python tools/book.py

test: $(VENV)/.test chromium data
	FLA_QUICK=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(VENV)/.test data
	FLA_QUICK=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache _build
