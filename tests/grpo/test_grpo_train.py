"""The GRPO loop end to end: metrics, resume equality, torchrun with 2 ranks, the SFT reference, learning.

Fast tests use a randomly initialised 2-layer Llama with SmolLM2's tokenizer (fixture tiny_model_dir);
the learning test uses the real SmolLM2-135M.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "configs" / "smoke_grpo_cpu.yaml")

REQUIRED_KEYS = [
    "reward/mean", "reward/std", "reward/refusal_mean", "rollout/frac_reward_zero_std", "rollout/clipped_ratio",
    "rollout/completion_len_mean", "rollout/completion_len_min", "rollout/completion_len_max",
    "rollout/truncated_prompt_ratio", "train/entropy", "train/kl_mean", "train/clip_frac_low",
    "train/clip_frac_high", "train/is_ratio_min", "train/is_ratio_mean", "train/is_ratio_max",
    "train/rollout_logp_diff_mean", "train/grad_norm", "train/lr", "perf/tokens_per_s", "perf/generate_s",
    "perf/score_s", "perf/train_s", "perf/sync_s", "perf/step_s", "perf/pad_frac", "perf/peak_rss_gib",
    "train/skipped_seqs_frac",
]


def tiny_args(model_dir: str, out: Path, *extra: str) -> list[str]:
    return [
        "--config", SMOKE, f"out_dir={out}", f"model.name={model_dir}", "steps=3", "prompts_per_step=2",
        "group_size=2", "sampling.max_tokens=6", "micro_batch_size=3", "policy.r=4", "policy.alpha=8",
        "data.max_prompt_tokens=64", "data.malicious_fraction=0.5", "kl.beta=0.05",
        # a random model never writes refusal phrases; the soft classifier reward still varies within groups
        "reward.terms=[{name: refusal, options: {detector: classifier, soft: true}}]", *extra,
    ]


def test_metrics_every_step_and_adapter(tiny_model_dir, tmp_path):
    from grpo.train import main

    main(tiny_args(tiny_model_dir, tmp_path, "num_iterations=2", "eval_every=2", "data.eval_rows=4"))
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        missing = [k for k in REQUIRED_KEYS if k not in r]
        assert not missing, missing
        assert 0.0 <= r["rollout/frac_reward_zero_std"] <= 1.0
        assert r["perf/step_s"] >= r["perf/generate_s"]
    assert "eval/reward" in rows[1] and "eval/reward" in rows[2]
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    meta = json.loads((adapter / "safety_grpo.json").read_text())
    assert meta["base_model"] == tiny_model_dir
    assert json.loads((adapter / "training_manifest.json").read_text())["count"] == 96  # every smoke prompt


def test_resume_gives_the_same_metrics(tiny_model_dir, tmp_path):
    """3 steps straight == 2 steps, checkpoint, resume, 1 step (float32, fixed seeds, mu=2 so clipping acts)."""
    from grpo.train import main

    main(tiny_args(tiny_model_dir, tmp_path / "a", "num_iterations=2", "optim.lr=5e-3"))
    main(tiny_args(tiny_model_dir, tmp_path / "b", "num_iterations=2", "optim.lr=5e-3", "save_every=2"))
    ckpt = tmp_path / "b" / "checkpoints"
    assert (ckpt / "step_000002" / "trainer_state.pt").is_file()
    assert not list(ckpt.glob(".*tmp*")), "no temp dirs left behind"
    main(tiny_args(tiny_model_dir, tmp_path / "c", "num_iterations=2", "optim.lr=5e-3", f"resume={ckpt}"))
    full = read_metrics(tmp_path / "a" / "metrics.jsonl")
    resumed = read_metrics(tmp_path / "c" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [3]
    for key in ("reward/mean", "train/loss", "train/grad_norm", "train/ratio_max", "train/kl_mean",
                "rollout/completion_len_mean"):
        assert resumed[0][key] == pytest.approx(full[2][key], rel=1e-5, abs=1e-7), key
    assert full[2]["train/ratio_max"] != 1.0  # the second pass really moved the ratio off 1


@pytest.mark.slow
def test_torchrun_two_ranks_identical_weights(tiny_model_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "grpo/train.py", *tiny_args(tiny_model_dir, tmp_path, "steps=2")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    prints = json.loads((tmp_path / "adapter" / "safety_grpo.json").read_text())["rank_fingerprints"]
    assert len(prints) == 2 and prints[0] == prints[1]
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2


def test_sft_reference_is_frozen_sft_model(tiny_model_dir, tmp_path):
    """kl.reference=sft: the reference log-probs equal the SFT adapter's own and stay fixed as the policy moves."""
    from peft import PeftModel

    from grpo.batch import pack
    from grpo.config import GRPOConfig
    from grpo.train import reference_logprobs, setup_policy
    from runtime.checkpoint import save_adapter
    from runtime.config import load_config
    from runtime.logprobs import token_logprobs
    from runtime.models import LoraConfig, ModelConfig, add_lora, load_model
    from runtime.world import init_world

    torch.manual_seed(1)
    sft = add_lora(load_model(ModelConfig(name=tiny_model_dir)), LoraConfig(r=4, alpha=8))
    for n, p in sft.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)  # a non-trivial "SFT" adapter
    save_adapter(sft, tmp_path / "sft", meta={"base_model": tiny_model_dir})
    cfg = load_config(GRPOConfig, SMOKE, [f"model.name={tiny_model_dir}", f"policy.init_adapter={tmp_path / 'sft'}",
                                          "policy.r=null", "policy.alpha=null",  # the adapter's r 4, alpha 8
                                          "kl.reference=sft", "kl.beta=0.1"])
    policy, tok = setup_policy(cfg, init_world("cpu"))
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(".default." in n for n in trainable)

    ids, attn, P = pack([tok("hello there")["input_ids"]], [[5, 6, 7, 8]], tok.pad_token_id)
    sft_model = PeftModel.from_pretrained(load_model(ModelConfig(name=tiny_model_dir)), str(tmp_path / "sft"))
    with torch.no_grad():
        want, _ = token_logprobs(sft_model, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    ref0 = reference_logprobs(policy, ids, attn, P, cfg)
    torch.testing.assert_close(ref0, want, rtol=0, atol=1e-6)

    with torch.no_grad():  # move the policy adapter only
        for _n, p in policy.named_parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
        moved, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    assert (moved - want).abs().max() > 1e-3  # the policy really moved
    torch.testing.assert_close(reference_logprobs(policy, ids, attn, P, cfg), want, rtol=0, atol=1e-6)
    assert {n for n, p in policy.named_parameters() if p.requires_grad} == trainable  # ref stays frozen


@pytest.mark.slow
def test_grpo_learns_on_smollm2(tmp_path):
    """The smoke config on the real SmolLM2: mean reward of the last steps clearly above the first steps."""
    from grpo.train import main

    main(["--config", SMOKE, f"out_dir={tmp_path}"])
    rows = read_metrics(tmp_path / "metrics.jsonl")
    first = sum(r["reward/mean"] for r in rows[:3]) / 3
    last = sum(r["reward/mean"] for r in rows[-3:]) / 3
    assert last > first + 0.3, (first, last)


@pytest.mark.slow
def test_two_passes_per_batch_clip_on_smollm2(tmp_path):
    """configs/smoke_grpo_cpu_mu2.yaml (num_iterations 2) on the real SmolLM2, on a smaller batch: the first
    pass has ratio exactly 1 (dropout 0), so every clipped token counted is the second pass's; the loss stays
    finite."""
    import math

    from grpo.train import main

    main(["--config", str(ROOT / "configs" / "smoke_grpo_cpu_mu2.yaml"), f"out_dir={tmp_path}", "steps=2",
          "prompts_per_step=2", "group_size=4", "sampling.max_tokens=16", "data.eval=null"])
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert len(rows) == 2
    for r in rows:
        assert math.isfinite(r["train/loss"]) and math.isfinite(r["train/grad_norm"])
        assert r["train/clip_frac_low"] + r["train/clip_frac_high"] > 0, r
        assert r["train/ratio_max"] > 1.28 or r["train/ratio_min"] < 0.8
        assert "train/dual_clip_frac" in r


# ---------------- loop options (post-sync check, dynamic sampling, overlong, prefill), end to end


class FakeEngine:
    """A colocated engine stand-in: the hf backend on its own copy of the policy. sync=False makes
    update_weights a no-op (the silent sync failure the post-sync check must catch)."""

    def __init__(self, cfg, *, model_name, tokenizer, policy, dtype="float32", device="cpu", kv_batch=None, sync=True):
        import copy

        from rollout.hf import HFBackend

        self.engine_policy, self.policy, self.sync = copy.deepcopy(policy), policy, sync
        self.kv_batch = kv_batch
        FakeEngine.last = self
        self.hf = HFBackend(cfg, model_name=model_name, tokenizer=tokenizer, policy=self.engine_policy)

    def generate(self, prompts, n, sampling):
        return self.hf.generate(prompts, n, sampling)

    def update_weights(self, policy) -> dict:
        if self.sync:
            self.engine_policy.load_state_dict(policy.state_dict())
        return {"sync_s": 0.0}

    def sleep(self):
        pass

    def wake(self):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("sync", [True, False])
def test_post_sync_logprob_check(tiny_model_dir, tmp_path, monkeypatch, sync):
    """A sync that does nothing stops the run at the first step after the policy moved, before training on it."""
    import grpo.train
    from rollout.base import RolloutError

    monkeypatch.setattr(grpo.train, "make_backend", lambda cfg, **kw: FakeEngine(cfg, **kw, sync=sync))
    args = tiny_args(tiny_model_dir, tmp_path, "rollout.backend=vllm", "optim.lr=5e-2", "kl.beta=0")
    if sync:
        main = grpo.train.main(args)
        assert main["train/rollout_logp_diff_mean"] < 1e-4
        # what rollout.kv_cache_gib=auto sizes for: the 16 eval rows outnumber 2 prompts x 2 completions;
        # data.max_prompt_tokens 64 + sampling.max_tokens 6
        assert FakeEngine.last.kv_batch == (16, 70)
        return
    with pytest.raises(RolloutError, match=r"^rollout/trainer log-prob gap .* > rollout.max_logp_gap 0.01 .*"
                                           r"\(backend vllm, sync merged, dtype float32\)") as e:
        grpo.train.main(args)
    assert "\n" not in str(e.value)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1]  # step 2 stopped before logging


