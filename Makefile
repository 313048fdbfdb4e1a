# Two commands on a fresh clone: `make lab` and `make test`. Both build .venv first.
# A second run skips the install unless pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
# Both cores: pytest-xdist runs the tests in two processes of one torch thread each (a test file,
# and so each notebook, stays whole on one of them), in the order conftest.py sets: the longest
# files first, the Chinese notebooks after the English ones.
PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder
ONE_THREAD := OMP_NUM_THREADS=1

# The oldest and newest Python the README admits, for `make test-pythons`. Each one can be named:
#   make test-pythons PYTHON310=/path/to/python3.10
# left empty, tools/find_python.sh looks on PATH and in pyenv's installs.
PYTHONS   := 3.10 3.13
PYTHON310 ?=
PYTHON313 ?=
# Tests that need numba (the opt-in `fast` extra) carry @pytest.mark.numba; the README's
# `make test` runs without numba and leaves them out.
# (The pytest lines name their folders literally: tools/build_student.py adapts them for a copy
# without tests/.)
UNIT_ENV  := CBAM_COURSE_QUICK=1 MPLBACKEND=Agg

# The edition: LANG=zh picks the Simplified Chinese one (notebooks/zh/, exercises/zh/, solutions/zh/)
# for lab, student and html; so does a Chinese locale in the environment (LANG=zh_CN.UTF-8).
# LANG=en, or any other locale, the English one. "zh" is no locale, so the commands get C.UTF-8.
EDITION  := $(if $(filter zh%,$(LANG)),zh,en)
ZH       := $(if $(filter zh,$(EDITION)),/zh)
RUN_LANG := $(if $(filter zh,$(LANG)),LANG=C.UTF-8)

.PHONY: help setup lab test unit notebooks exercises translations clean test-fast pythons test-pythons

help:
	@echo "make lab        set up .venv and open JupyterLab at the first lesson"
	@echo "make lab LANG=zh  the same in Simplified Chinese: Chinese lessons, package and JupyterLab"
	@echo "make test       set up .venv, run the unit tests and every notebook (quick mode): about 5 min after the install"
	@echo "make exercises  regenerate exercises/ from solutions/, and the Chinese edition (make translations)"
	@echo "make translations  rebuild the Chinese notebooks from notebooks/zh/translations/ (and solutions/zh/...),"
	@echo "                stamp them, regenerate exercises/zh/, compile the package's catalogs; list what is stale"
	@echo "make test-fast  add numba (the fast extra) to .venv and run tests/fast"
	@echo "make test-pythons  install the course on Python $(PYTHONS) (oldest, newest), each in .venv-pyX.Y, and check it there"
	@echo "make colab      stamp every notebook with its Colab badge and set-up cell"
	@echo "make student    build dist/student/: lessons, exercises, package, no solutions (LANG=zh: dist/student-zh/)"
	@echo "make html       run the lessons and render dist/html/ (LANG=zh: dist/html-zh/); MODE=laptop (default) takes about 79 min"
	@echo "                on 2 CPU cores and needs CIFAR-10, MODE=quick under a minute, MODE=full a GPU"
	@echo "make runtimes   time every notebook into docs/runtimes.md; MODE=quick (default) about a minute"
	@echo "make test-browser  check dist/html-style pages in headless chromium"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, this is " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	touch $(STAMP)

setup: $(STAMP)

