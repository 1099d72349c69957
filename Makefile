# The two commands of the README:
#   make book   set up .venv, fetch the data, execute every chapter and build _build/html
#   make test   unit tests of the package plus every chapter executed as a test
#   (make test lints first: ruff, configured in ruff.toml)
# Other targets: notebooks (regenerate the Colab/Binder notebooks), browser-check, clean.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Machines without internet (CI, the course's dev boxes) keep the corpora in ../shared/data.
ifneq ($(wildcard ../shared/data/SHA256SUMS),)
export LLMSCRATCH_DATA_MIRROR ?= $(abspath ../shared/data)
endif

.PHONY: book test notebooks data browser-check clean

$(INSTALLED): requirements.txt code/pyproject.toml _ext/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

data: $(INSTALLED)
	$(PY) -m llmscratch fetch

book: $(INSTALLED) data
	$(PY) tools/bookcache.py prepare
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo
	@echo "The book is built. Open $(CURDIR)/_build/html/index.html in a browser."

test: $(INSTALLED) data
	$(VENV)/bin/ruff check .
	$(PY) tools/notebooks.py nbtest
	$(PY) -m pytest tests .nbtest --nbmake --nbmake-timeout=900 --overwrite -n 2 \
		--durations=0 --durations-min=1.0

notebooks: $(INSTALLED)
	$(PY) tools/notebooks.py launch

# Needs Debian's chromium (apt-get install chromium); Playwright drives it, no browser download.
browser-check: $(INSTALLED)
	$(PY) -m pip install --quiet playwright==1.65.2
	$(PY) tools/browser_check.py _build/html
	$(PY) tools/playground_check.py --speed 50

clean:
	rm -rf _build .nbtest
