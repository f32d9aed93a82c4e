# lmcourse: `make lab` sets everything up and opens the course; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
KERNEL := lmcourse
PORT   ?= 8888
LAB_SETTINGS  := $(VENV)/share/jupyter/lab/settings/overrides.json
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.json
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help install lab test test-unit test-notebooks course course-fast course-reproducible bench lint slides handout book clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	  { echo "lmcourse needs Python >= 3.10; found $$($(PYTHON) --version). Set PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }

# Stamps make a second `make lab` take seconds: pip runs again only when the pins change.
$(VENV)/.course-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e ".[course]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (lmcourse)" >/dev/null
	@touch $@

$(VENV)/.test-installed: $(VENV)/.course-installed
	$(PIP) -e ".[test]"
	@touch $@

# JupyterLab and server settings for this environment only (see lmcourse/jupyter/README.md).
$(LAB_SETTINGS): lmcourse/jupyter/overrides.json | $(PY)
	install -D -m 644 $< $@

$(SERVER_CONFIG): lmcourse/jupyter/jupyter_server_config.json | $(PY)
	install -D -m 644 $< $@

install: $(VENV)/.course-installed $(LAB_SETTINGS) $(SERVER_CONFIG)  ## create .venv, install the course, register the Jupyter kernel

lab: install  ## set up (if needed) and open JupyterLab on notebooks/
	@echo "Starting JupyterLab on notebooks/ with the '$(KERNEL)' kernel; open the http://127.0.0.1 URL printed below. Ctrl-C stops it."
	$(PY) -m jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) $(if $(DISPLAY)$(filter Darwin,$(shell uname)),,--no-browser)

test: lint test-unit test-notebooks  ## lint, unit tests, then every notebook under nbval in fast mode

test-unit: $(VENV)/.test-installed $(LAB_SETTINGS) $(SERVER_CONFIG)
	$(PY) -m pytest tests

test-notebooks: $(VENV)/.test-installed
	LMCOURSE_FAST=1 LMCOURSE_PROGRESS=text LMCOURSE_EXERCISE_RECORD=off $(PY) -m pytest $(NBVAL) notebooks

course: $(VENV)/.test-installed  ## run every notebook in full mode, refresh stored outputs, runtimes, key results (NOTEBOOKS=..., COURSE_ARGS=--check-reproducible)
	$(PY) -m lmcourse.course run --mode full $(COURSE_ARGS) $(NOTEBOOKS)

course-fast: $(VENV)/.test-installed  ## the same in fast mode, writing no file (prints times and key results)
	$(PY) -m lmcourse.course run --mode fast --no-save $(NOTEBOOKS)

course-reproducible: $(VENV)/.test-installed  ## run each notebook twice in full mode, writing nothing; fail if a key result differs
	$(PY) -m lmcourse.course run --mode full --no-save --check-reproducible $(NOTEBOOKS)

bench: $(VENV)/.test-installed  ## run benchmarks/ and rewrite benchmarks/RESULTS.md
	$(PY) benchmarks/run.py

lint: $(VENV)/.test-installed  ## ruff over the package, tests and benchmarks (settings in pyproject.toml)
	$(PY) -m ruff check .

slides: $(VENV)/.test-installed  ## every chapter as reveal.js slides in build/slides/ (presentable offline)
	$(PY) -m lmcourse.classroom slides

handout: $(VENV)/.test-installed  ## exercise notebooks without solutions (build/handout/) and an answer key (build/answers/)
	$(PY) -m lmcourse.classroom handout

html: $(VENV)/.test-installed $(VENV)/.book-installed  ## every chapter as one HTML page with its stored outputs in build/html/ (MathJax local, read offline)
	$(PY) -m lmcourse.classroom html

# The website needs only its own packages (pyproject.toml's [book] extra), not the course's torch: install that list.
$(VENV)/.book-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["book"]))')
	@touch $@

book: $(VENV)/.book-installed  ## the course website in build/book/ from the stored outputs (offline, runs no notebook; open build/book/index.html)
	$(PY) book/build.py

clean:  ## remove caches and build leftovers (keeps .venv)
	rm -rf .pytest_cache build dist *.egg-info artifacts
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print -exec rm -rf {} +

distclean: clean  ## also remove .venv
	rm -rf $(VENV)
