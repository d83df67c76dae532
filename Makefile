# The book's two commands: `make book` and `make test` (see README.md).
# Each sets up what it needs (a virtual environment in .venv with the pinned
# install) and is quick when that is already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# re-install when the pins change
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

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

.PHONY: setup book test unit notebooks book-smoke clean pair

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	rm -f $(VENV)/.installed-*
	touch $@

## build the book: execute every chapter at the default profile, render the HTML
book: setup
	$(BIN)/plasticity-book execute --profile $(PROFILE) --jobs $(JOBS)
	$(BIN)/plasticity-book build --profile $(PROFILE)

## run the tests: unit tests, chapters at the smoke profile under nbmake, strict book build
test: setup unit notebooks book-smoke

unit: setup
	$(BIN)/python -m pytest tests -q

notebooks: setup
	$(BIN)/plasticity-book prepare --profile smoke
	PLASTICITY_RESULTS_DIR=$(CURDIR)/results/smoke $(BIN)/python -m pytest -q -p no:cacheprovider \
	    --nbmake --overwrite --nbmake-kernel=python3 --nbmake-timeout=600 --durations=0 results/smoke/*.ipynb

book-smoke: setup
	$(BIN)/plasticity-book build --profile smoke --strict

clean:
	rm -rf _build results

## re-write the paired notebooks (no outputs) that Colab's launch buttons open
pair: setup
	$(BIN)/jupytext --to ipynb chapters/[0-9][0-9]_*.py
