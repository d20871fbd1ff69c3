# The two commands of README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test dovecot lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Non-editable on purpose: the demo proves a real install finds its shipped files.
install: $(BIN)/python
	$(BIN)/pip install --quiet .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

demo: install
	$(BIN)/triage demo

dovecot:
	@if ! command -v dovecot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing dovecot-imapd (needed by the IMAP tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null; \
	  else \
	    echo "The tests need a real Dovecot: run 'sudo apt-get install -y dovecot-imapd' and retry."; \
	    exit 1; \
	  fi; \
	fi

test: install-test dovecot
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/pip install --quiet ruff mypy
	$(BIN)/ruff check triage tests bench
	$(BIN)/mypy triage

clean:
	rm -rf $(VENV) demo build dist *.egg-info
