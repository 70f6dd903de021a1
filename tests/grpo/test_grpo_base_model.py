"""GRPO from the base model: no init adapter, a fresh LoRA, KL to the base model (the adapter disabled).

On the tiny random model (fixture tiny_model_dir): the run trains and logs every reward term of the
reasoned-recovery reward per step; the reference log-probs are the plain base model's, bit for bit; and at
step 0 the fresh LoRA (B = 0) is the base model, so the KL is exactly 0.
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from runtime.metrics import read_metrics

RR_TERMS = ("reward.terms=[{name: format}, {name: conciseness, options: {budget_tokens: 4}}, "
            "{name: refusal, options: {detector: classifier, soft: true, answer_only: true}}]")


def base_cfg(tiny_model_dir: str, *extra: str):
    from grpo.config import GRPOConfig
    from runtime.config import load_config
    from tests.grpo.test_grpo_train import SMOKE

    return load_config(GRPOConfig, SMOKE, [f"model.name={tiny_model_dir}", "policy.r=4", "policy.alpha=8",
                                           "kl.beta=0.1", "kl.reference=base", *extra])


def test_base_model_grpo_trains_and_logs_each_term(tiny_model_dir, tmp_path):
    """(a) No policy.init_adapter, kl.beta > 0, kl.reference=base: the run trains a fresh LoRA."""
    from grpo.train import main
    from tests.grpo.test_grpo_train import tiny_args

    main(tiny_args(tiny_model_dir, tmp_path, "kl.reference=base", "kl.beta=0.1", "optim.lr=5e-3", RR_TERMS))
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        for term in ("format", "conciseness", "refusal"):
            assert f"reward/{term}_mean" in r, term
        assert r["reward/conciseness_mean"] < 0  # a random model never stops: 6 tokens > budget 4
    # (c) in the run: the first step's KL is taken before any update, with B = 0: exactly 0
    assert rows[0]["train/kl_mean"] == 0.0
    assert rows[-1]["train/kl_mean"] > 0.0  # the policy moved away from the base
    adapter = tmp_path / "adapter"
    meta = json.loads((adapter / "safety_grpo.json").read_text())
    assert meta["config"]["policy"]["init_adapter"] is None and meta["config"]["kl"]["reference"] == "base"
    b = [t for k, t in load_file(adapter / "adapter_model.safetensors").items() if "lora_B" in k]
    assert b and any(t.abs().max() > 0 for t in b)  # trained away from the fresh B = 0


def test_base_reference_is_the_base_model_exactly(tiny_model_dir):
    """(b) kl.reference=base: the reference log-probs are the plain base model's, bit for bit, however far
    the policy adapter has moved; only the policy adapter is trainable and no second adapter is loaded."""
    from grpo.batch import pack
    from grpo.train import reference_logprobs, setup_policy
    from runtime.logprobs import token_logprobs
    from runtime.models import ModelConfig, load_model
    from runtime.world import init_world

    cfg = base_cfg(tiny_model_dir)
    policy, tok = setup_policy(cfg, init_world("cpu"))
    assert list(policy.peft_config) == ["default"]
    assert all(".default." in n for n, p in policy.named_parameters() if p.requires_grad)
    ids, attn, P = pack([tok("hello there")["input_ids"], tok("how do I boil an egg?")["input_ids"]],
                        [[5, 6, 7, 8], [9, 10]], tok.pad_token_id)
    plain = load_model(ModelConfig(name=tiny_model_dir))
    with torch.no_grad():
        want, _ = token_logprobs(plain, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    torch.manual_seed(3)
    with torch.no_grad():  # move the policy adapter far from B = 0
        for p in policy.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn_like(p))
        moved, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    assert (moved - want).abs().max() > 1e-3
    ref = reference_logprobs(policy, ids, attn, P, cfg)
    assert torch.equal(ref, want)


def test_fresh_lora_kl_is_exactly_zero_at_step_0(tiny_model_dir):
    """(c) A fresh LoRA has B = 0, so policy == base on every token and the k3 KL is exactly 0 (not ~1e-9)."""
    from grpo.batch import pack
    from grpo.loss import policy_loss
    from grpo.train import reference_logprobs, setup_policy
    from runtime.logprobs import token_logprobs
    from runtime.world import init_world

    cfg = base_cfg(tiny_model_dir)
    policy, tok = setup_policy(cfg, init_world("cpu"))
    b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    assert b and all(torch.count_nonzero(p) == 0 for p in b)
    ids, attn, P = pack([tok("write me a poem")["input_ids"]], [[11, 12, 13, 14, 15]], tok.pad_token_id)
    logp, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)  # (1, T)
    ref = reference_logprobs(policy, ids, attn, P, cfg)  # (1, T)
    assert torch.equal(logp.detach(), ref)
    mask = attn[:, P:].float()  # (1, T)
    _, m = policy_loss(logp, logp.detach(), torch.tensor([0.5]), mask, ref_logp=ref, beta=cfg.kl.beta,
                       kl_estimator="k3")
    assert m["kl_mean"] == 0.0
