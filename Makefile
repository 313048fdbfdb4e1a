# Two commands on a fresh clone: `make lab` and `make test`. Both build .venv first.
# A second run skips the install unless pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval-lax --current-env --nbval-cell-timeout=600

.PHONY: help setup lab test unit notebooks exercises clean

help:
	@echo "make lab        set up .venv and open JupyterLab at the first lesson"
	@echo "make test       set up .venv, run the unit tests and every notebook (quick mode)"
	@echo "make exercises  regenerate exercises/ from solutions/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, this is " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	touch $(STAMP)

setup: $(STAMP)

# Loopback only; --allow-root because containers (Binder-like set-ups, CI) often run as root.
lab: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root) notebooks/01_concepts.ipynb

unit: setup
	CBAM_COURSE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q tests

notebooks: setup
	CBAM_COURSE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q $(NBVAL) notebooks exercises solutions

test: unit notebooks

exercises: setup
	$(BIN)/python -m cbam_course.exercises solutions exercises

clean:
	rm -rf $(VENV) dist .pytest_cache
