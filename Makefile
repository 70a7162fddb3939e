# Two entry points, both self-installing into .venv:
#   make bench [ARGS="..."]   set up, run the suite on the installed torch, record, publish
#   make test                 set up and run the suite's own tests (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: bench test tools browser valgrind

$(PY):
	$(PYTHON) -m venv $(VENV)

# asv, asv_runner and this project's tools; torch only when benchmarking this venv's own.
tools: $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'

bench: tools
ifeq (,$(findstring --python,$(ARGS)))
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
endif
	$(PY) -m torch_overhead run $(ARGS)

# tests/test_dashboard.py opens the dashboard in Debian's chromium (Playwright, from the
# test extra, drives it; it never downloads a browser of its own). Installed when missing.
browser:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

# tests/benchmarks_suite/test_instruction_count.py counts under valgrind's callgrind. Installed when missing.
valgrind:
	@command -v valgrind >/dev/null || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind; }

test: tools browser valgrind
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pytest -v -n auto --maxprocesses 4 --dist loadfile --durations=25 $(PYTEST_ARGS)
