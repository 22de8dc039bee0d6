# The README's two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test setup bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/forgeml demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
