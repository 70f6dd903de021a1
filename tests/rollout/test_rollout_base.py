"""Fast tests: configs, the registry, RolloutBatch checks, the hf log-prob recorder, EOS cutting and
the merged-weight computation of rollout/sync.py on tiny random models (no real model, no vLLM)."""

from __future__ import annotations

import math

import pytest
import torch

from rollout.base import (
    BACKENDS,
    RolloutBatch,
    RolloutConfig,
    RolloutError,
    SamplingConfig,
    backend_class,
    check_prompts,
    make_backend,
    stop_token_ids,
)
from rollout.hf import _SampledLogprobs, cut_at_eos
from rollout.sync import FUSED_GROUPS, hf_name, merged_linear_weight, merged_lora_weights
from rollout.vllm_backend import engine_lora_rank, kv_cache_bytes, seeded_cpu_groups
from runtime.config import ConfigError


def test_unknown_backend_lists_choices():
    with pytest.raises(ConfigError, match=r"rollout.backend must be one of \['hf', 'openai', 'vllm'\]"):
        make_backend(RolloutConfig(backend="tgi"), model_name="smollm2-135m", tokenizer=None)


def test_registry_imports_lazily():
    import subprocess
    import sys

    assert set(BACKENDS) == {"hf", "vllm", "openai"}
    assert backend_class("hf").__name__ == "HFBackend"
    assert backend_class("openai").__name__ == "OpenAIBackend"
    # Importing every backend module (not using it) must not import vLLM, nor set its env vars.
    code = ("import os, sys, rollout, rollout.hf, rollout.openai_backend, rollout.vllm_backend; "
            "print('vllm' in sys.modules, 'VLLM_ENABLE_V1_MULTIPROCESSING' in os.environ)")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("VLLM_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("cfg", "msg"),
    [
        (RolloutConfig(sync="lora"), "rollout.sync"),
        (RolloutConfig(kv_cache_gib=0), "kv_cache_gib"),
        (RolloutConfig(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
        (RolloutConfig(hf_batch_size=0), "hf_batch_size"),
        (RolloutConfig(backend="openai"), "base_url"),
    ],
)
def test_bad_rollout_config(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        cfg.validate()


@pytest.mark.parametrize(
    ("s", "msg"),
    [
        (SamplingConfig(temperature=-0.1), "temperature"),
        (SamplingConfig(top_p=0.0), "top_p"),
        (SamplingConfig(top_k=-1), "top_k"),
        (SamplingConfig(max_tokens=0), "max_tokens"),
    ],
)
def test_bad_sampling_config(s, msg):
    with pytest.raises(ConfigError, match=msg):
        s.validate()


def test_check_prompts_names_the_bad_prompt():
    s = SamplingConfig(max_tokens=10)
    check_prompts([[1, 2], [3]], 2, s, max_model_len=12)  # 2 + 10 <= 12: fine
    with pytest.raises(RolloutError, match="prompt 1: 3 tokens"):
        check_prompts([[1, 2], [3, 4, 5]], 2, s, max_model_len=12)
    with pytest.raises(RolloutError, match="prompt 0 is empty"):
        check_prompts([[]], 1, s)
    with pytest.raises(RolloutError, match="n .* must be >= 1"):
        check_prompts([[1]], 0, s)


def test_rollout_batch_checks_lengths():
    ok = RolloutBatch([[1, 2], [3]], [[-0.1, -0.2], [-0.3]], ["stop", "length"], [False, True], [0, 0])
    assert ok.num_tokens == 3 and ok.lengths() == [2, 1] and len(ok) == 2
    with pytest.raises(RolloutError, match="completion 1: 1 tokens but 2 log-probs"):
        RolloutBatch([[1, 2], [3]], [[-0.1, -0.2], [-0.3, -0.4]], ["stop", "stop"], [False, False], [0, 0])
    with pytest.raises(RolloutError, match="disagree"):
        RolloutBatch([[1]], [[-0.1]], ["stop", "stop"], [False], [0])


def test_stop_token_ids_union():
    class Tok:
        eos_token_id = 2

    class Gen:
        eos_token_id = [2, 7]

    assert stop_token_ids(Tok(), Gen()) == [2, 7]
    assert stop_token_ids(Tok()) == [2]


def test_cut_at_eos():
    # EOS kept, everything after it dropped.
    assert cut_at_eos([5, 2, 7, 2], [-1.0, -2.0, -3.0, -4.0], {2}, 4) == ([5, 2], [-1.0, -2.0], "stop", False)
    # No EOS within max_tokens: truncated.
    assert cut_at_eos([5, 6], [-1.0, -2.0], {2}, 2) == ([5, 6], [-1.0, -2.0], "length", True)


def test_sampled_logprobs_recorder_by_hand():
    from transformers.generation.logits_process import TemperatureLogitsWarper

    rec = _SampledLogprobs([TemperatureLogitsWarper(0.5)])
    # step 1: logits [0, 0, ln2/2] / 0.5 = [0, 0, ln2] -> p = [1/4, 1/4, 1/2]; token 2 is drawn.
    s1 = torch.tensor([[0.0, 0.0, math.log(2) / 2]])
    out1 = rec(torch.tensor([[9]]), s1)
    assert torch.allclose(out1, torch.tensor([[0.0, 0.0, math.log(2)]]))  # the warped scores are returned
    # step 2: equal logits -> p = 1/3 each; token 1 is drawn (seen only by finish()).
    rec(torch.tensor([[9, 2]]), torch.zeros(1, 3))
    lp = rec.finish(torch.tensor([1]))
    assert torch.allclose(lp, torch.tensor([[math.log(0.5), math.log(1 / 3)]]))


def test_engine_lora_rank_slots():
    assert [engine_lora_rank(r) for r in (1, 2, 8, 9, 16, 17)] == [1, 8, 8, 16, 16, 32]
    with pytest.raises(RolloutError, match="exceeds"):
        engine_lora_rank(1024)


def test_hf_name():
    assert hf_name("base_model.model.model.layers.0.self_attn.q_proj") == "model.layers.0.self_attn.q_proj"


def _tiny_policy(targets: list[str], seed: int = 0):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    policy = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    return policy


def test_merged_weights_match_peft_merge_and_leave_policy_untouched():
    policy = _tiny_policy(["q_proj", "v_proj", "down_proj"])
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    got = dict(merged_lora_weights(policy))
    # Naive reference: PEFT merge, COPY (unmerge restores in place), unmerge.
    policy.merge_adapter()
    ref = {hf_name(k).replace(".base_layer", ""): v.clone() for k, v in policy.state_dict().items()
           if k.endswith(".weight") and "lora_" not in k}
    policy.unmerge_adapter()
    for k, v in policy.state_dict().items():
        assert torch.allclose(v, before[k], atol=1e-6), f"{k} changed by the sync"
    # q/v/down carry LoRA; k_proj rides along (fused qkv); gate/up stay out (no LoRA on them).
    expected = {f"model.layers.{i}.{m}.weight" for i in range(2)
                for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj")}
    assert set(got) == expected
    for name, w in got.items():
        assert torch.allclose(w, ref[name], atol=1e-6), name
    # The delta is real: merged q_proj differs from the base weight.
    base_q = before["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"]
    assert (got["model.layers.0.self_attn.q_proj.weight"] - base_q).abs().max() > 1e-3


def test_fused_groups_are_complete():
    policy = _tiny_policy(["gate_proj"])
    names = {n for n, _ in merged_lora_weights(policy)}
    assert names == {f"model.layers.{i}.mlp.{m}.weight" for i in range(2) for m in ("gate_proj", "up_proj")}
    assert ("gate_proj", "up_proj") in FUSED_GROUPS


def test_merged_weights_stream_one_tensor_at_a_time():
    """A generator: each merged tensor is computed when asked for, and once the consumer drops it nothing keeps
    it alive (a list would hold the whole model's merged weights until the sync ends). The values are those of
    W + scaling * B @ A at the time each is taken, a fresh tensor, never a view of the policy's weights; and
    grad mode is untouched while the generator is suspended."""
    import inspect
    import weakref

    policy = _tiny_policy(["q_proj", "v_proj"])
    it = merged_lora_weights(policy)
    assert inspect.isgenerator(it)
    name, w = next(it)
    assert name == "model.layers.0.self_attn.q_proj.weight" and not w.requires_grad
    assert torch.is_grad_enabled()  # no_grad covers the generator's own steps only
    q = policy.base_model.model.model.layers[0].self_attn.q_proj
    assert w.data_ptr() != q.base_layer.weight.data_ptr()
    gone = weakref.ref(w)
    del w
    assert gone() is None, "the generator still references the tensor it yielded"
    assert len(list(it)) == 2 * 3 - 1  # the rest: q, k (fused with q and v), v of 2 layers


def test_merged_sync_rejects_a_merged_policy():
    policy = _tiny_policy(["q_proj"])
    policy.merge_adapter()
    with pytest.raises(RolloutError, match="merged into its base"):
        merged_lora_weights(policy)


def test_qlora_merge_dequantizes_and_stays_float32():
    import bitsandbytes as bnb
    from bitsandbytes.nn import Params4bit
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    w = torch.randn(16, 64)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = bnb.nn.Linear4bit(64, 16, bias=False, quant_type="nf4", compute_dtype=torch.float32)
            self.proj.weight = Params4bit(w.clone(), requires_grad=False, quant_type="nf4")._quantize("cpu")

        def forward(self, x):
            return self.proj(x)

    policy = get_peft_model(Net(), LoraConfig(r=4, lora_alpha=8, target_modules=["proj"]))
    mod = policy.base_model.model.proj
    with torch.no_grad():
        mod.lora_B["default"].weight.normal_(0, 0.1)
    merged = merged_linear_weight(mod, ["default"])  # (16, 64)
    assert merged.dtype == torch.float32
    deq = bnb.functional.dequantize_4bit(mod.base_layer.weight.data, mod.base_layer.weight.quant_state).float()
    delta = mod.lora_B["default"].weight @ mod.lora_A["default"].weight * mod.scaling["default"]
    assert torch.allclose(merged, deq + delta, atol=1e-6)
    # The merged float32 weight reproduces the QLoRA layer's own forward (nothing re-rounded to 4 bits).
    x = torch.randn(3, 64)
    with torch.no_grad():
        assert torch.allclose(x @ merged.T, policy(x), atol=1e-4)


def test_kv_cache_bytes_by_hand():
    from types import SimpleNamespace

    smol = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)
    per_token = 2 * 30 * 3 * 64 * 4  # K and V, layers, KV heads, head dim 576 / 9, float32
    # the demo's GRPO call: 32 sequences of <= 96 + 40 tokens -> 2 blocks each; max_model_len 1024 -> 8; + null block
    assert kv_cache_bytes(smol, "float32", 32, 136, max_model_len=1024, block_size=128) == 65 * 128 * per_token
    assert kv_cache_bytes(smol, "bfloat16", 32, 136, max_model_len=1024, block_size=128) == 65 * 128 * per_token // 2
    # one sequence: the max_model_len floor rules (8 blocks), then the null block
    assert kv_cache_bytes(smol, "float32", 1, 10, max_model_len=1024, block_size=128) == 9 * 128 * per_token
    # no num_key_value_heads (multi-head attention) and an explicit head_dim
    mha = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, hidden_size=64, head_dim=32)
    assert kv_cache_bytes(mha, "float16", 3, 17, max_model_len=16, block_size=16) == (3 * 2 + 1) * 16 * (2 * 2 * 4 * 32 * 2)


def test_kv_cache_auto_needs_a_batch_shape():
    from transformers import AutoTokenizer

    from runtime.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    cfg = RolloutConfig(backend="vllm", kv_cache_gib="auto")
    with pytest.raises(RolloutError, match="kv_cache_gib=auto: the caller gave no batch shape"):
        make_backend(cfg, model_name="smollm2-135m", tokenizer=tok)


def test_kv_cache_gib_accepts_auto_or_a_positive_number():
    from runtime.config import build

    assert build(RolloutConfig, {"kv_cache_gib": "auto"}).kv_cache_gib == "auto"
    assert build(RolloutConfig, {"kv_cache_gib": 0.5}).kv_cache_gib == 0.5
    for bad in ("big", 0):
        with pytest.raises(ConfigError, match="kv_cache_gib"):
            build(RolloutConfig, {"kv_cache_gib": bad})


def test_seeded_cpu_groups_by_hand():
    """Groups whose prompt tokens (n children each) fit the step budget and sequence cap, in call order."""
    # a call that fits: one group, every prompt whole
    assert seeded_cpu_groups([100, 200], 4, 4096, 256) == [[(0, 0, 4), (1, 0, 4)]]
    # 400 tokens x 4 children = 1600 a prompt: two prompts fill 3200, the third would make 4800 > 4096
    assert seeded_cpu_groups([400, 400, 400, 400, 400], 4, 4096, 256) == [
        [(0, 0, 4), (1, 0, 4)], [(2, 0, 4), (3, 0, 4)], [(4, 0, 4)]]
    # 600 tokens x 8 = 4800 > 4096: child by child, 6 x 600 = 3600 a group; the short prompt joins the last
    assert seeded_cpu_groups([600, 50], 8, 4096, 256) == [
        [(0, j, 1) for j in range(6)], [(0, 6, 1), (0, 7, 1), (1, 0, 8)]]
    # the sequence cap: 3 children a prompt, at most 4 sequences a step
    assert seeded_cpu_groups([10, 10, 10], 3, 4096, 4) == [[(0, 0, 3)], [(1, 0, 3)], [(2, 0, 3)]]
    assert seeded_cpu_groups([10], 5, 4096, 4) == [[(0, j, 1) for j in range(4)], [(0, 4, 1)]]
