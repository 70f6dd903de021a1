"""The rollout interface: configs, the batch a backend returns, the Protocol and the backend registry.

A backend turns prompt token ids into n sampled completions per prompt, with the log-prob of every
sampled token under the distribution it was actually sampled from ("processed" log-probs: logits
divided by the temperature; top_p 1 and top_k off leave nothing else to process). GRPO's importance
weight min(exp(old_logp - rollout_logp), C) is only unbiased when those two match.

A new backend is one module with a class `(cfg, *, model_name, tokenizer, policy, dtype, device)`
plus one line in BACKENDS. vLLM is imported only by the backend that uses it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol, runtime_checkable

from runtime.config import (
    ConfigError,
    NonNegInt,
    OpenUnitFloat,
    PosFloat,
    PosInt,
    Range,
    check_ranges,
)

Temperature = Annotated[float, Range(lo=0, hi=2)]
"""A sampling temperature in [0, 2] (0: greedy)."""
TopP = Annotated[float, Range(lo=0, hi=1, lo_open=True)]
"""A nucleus mass in (0, 1]."""


class RolloutError(RuntimeError):
    """A rollout engine failed or was given input it cannot serve (the message says which)."""


@dataclass
class SamplingConfig:
    temperature: Temperature = 1.0
    """Sampling temperature; 0 = greedy (log-probs are then those of the unscaled logits)."""
    top_p: TopP = 1.0
    """Nucleus mass; keep 1.0 for GRPO (a truncated distribution biases the IS ratio)."""
    top_k: NonNegInt = 0
    """Top-k cut-off; 0 = disabled (keep 0 for GRPO, same reason)."""
    max_tokens: PosInt = 64
    """Completion tokens per sample at most (a sample that reaches it without EOS is truncated)."""
    seed: int | None = None
    """Seed of this call's sampling; None = not reproducible."""

    def validate(self) -> None:
        check_ranges(self, "sampling.")  # a SamplingConfig built in code (load_config checks a read one)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


BACKEND_CHOICES = ("hf", "vllm", "openai")
SYNC_CHOICES = ("merged", "adapter")


@dataclass
class RolloutConfig:
    backend: Literal["hf", "vllm", "openai"] = "hf"
    """Generation engine: hf (the PEFT policy's own generate), vllm (colocated engine), openai (a server)."""
    sync: Literal["merged", "adapter"] = "merged"
    """vllm weight sync: merged (push W + BA into the engine) or adapter (generate through a LoRARequest)."""
    kv_cache_gib: PosFloat | Literal["auto"] = 1.0
    """vllm: KV-cache budget in GiB (on CPU; on GPU gpu_memory_utilization sizes it), or auto (CPU and GPU): the
    whole blocks that one generate call of the caller's batch needs (make_backend(kv_batch=(sequences, tokens)))."""
    gpu_memory_utilization: OpenUnitFloat = 0.3
    """vllm on GPU: share of GPU memory the engine may take (the policy trains in the rest)."""
    sleep_mode: bool = False
    """vllm on GPU: offload the engine's weights and drop its KV cache while the policy trains."""
    max_model_len: Annotated[int, Range(lo=2)] = 1024
    """vllm: longest prompt + completion the engine accepts."""
    enforce_eager: bool = True
    """vllm: no graph capture / compilation (fast start; the models here are small)."""
    max_lora_rank: PosInt = 16
    """vllm adapter sync: LoRA rank the engine reserves when no policy is given at start (else the policy's r)."""
    base_url: str | None = None
    """openai: server root, e.g. http://127.0.0.1:8000 (with or without /v1)."""
    api_key: str = "EMPTY"
    """openai: bearer token sent to the server."""
    served_model: str | None = None
    """openai: the server's name for the base model; None = the first one /v1/models lists."""
    timeout_s: PosFloat = 120
    """openai: seconds one HTTP request may take."""
    max_retries: NonNegInt = 3
    """openai: retries of a failed request (exponential backoff from 0.5 s)."""
    adapter_dir: str | None = None
    """openai / vllm adapter sync: where adapters are saved for the engine to read; None = a temp dir."""
    hf_batch_size: PosInt = 64
    """hf: sequences (prompts x n) per generate call."""

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"rollout.backend must be one of {sorted(BACKENDS)}, got {self.backend!r}")
        if self.sync not in SYNC_CHOICES:
            raise ConfigError(f"rollout.sync must be one of {list(SYNC_CHOICES)}, got {self.sync!r}")
        check_ranges(self, "rollout.")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("rollout.base_url is required with rollout.backend=openai")


