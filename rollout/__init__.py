"""Rollout backends (hf | vllm | openai) behind one interface, and weight sync from the PEFT policy."""

from rollout.base import (
    BACKENDS,
    RolloutBackend,
    RolloutBatch,
    RolloutConfig,
    RolloutError,
    SamplingConfig,
    make_backend,
)

__all__ = [
    "BACKENDS", "RolloutBackend", "RolloutBatch", "RolloutConfig", "RolloutError", "SamplingConfig", "make_backend",
]
