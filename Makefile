# The two commands of README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test system-packages lint clean

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

# The suite runs against a real Dovecot and drives Debian's Chromium (never a downloaded browser).
system-packages:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (needed by the tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  else \
	    echo "The tests need a real Dovecot and Chromium: run 'sudo apt-get install -y$$missing' and retry."; \
	    exit 1; \
	  fi; \
	fi

test: install-test system-packages
	$(BIN)/python -m pytest

lint: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,lint]'
	$(BIN)/ruff check triage tests bench
	$(BIN)/mypy triage

clean:
	rm -rf $(VENV) demo build dist *.egg-info
