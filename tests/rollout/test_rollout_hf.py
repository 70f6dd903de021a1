"""hf backend on the real SmolLM2 + LoRA: log-prob parity with the trainer's recomputation, grouping,
EOS handling, seeding, greedy decoding, and the policy's train/eval mode restored."""

from __future__ import annotations

import pytest
import torch

from rollout.base import RolloutConfig, RolloutError, SamplingConfig, make_backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_backend(lora_policy, tokenizer):
    return make_backend(RolloutConfig(backend="hf", hf_batch_size=4), model_name="smollm2-135m",
                        tokenizer=tokenizer, policy=lora_policy)


def test_hf_needs_a_policy(tokenizer):
    with pytest.raises(RolloutError, match="policy=model"):
        make_backend(RolloutConfig(backend="hf"), model_name="smollm2-135m", tokenizer=tokenizer)


def test_hf_logprob_parity_and_layout(hf_backend, lora_policy, chat_prompts, tokenizer, diffs_fn):
    lora_policy.train()
    s = SamplingConfig(temperature=0.7, max_tokens=12, seed=5)
    # hf_batch_size 4 with n=2: two prompts per generate call, so 3 prompts take two calls.
    batch = hf_backend.generate(chat_prompts, 2, s)
    assert lora_policy.training, "generate() must restore train mode"
    assert batch.prompt_index == [0, 0, 1, 1, 2, 2]
    eos = tokenizer.eos_token_id
    for c, reason, trunc in zip(batch.completion_ids, batch.finish_reason, batch.truncated):
        assert 1 <= len(c) <= 12
        assert eos not in c[:-1], "nothing may follow EOS"
        assert (reason == "stop") == (c[-1] == eos) and trunc == (reason == "length")
        assert not trunc or len(c) == 12
    d = diffs_fn(lora_policy, chat_prompts, batch, tokenizer.pad_token_id)
    assert d.max() < 1e-4 and d.mean() < 1e-5, (d.max(), d.mean())
    # At temperature 1 the same tokens score differently: the log-probs really are temperature-scaled.
    d1 = diffs_fn(lora_policy, chat_prompts, batch, tokenizer.pad_token_id, temperature=1.0)
    assert d1.max() > 1e-2
    # Seeded: the same call gives the same samples, and the global RNG is left alone.
    state = torch.get_rng_state()
    again = hf_backend.generate(chat_prompts, 2, s)
    assert torch.equal(state, torch.get_rng_state())
    assert again.completion_ids == batch.completion_ids


def test_hf_greedy_is_argmax(hf_backend, lora_policy, chat_prompts, tokenizer, diffs_fn):
    lora_policy.eval()
    batch = hf_backend.generate(chat_prompts[:1], 2, SamplingConfig(temperature=0.0, max_tokens=6))
    assert not lora_policy.training
    assert batch.completion_ids[0] == batch.completion_ids[1]
    # Greedy log-probs are those of the unscaled logits, and each token is the argmax.
    d = diffs_fn(lora_policy, chat_prompts[:1], batch, tokenizer.pad_token_id, temperature=1.0)
    assert d.max() < 1e-4
    p = chat_prompts[0]
    c = batch.completion_ids[0]
    with torch.no_grad():
        logits = lora_policy(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1: -1]  # (T, V)
    assert logits.argmax(-1).tolist() == c
    lora_policy.train()