# Loopback only; --allow-root because containers (Binder-like set-ups, CI) often run as root.
# The server serves the whole repository (lessons, exercises/, solutions/) and opens lesson 01:
# a notebook path on the command line would make Jupyter serve that notebook's folder alone.
# PROFILE=quick|laptop|full sets the mode of every notebook it runs (CBAM_COURSE_PROFILE; README).
# LANG=zh: Chinese lesson 01, the package speaking Chinese in every kernel (CBAM_COURSE_LANG), and
# JupyterLab's own menus in Chinese (its zh-CN language pack, chosen in a settings folder of its own,
# so that the English lab keeps the learner's usual settings).
LAB_ARGS := --ip=127.0.0.1 --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks$(ZH)/01_concepts.ipynb
LAB_ZH_SETTINGS := $(VENV)/lab-settings-zh
LAB_ZH_LOCALE := $(LAB_ZH_SETTINGS)/@jupyterlab/translation-extension/plugin.jupyterlab-settings
LAB_ENV := $(RUN_LANG) $(if $(ZH),CBAM_COURSE_LANG=zh JUPYTERLAB_SETTINGS_DIR=$(LAB_ZH_SETTINGS))
lab: setup
	$(if $(ZH),@test -f $(LAB_ZH_LOCALE) || { mkdir -p "$(dir $(LAB_ZH_LOCALE))" && echo '{"locale": "zh_CN"}' > $(LAB_ZH_LOCALE); })
	$(LAB_ENV) CBAM_COURSE_PROFILE=$(or $(PROFILE),$$CBAM_COURSE_PROFILE) $(BIN)/jupyter lab $(LAB_ARGS) $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# tests/browser is left out by its conftest.py unless CBAM_COURSE_BROWSER_TESTS=1 (make test-browser).
unit: setup
	$(UNIT_ENV) $(ONE_THREAD) $(BIN)/python -m pytest -q $(PARALLEL) -m "not numba" tests

notebooks: setup
	CBAM_COURSE_QUICK=1 MPLBACKEND=Agg $(ONE_THREAD) $(BIN)/python -m pytest -q $(PARALLEL) $(NBVAL) notebooks exercises solutions

# One session for both, so that the two workers share out all the files: run one after the other,
# one worker idled at the end of the unit tests while the other finished its last long file.
test: setup
	$(UNIT_ENV) $(ONE_THREAD) $(BIN)/python -m pytest -q $(PARALLEL) $(NBVAL) -m "not numba" tests notebooks exercises solutions

exercises: setup
	$(BIN)/python tools/exercises.py solutions exercises
	@$(MAKE) --no-print-directory translations

# The Chinese edition, from the English notebooks and their translation files (tools/translate.py):
# a cell whose translation is stale or missing stays English, and `check` lists it (tests fail on it).
translations: setup
	$(BIN)/python tools/translate.py build
	$(BIN)/python tools/colab.py notebooks/zh solutions/zh
	$(BIN)/python tools/exercises.py solutions/zh exercises/zh
	$(BIN)/python tools/i18n.py compile
	-@$(BIN)/python tools/translate.py check

clean:
	rm -rf $(VENV) dist .pytest_cache

# numba is opt-in (pyproject's `fast` extra), so the README's `make test` runs without it. This adds
# it to the same .venv and runs tests/fast, numba-marked tests included. Its own stamp: re-installs
# when $(STAMP) does (pyproject.toml changed). Once run, .venv has numba: `make test` in a fresh
# clone (as .ci/run does first) is the check that the course needs none.
FAST_STAMP := $(VENV)/.installed-fast

