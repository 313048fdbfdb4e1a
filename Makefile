# Two commands on a fresh clone: `make lab` and `make test`. Both build .venv first.
# A second run skips the install unless pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=600

.PHONY: help setup lab test unit notebooks exercises clean

help:
	@echo "make lab        set up .venv and open JupyterLab at the first lesson"
	@echo "make test       set up .venv, run the unit tests and every notebook (quick mode)"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make colab      stamp every notebook with its Colab badge and set-up cell"
	@echo "make student    build dist/student/: lessons, exercises, package, no solutions"
	@echo "make html       run the lessons (MODE=quick|laptop|full) and render dist/html/"
	@echo "make runtimes   time every notebook (MODE=...) into docs/runtimes.md"
	@echo "make test-browser  check dist/html-style pages in headless chromium"

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

# Instructor kit (docs/instructors.md). MODE=quick|laptop|full picks how hard `html` (default laptop)
# and `runtimes` (default quick) work.
.PHONY: colab student html runtimes test-browser

colab: setup
	$(BIN)/python tools/colab.py

student:
	$(PYTHON) tools/build_student.py

html: setup
	$(BIN)/python tools/build_html.py --mode $(or $(MODE),laptop)

runtimes: setup
	$(BIN)/python tools/measure_runtimes.py --mode $(or $(MODE),quick)

test-browser: setup
	CBAM_COURSE_BROWSER_TESTS=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q tests/browser
