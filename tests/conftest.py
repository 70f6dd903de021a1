"""Shared fixtures: the embedded SmolLM2 (converted once into a cache shared by all tests)."""

from __future__ import annotations

import os

import pytest
import torch

# One cache per machine: the GGUF -> safetensors conversion runs once (~20 s), then loads are fast.
os.environ.setdefault("SAFETY_GRPO_CACHE", os.path.expanduser("~/.cache/safety-grpo"))
os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    from runtime.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tokenizer(smollm2_path):
    from runtime.models import load_tokenizer

    return load_tokenizer("smollm2-135m")