@dataclass
class RolloutBatch:
    """n completions per prompt, grouped: rows [i*n, (i+1)*n) belong to prompt i."""

    completion_ids: list[list[int]]
    """Sampled token ids per completion (B*n rows), up to and including EOS; nothing after it."""
    logprobs: list[list[float]]
    """Per completion token: log-prob under the sampling distribution (logits / temperature)."""
    finish_reason: list[str]
    """"stop" (EOS) or "length" (max_tokens reached)."""
    truncated: list[bool]
    """True when the completion hit max_tokens without EOS."""
    prompt_index: list[int]
    """Index of the prompt each completion answers (0..B-1, each repeated n times)."""
    metrics: dict = field(default_factory=dict)
    """Backend timings/figures of this call (e.g. generate_s)."""

    def __post_init__(self) -> None:
        n = len(self.completion_ids)
        lens = (len(self.logprobs), len(self.finish_reason), len(self.truncated), len(self.prompt_index))
        if any(x != n for x in lens):
            raise RolloutError(f"RolloutBatch fields disagree in length: {n} completions vs {lens}")
        for i, (c, lp) in enumerate(zip(self.completion_ids, self.logprobs)):
            if len(c) != len(lp):
                raise RolloutError(f"completion {i}: {len(c)} tokens but {len(lp)} log-probs")

    def __len__(self) -> int:
        return len(self.completion_ids)

    @property
    def num_tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)

    def lengths(self) -> list[int]:
        return [len(c) for c in self.completion_ids]


@runtime_checkable
class RolloutBackend(Protocol):
    def generate(self, prompt_token_ids: list[list[int]], n: int, sampling: SamplingConfig) -> RolloutBatch:
        """n completions of every prompt, grouped by prompt."""
        ...

    def update_weights(self, policy) -> dict:
        """Make the engine sample from `policy`'s current weights; returns timings ({"sync_s": ...})."""
        ...

    def sleep(self) -> None:
        """Free the engine's accelerator memory while the policy trains (no-op where unsupported)."""
        ...

    def wake(self) -> None:
        """Undo sleep() before the next generate / update_weights."""
        ...

    def close(self) -> None:
        """Release the engine."""
        ...


BACKENDS: dict[str, str] = {
    "hf": "rollout.hf:HFBackend",
    "vllm": "rollout.vllm_backend:VLLMBackend",
    "openai": "rollout.openai_backend:OpenAIBackend",
}
"""Backend name -> "module:Class", imported on first use (so vllm loads only when chosen)."""


def backend_class(name: str):
    if name not in BACKENDS:
        raise ConfigError(f"rollout.backend must be one of {sorted(BACKENDS)}, got {name!r}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_backend(cfg: RolloutConfig, *, model_name: str, tokenizer, policy=None, dtype: str = "float32",
                 device: str = "cpu", kv_batch: tuple[int, int] | None = None) -> RolloutBackend:
    """Build the backend `cfg.backend` for our model name (e.g. "smollm2-135m").

    The engine starts from the base weights; call update_weights(policy) when the policy already
    differs from them (an init adapter, a resumed run, QLoRA's dequantized base). kv_batch: the most
    sequences one generate call will hold and the most tokens (prompt + completion) of each, which
    rollout.kv_cache_gib=auto sizes the vllm engine's KV cache to.
    """
    cfg.validate()
    cls = backend_class(cfg.backend)
    extra = {"kv_batch": kv_batch} if cfg.backend == "vllm" else {}
    return cls(cfg, model_name=model_name, tokenizer=tokenizer, policy=policy, dtype=dtype, device=device, **extra)


def check_prompts(prompt_token_ids: list[list[int]], n: int, sampling: SamplingConfig,
                  max_model_len: int | None = None) -> None:
    """Shared input checks: a clear one-line error naming the bad prompt."""
    sampling.validate()
    if n < 1:
        raise RolloutError(f"n (completions per prompt) must be >= 1, got {n}")
    if not prompt_token_ids:
        raise RolloutError("generate() got no prompts")
    for i, p in enumerate(prompt_token_ids):
        if not p:
            raise RolloutError(f"prompt {i} is empty")
        if max_model_len is not None and len(p) + sampling.max_tokens > max_model_len:
            raise RolloutError(
                f"prompt {i}: {len(p)} tokens + max_tokens {sampling.max_tokens} exceed "
                f"rollout.max_model_len {max_model_len}"
            )


def stop_token_ids(tokenizer, model_config=None) -> list[int]:
    """EOS ids: the tokenizer's plus the model generation config's (what vLLM stops on too)."""
    ids: list[int] = []
    for src in (getattr(tokenizer, "eos_token_id", None), getattr(model_config, "eos_token_id", None)):
        for i in src if isinstance(src, list | tuple) else [src]:
            if i is not None and i not in ids:
                ids.append(int(i))
    if not ids:
        raise RolloutError("the tokenizer has no eos_token_id: completions could never stop")
    return ids