$(FAST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[lab,test,fast]'
	touch $(FAST_STAMP)

test-fast: $(FAST_STAMP)
	$(UNIT_ENV) $(ONE_THREAD) $(BIN)/python -m pytest -q $(PARALLEL) tests/fast

# The oldest and newest Python the README admits, one venv each (.venv-py3.10, .venv-py3.13),
# stamped like .venv so a second run skips the install. A missing interpreter is an error
# (tools/find_python.sh says which one and how to name it), never a skip. `make pythons` only
# installs (CI starts it early, beside `make test`); `make test-pythons` then checks that every
# module and tool imports there and runs the tests most likely to differ between Pythons (the
# layout's ast reading, the environment files, the Day 50 equivalence and facts, the errors a
# learner meets); the whole suite runs on the README's Python in `make test`. `lab` comes along
# because those tests read notebooks and environment.yml with what JupyterLab brings. Every
# version runs (all at once, one per core, each printed whole when all end) even when one fails;
# `PYTHONS=3.10` picks one. --no-compile: pip's byte-compiling of
# every installed file (about 35 s of CPU per venv) ran beside `make test` in CI and slowed it; the
# few tests here compile what they import.
.venv-py%/.installed: pyproject.toml
	@py=$$(bash tools/find_python.sh $* '$(PYTHON$(subst .,,$*))') || exit 1; \
	 echo "Python $*: $$py"; \
	 test -x .venv-py$*/bin/python || "$$py" -m venv .venv-py$*
	.venv-py$*/bin/python -m pip install --quiet --no-compile -e '.[lab,test]'
	touch $@

pythons: $(foreach v,$(PYTHONS),.venv-py$(v)/.installed)

test-pythons: pythons
	@for v in $(PYTHONS); do \
	    $(UNIT_ENV) $(ONE_THREAD) .venv-py$$v/bin/python -m pytest -q -p no:cacheprovider -m "not numba" tests/test_imports.py \
	        tests/test_layout.py tests/test_environment.py tests/test_day50_equivalence.py tests/test_day50_facts.py \
	        tests/test_errors.py > .venv-py$$v/tests.log 2>&1; echo $$? > .venv-py$$v/tests.rc & \
	done; wait; \
	failed=; for v in $(PYTHONS); do \
	    echo "== Python $$v: .venv-py$$v"; cat .venv-py$$v/tests.log; \
	    [ "$$(cat .venv-py$$v/tests.rc)" = 0 ] || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test-pythons: tests failed on Python$$failed" >&2; exit 1; fi

# Instructor kit (docs/instructors.md). MODE=quick|laptop|full picks how hard `html` (default laptop)
# and `runtimes` (default quick) work.
.PHONY: colab student html runtimes test-browser

colab: setup
	$(BIN)/python tools/colab.py

student:
	$(PYTHON) tools/build_student.py --edition $(EDITION)

html: setup
	@case "$(or $(MODE),laptop)" in \
	  quick) echo "make html MODE=quick: the six lessons ran in 38 s on a 2-core CPU, plus rendering; no data needed. Ctrl-C stops; MODE=laptop|full for real training.";; \
	  laptop) echo "make html MODE=laptop: about 79 minutes on 2 CPU cores, both busy (lesson 05: 20 min, 06: 57 min), and CIFAR-10 (163 MB). Ctrl-C stops; MODE=quick takes under a minute.";; \
	  full) echo "make html MODE=full: needs a CUDA GPU and CIFAR-10; not measured (7 trainings of about a minute each on an H100). Ctrl-C stops; MODE=quick takes under a minute.";; \
	esac
	$(RUN_LANG) $(BIN)/python tools/build_html.py --edition $(EDITION) --mode $(or $(MODE),laptop)

runtimes: setup
	@case "$(or $(MODE),quick)" in \
	  quick) echo "make runtimes MODE=quick: 18 notebooks took 76 s on a 2-core CPU (2026-11-26, before the 04a appendix: 4 s more on a busy machine), no data needed. Ctrl-C keeps what is measured; MODE=laptop|full measures training.";; \
	  laptop) echo "make runtimes MODE=laptop: over 79 minutes on 2 CPU cores (the six lessons alone; their exercise and solution copies not measured), and CIFAR-10. Ctrl-C keeps what is measured; MODE=quick takes about a minute.";; \
	  full) echo "make runtimes MODE=full: needs a CUDA GPU and CIFAR-10; not measured. Ctrl-C keeps what is measured; MODE=quick takes about a minute.";; \
	esac
	$(BIN)/python tools/measure_runtimes.py --mode $(or $(MODE),quick)

test-browser: setup
	CBAM_COURSE_BROWSER_TESTS=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q tests/browser
