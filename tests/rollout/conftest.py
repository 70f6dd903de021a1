"""Fixtures for the rollout tests: a LoRA policy whose adapter changes the model, chat prompts, and
the trainer's log-prob recomputation (runtime.logprobs.token_logprobs) over a RolloutBatch."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

TEMPERATURE = 0.7
"""!= 1 so a backend that returns raw (unscaled) log-probs fails the parity checks."""


def randomize_lora_b(policy, seed: int, std: float = 0.02) -> None:
    """LoRA B starts at 0 (adapter = identity); small random values make the adapter change the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.fixture(scope="module")
def lora_policy(smollm2_path):
    from runtime.models import LoraConfig, ModelConfig, load_policy

    torch.manual_seed(0)
    policy, _ = load_policy(ModelConfig(name="smollm2-135m"), LoraConfig(r=8, alpha=16, dropout=0.0))
    randomize_lora_b(policy, seed=1)
    return policy


@pytest.fixture(scope="module")
def chat_prompts(tokenizer) -> list[list[int]]:
    from data.chat import format_prompt

    texts = ["Hi! Who are you?", "Write one sentence about the sea.", "How do I pick a lock?"]
    return [format_prompt(tokenizer, t).input_ids for t in texts]


def recompute_logprobs(policy, prompts: list[list[int]], batch, pad_id: int, temperature: float) -> torch.Tensor:
    """Trainer-side log-probs of the batch's own tokens -> (N, T_c), 0 on padding."""
    from runtime.logprobs import token_logprobs

    P = max(len(p) for p in prompts)
    T = max(1, max(batch.lengths()))
    N = len(batch)
    ids = torch.full((N, P + T), pad_id, dtype=torch.long)  # (N, P + T)
    mask = torch.zeros((N, P + T), dtype=torch.long)  # (N, P + T)
    for i, (c, pi) in enumerate(zip(batch.completion_ids, batch.prompt_index)):
        p = prompts[pi]
        ids[i, P - len(p): P] = torch.tensor(p)
        mask[i, P - len(p): P] = 1
        ids[i, P: P + len(c)] = torch.tensor(c, dtype=torch.long)
        mask[i, P: P + len(c)] = 1
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        logp, _ = token_logprobs(policy, ids, mask, prompt_len=P, temperature=temperature)  # (N, T)
    policy.train(was_training)
    return logp


def logprob_diffs(policy, prompts, batch, pad_id: int, temperature: float = TEMPERATURE) -> torch.Tensor:
    """|rollout log-prob - trainer log-prob| of every completion token, flat."""
    ref = recompute_logprobs(policy, prompts, batch, pad_id, temperature)  # (N, T)
    diffs = [abs(ref[i, j].item() - lp) for i, row in enumerate(batch.logprobs) for j, lp in enumerate(row)]
    assert diffs, "the batch has no completion tokens"
    return torch.tensor(diffs)


@pytest.fixture(scope="module")
def diffs_fn():
    return logprob_diffs


@pytest.fixture(scope="module")
def lora_b_randomizer():
    return randomize_lora_b
