# The two commands of the README. Each one sets everything up from scratch on a fresh machine
# (a virtualenv, pinned Python packages, a release build of the Rust core) and is cheap to repeat.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pyfuzz-deps
TIME   ?= 60

.PHONY: fuzz test bench build clean chromium

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "pyfuzz needs CPython 3.11 (atheris 3.0.0 ships no wheel for other versions)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "maturin>=1.7,<2.0" "mypy==2.4.1"
	@touch $@

# The Rust core, then the oracle compiled with mypyc (pyfuzz/mypyc_oracle.py; skipped when up to date).
build: $(STAMP)
	$(BIN)/maturin develop --release --quiet --extras test
	$(BIN)/python -m pyfuzz.mypyc_oracle

# A short default campaign on the seed's configuration, with a summary. pyfuzz exits 1 when it
# finds a violation: that is the job's result, not a failure of the command.
fuzz: build
	$(BIN)/pyfuzz fuzz --time $(TIME) || [ $$? -eq 1 ]

# The HTML timeline's test renders it in Debian's headless Chromium. Quick when installed; the
# package lists are refreshed only if the install fails without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
	  { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }

# Every test: the Rust unit tests and the Python suite (oracle, programs, corpus replay, CLI).
test: build chromium
	cargo test --locked --quiet
	$(BIN)/python -m pytest -q

bench: build
	$(BIN)/pyfuzz bench speed

clean:
	rm -rf $(VENV) target