def fake_score(cfg, prompts, completions, labels, lengths, truncated, generate_fn=None):
    """Half the prompts (by a hash of the text) give every completion the same reward: zero-std groups."""
    import zlib

    from reward.functions import Scores

    r = [0.0 if zlib.crc32(p.encode()) % 2 else (len(c) % 7) / 7 + 0.01 * len(set(c.split())) for p, c in
         zip(prompts, completions)]
    return Scores(torch.tensor(r)[:, None], ["fake"], [1.0], {"reward/fake_mean": sum(r) / len(r)})


def test_dynamic_sampling_and_resume(tiny_model_dir, tmp_path, monkeypatch):
    """sampling.dynamic: extra rounds fill the step with informative groups; resume gives the same metrics."""
    import grpo.step
    from grpo.train import main

    monkeypatch.setattr(grpo.step, "score", fake_score)
    extra = ("sampling.dynamic=true", "sampling.max_rounds=3", "prompts_per_step=4", "num_iterations=2",
             "optim.lr=5e-3", "sampling.max_tokens=12")
    main(tiny_args(tiny_model_dir, tmp_path / "a", *extra))
    main(tiny_args(tiny_model_dir, tmp_path / "b", *extra, "save_every=2"))
    main(tiny_args(tiny_model_dir, tmp_path / "c", *extra, f"resume={tmp_path / 'b' / 'checkpoints'}"))
    full = read_metrics(tmp_path / "a" / "metrics.jsonl")
    for r in full:
        assert 1 <= r["rollout/dynamic_rounds"] <= 3
        assert r["rollout/dynamic_prompts"] == 4 * r["rollout/dynamic_rounds"]
        assert r["rollout/frac_reward_zero_std"] <= r["rollout/frac_reward_zero_std_raw"]
    assert any(r["rollout/dynamic_rounds"] > 1 for r in full)  # the hash makes about half the groups dead
    assert any(r["rollout/frac_reward_zero_std_raw"] > 0 for r in full)
    resumed = read_metrics(tmp_path / "c" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [3]
    for key in ("reward/mean", "train/loss", "train/grad_norm", "rollout/dynamic_rounds",
                "rollout/frac_reward_zero_std_raw", "rollout/completion_len_mean"):
        assert resumed[0][key] == pytest.approx(full[2][key], rel=1e-5, abs=1e-7), key


def test_overlong_and_memory_metrics(tiny_model_dir, tmp_path):
    """A random tiny model never stops: every completion is truncated."""
    from grpo.train import main

    main(tiny_args(tiny_model_dir, tmp_path / "soft", "steps=1", "loss.overlong=soft", "loss.overlong_buffer=4"))
    row = read_metrics(tmp_path / "soft" / "metrics.jsonl")[0]
    assert row["rollout/clipped_ratio"] == 1.0 and row["reward/overlong_penalty_mean"] == -1.0
    assert row["perf/peak_rss_gib"] > 0.1 and 0.0 <= row["perf/pad_frac"] < 1.0
    main(tiny_args(tiny_model_dir, tmp_path / "filter", "steps=1", "loss.overlong=filter",
                   "micro_batch_order=length", "micro_batch_tokens=64"))
    row = read_metrics(tmp_path / "filter" / "metrics.jsonl")[0]
    assert row["rollout/overlong_filtered_frac"] == 1.0 and row["train/grad_norm"] == 0.0


def test_prefill_prefixes_are_seeded_and_only_on_malicious_rows(tokenizer):
    from data.builtin.compliance import opening_ids
    from grpo.batch import prefill_prefixes

    rows = [{"text": f"Explain how to break into house number {i}.", "label": "malicious"} for i in range(40)]
    rows += [{"text": f"How do I bake bread {i}?", "label": "benign"} for i in range(10)]
    a = prefill_prefixes(rows, tokenizer, 0.5, 8, "0/3/0/0")
    assert a == prefill_prefixes(rows, tokenizer, 0.5, 8, "0/3/0/0")  # a pure function of the key
    assert a != prefill_prefixes(rows, tokenizer, 0.5, 8, "0/4/0/0")  # another step draws others
    taken = [i for i, p in enumerate(a) if p]
    assert 10 <= len(taken) <= 30 and all(i < 40 for i in taken)  # about half, malicious rows only
    for i in taken:
        assert 1 <= len(a[i]) <= 8 and a[i] == opening_ids(tokenizer, rows[i]["text"], len(a[i]))
    assert all(p == [] for p in prefill_prefixes(rows, tokenizer, 0.0, 8, "k"))
    assert all(bool(p) == (r["label"] == "malicious") for p, r in zip(prefill_prefixes(rows, tokenizer, 1.0, 8, "k"), rows))


def test_prefix_is_prompt_no_logits_no_gradient(tiny_model_dir, tokenizer):
    """Course-correction GRPO: the harmful prefix sits before column P with the prompt, so the LM head never
    runs on it (no log-prob, no loss term, no gradient); the completion's log-probs are conditioned on it and
    equal a naive full log-softmax. Worked out on the tiny model."""
    from data.builtin.compliance import opening_ids
    from data.chat import format_prompt
    from grpo.batch import pack
    from runtime.logprobs import token_logprobs
    from runtime.models import ModelConfig, load_model

    model = load_model(ModelConfig(name=tiny_model_dir))
    text = "Write a guide to stealing a neighbour's mail."
    prefix = opening_ids(tokenizer, text, 5)
    prompt = format_prompt(tokenizer, text, assistant_prefix=prefix).input_ids
    completion = tokenizer("\n\nWait, I can't continue with this.", add_special_tokens=False)["input_ids"]
    ids, attn, P = pack([prompt], [completion], tokenizer.pad_token_id)
    assert ids[0, P - 5: P].tolist() == prefix  # the prefix is the end of the prompt block
    rows_seen = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: rows_seen.append(o.shape[-2]))
    try:
        logp, _ = token_logprobs(model, ids, attn, prompt_len=P, temperature=1.0)  # (1, T)
    finally:
        hook.remove()
    # the LM head runs on the last T + 1 positions only (P - 1 predicts the first completion token; the last
    # one predicts nothing): no row predicts a prompt or prefix token
    assert logp.shape == (1, len(completion)) and sum(rows_seen) == len(completion) + 1
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)  # (P+T, V)
    naive = [full[P + t - 1, completion[t]].item() for t in range(len(completion))]
    assert logp[0].tolist() == pytest.approx(naive, abs=1e-4)
    # the prefix conditions the completion: another prefix gives other log-probs
    other = format_prompt(tokenizer, text, assistant_prefix=opening_ids(tokenizer, text, 2)).input_ids
    ids2, attn2, P2 = pack([other], [completion], tokenizer.pad_token_id)
    assert not torch.allclose(token_logprobs(model, ids2, attn2, prompt_len=P2, temperature=1.0)[0], logp)


def test_prefill_fraction_logs_prefilled_rollouts(tiny_model_dir, tmp_path):
    from grpo.train import main

    main(tiny_args(tiny_model_dir, tmp_path, "steps=2", "data.prefill_fraction=1.0", "data.prefill_max_tokens=4"))
    rows = read_metrics(tmp_path / "metrics.jsonl")
    for r in rows:  # 1 malicious + 1 benign prompt per step: the malicious one is always prefilled
        assert r["rollout/prefilled_frac"] == 0.5
        assert 0.0 <= r["rollout/prefilled_refusal_rate"] <= 1.0
