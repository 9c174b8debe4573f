# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The program writes runs/ and reports/ under VQAGAN_WORKDIR (default: the current folder). The
# notebooks' kernels start in notebooks/, so every target points it at the clone's root.
export VQAGAN_WORKDIR := $(CURDIR)

.PHONY: install demo test test-fast lab benchmark dist clean

install: $(STAMP)

# torch first and pinned: on the reference machines these two wheels are on local
# disk, and an unpinned torch would pull a multi-GB download elsewhere.
$(STAMP): pyproject.toml vqagan_lib/coding/_fast_decode.c vqagan_lib/models/_paint.c  # the install builds the C parts
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || \
	    $(PY) -m pip install -q "torch>=2.4,<=2.14.1" "torchvision>=0.19,<=0.29.1"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m vqagan_lib demo

# pytest for the library, nbval (QUICK mode) for the notebooks, in one run.
test: $(STAMP)
	VQAGAN_QUICK=1 $(PY) -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q tests -m "not slow"

benchmark: $(STAMP)
	$(PY) -m vqagan_lib benchmark

# The sdist and the wheel, shipped models included, into dist/ (what `pip install .` would install).
dist: $(STAMP)
	$(PY) -m build --no-isolation --outdir dist .

# Jupyter refuses to run as root (common in containers) unless told it may.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,lab]"
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

clean:
	rm -rf $(VENV) runs reports/quick .pytest_cache dist build
