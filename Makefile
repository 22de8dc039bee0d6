# The README's two commands: `make demo` and `make test`. Each sets up .venv on first use.
# The demo installs forgeml alone (torch and the core packages); the tests add the `test` extra
# (serving, pretrained encoders, the browser driver...). Each has its own stamp, so `make test`
# after `make demo` still installs the test extra, and a changed pyproject.toml reinstalls both.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: demo test setup setup-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test]'
	touch $@

setup: $(VENV)/.installed-demo

setup-test: $(VENV)/.installed-test

demo: setup
	$(BIN)/forgeml demo

test: setup-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
