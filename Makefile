# The book's two commands: `make book` and `make test` (see README.md).
# Each sets up what it needs (a virtual environment in .venv with the locked
# install) and is quick when that is already done.

# the lock (requirements-lock.txt) is the known-good set for Python 3.11: prefer it
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements-lock.txt
# re-install when the dependencies (pyproject.toml) or the lock change
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)

# Offline data: the raw dataset files (e.g. mnist/*.gz) are looked up in
# $PLASTICITY_DATA_DIR/<dataset>/; default to ../shared/datasets when it exists.
SHARED_DATA := $(abspath ../shared/datasets)
ifeq ($(origin PLASTICITY_DATA_DIR), undefined)
  ifneq ($(wildcard $(SHARED_DATA)/mnist),)
    export PLASTICITY_DATA_DIR := $(SHARED_DATA)
  endif
endif
export PYTHONHASHSEED := 0
# keep TensorFlow (used only to prepare datasets) quiet
export TF_CPP_MIN_LOG_LEVEL := 2

PROFILE ?= default
JOBS    ?= 1

.PHONY: setup book test lint unit notebooks nbmake nbmake-reader book-smoke clean pair

setup: $(STAMP)

# plain pip, the lock as constraints: works with any index pip is configured with
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e ".[book,test]"
	rm -f $(VENV)/.installed-*
	touch $@

## build the book: execute every chapter at the default profile, render the HTML
book: setup
	$(BIN)/plasticity-book execute --profile $(PROFILE) --jobs $(JOBS)
	$(BIN)/plasticity-book build --profile $(PROFILE)

## run the tests: lint, unit tests, every chapter at the smoke profile (published for the
## book), one chapter again under pytest --nbmake as a reader's notebook, strict book build
## + HTML checks. `make nbmake` runs every chapter under nbmake (CI does it as its own job).
test: setup lint unit notebooks nbmake-reader book-smoke

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the two cores each take a share of the test files (pytest-xdist, one file per worker)
TEST_WORKERS ?= 2
unit: setup
	$(BIN)/python -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile

# every chapter at the smoke profile through papermill, published (only when every cell
# completed) into results/smoke/, which book-smoke renders; fails naming the chapter and
# cell. A chapter whose inputs did not change is not re-executed. Two chapters at a time.
SMOKE_JOBS ?= 2
notebooks: setup
	$(BIN)/plasticity-book execute --profile smoke --jobs $(SMOKE_JOBS)

# the paired notebooks (what Colab opens) as a reader runs them: PLASTICITY_PROFILE picks the
# smoke profile, results go to results/adhoc/ (never into a book's results). JAX's
# compilation cache is the one `plasticity-book execute` fills.
NBMAKE_CHAPTERS ?= chapters/[0-9][0-9]_*.ipynb
NBMAKE_ENV = PLASTICITY_PROFILE=smoke JAX_COMPILATION_CACHE_DIR=$(CURDIR)/results/.jax-cache \
	JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0.2
nbmake: setup
	$(NBMAKE_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake \
	    --nbmake-kernel=python3 --nbmake-timeout=600 --durations=0 $(NBMAKE_CHAPTERS)

# in `make test`: the reader's path (nbmake, PLASTICITY_PROFILE, results/adhoc) on chapter 00;
# the same code of every chapter has just run through papermill in `notebooks`
nbmake-reader: notebooks
	$(MAKE) --no-print-directory nbmake NBMAKE_CHAPTERS=chapters/00_overview.ipynb

book-smoke: notebooks
	$(BIN)/plasticity-book build --profile smoke --strict
	PLASTICITY_BOOK_HTML=$(CURDIR)/_build/smoke/_build/html $(BIN)/python -m pytest -q \
	    -p no:cacheprovider tests/test_rendered_book.py

clean:
	rm -rf _build results

## re-write the paired notebooks (no outputs) that Colab's launch buttons open
## (--update keeps cell ids, so a diff shows only the cells that changed)
pair: setup
	$(BIN)/jupytext --update --to ipynb chapters/[0-9][0-9]_*.py

## robustness runs (not part of book/test): every chapter's default profile again with
## held-out seeds (seed_offset=100) and on Fashion-MNIST, into results/robust-seeds/ and
## results/robust-fashion/ (never results/default/); `make book` then shows their verdicts.
## About 45 min on the 2-core CPU.
.PHONY: robustness
robustness: setup
	$(BIN)/plasticity-book robustness --profile $(PROFILE) --jobs $(JOBS)
