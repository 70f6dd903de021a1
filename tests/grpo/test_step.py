"""grpo.step.train_on_batch and its options on the tiny model: the zero-advantage skip gives the full
gradient, overlong filtering equals dropping the rows, length-ordered micro-batches pad less and give
the same gradient; micro-batch planning, the overlong penalty and dynamic-sampling helpers by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grpo.advantages import overlong_penalty
from grpo.batch import PromptSampler, plan_micro_batches, select_groups
from grpo.config import GRPOConfig
from grpo.loss import aggregation_count, policy_loss
from grpo.step import check_sync, max_logp_gap, train_on_batch
from rollout.base import RolloutBatch, RolloutError
from runtime.config import ConfigError, load_config
from runtime.world import init_world

SMOKE = str(Path(__file__).resolve().parents[2] / "configs" / "smoke_grpo_cpu.yaml")
AGGS = ["token_mean", "seq_mean_token_mean", "dr_grpo", "global_token"]

# 3 prompts of different lengths, G = 2: six completions of 1..5 tokens (ids inside the vocabulary).
PROMPTS = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
COMPLETIONS = [[11, 12, 13], [14, 15], [16], [17, 18, 19, 20], [21, 22], [23, 24, 25, 26, 27]]
ADV = torch.tensor([0.7, -0.7, 0.0, 0.0, 1.0, -1.0])  # group 1 has equal rewards


def batch(completions=COMPLETIONS, truncated=None, index=(0, 0, 1, 1, 2, 2)) -> RolloutBatch:
    g = torch.Generator().manual_seed(3)
    logps = [(-1.0 - 0.1 * torch.rand(len(c), generator=g)).tolist() for c in completions]
    truncated = truncated or [False] * len(completions)
    return RolloutBatch([list(c) for c in completions], logps, ["length" if t else "stop" for t in truncated],
                        list(truncated), list(index))


class NoStep:
    """An optimizer that keeps the gradient in p.grad and never moves the weights."""

    def __init__(self, params):
        self.params = params

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def step(self):
        pass


class NoSchedule:
    def step(self):
        pass

    def get_last_lr(self):
        return [0.0]


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from runtime.models import LoraConfig, ModelConfig, add_lora, load_model

    torch.manual_seed(0)
    model = add_lora(load_model(ModelConfig(name=tiny_model_dir)), LoraConfig(r=4, alpha=8))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)  # LoRA A then gets a gradient too
    return model


def config(tiny_model_dir, *overrides: str) -> GRPOConfig:
    return load_config(GRPOConfig, SMOKE, [f"model.name={tiny_model_dir}", "kl.beta=0", "optim.max_grad_norm=0",
                                           "group_size=2", *overrides])


def grads(policy, cfg, rollout, adv=ADV, prompts=PROMPTS):
    params = [p for p in policy.parameters() if p.requires_grad]
    metrics, perf = train_on_batch(policy, NoStep(params), NoSchedule(), params, prompts, rollout, adv, 0, cfg,
                                   init_world("cpu"))
    return [p.grad.clone() for p in params], metrics, perf


def assert_same_grads(a, b, exact=False):
    assert len(a) == len(b)
    assert any(x.abs().max() > 0 for x in a), "the reference gradient is all zero: the test shows nothing"
    for x, y in zip(a, b):
        if exact:
            assert torch.equal(x, y)
        else:
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ 1. zero-advantage skip


@pytest.mark.parametrize("agg", AGGS)
def test_policy_loss_agg_count_keeps_the_full_denominator(agg):
    """Dropping zero-advantage rows and passing the full micro-batch's count gives the same loss."""
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]])  # lengths 3, 2, 1, 4
    logp = -torch.rand(4, 4)
    adv = torch.tensor([0.5, 0.0, 0.0, -1.0])
    kw = dict(agg=agg, max_tokens=4, num_global_tokens=10)
    full, _ = policy_loss(logp, logp, adv, mask, **kw)
    keep = [0, 3]
    count = aggregation_count([3, 2, 1, 4], agg)
    # token_mean: 10 tokens; seq mean: 4 non-empty rows; dr_grpo: 4 rows (x max_tokens); global: ignored
    assert count == {"token_mean": 10, "seq_mean_token_mean": 4, "dr_grpo": 4, "global_token": 4}[agg]
    cut, _ = policy_loss(logp[keep], logp[keep], adv[keep], mask[keep], agg_count=count, **kw)
    torch.testing.assert_close(cut, full, rtol=0, atol=1e-7)
    if agg != "global_token":  # without the count the cut batch divides by less: a different loss
        own, _ = policy_loss(logp[keep], logp[keep], adv[keep], mask[keep], **kw)
        assert not torch.allclose(own, full)


@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("mbs", [4, 2])  # 4: rows 2-3 leave a micro-batch; 2: a whole micro-batch is skipped
def test_skip_zero_advantage_gives_the_full_gradient(policy, tiny_model_dir, agg, mbs):
    full, m_full, _ = grads(policy, config(tiny_model_dir, f"loss.agg={agg}", f"micro_batch_size={mbs}"), batch())
    cfg = config(tiny_model_dir, f"loss.agg={agg}", f"micro_batch_size={mbs}", "loss.skip_zero_advantage=true")
    skipped, m_skip, _ = grads(policy, cfg, batch())
    assert m_full["skipped_seqs_frac"] == 0.0 and m_skip["skipped_seqs_frac"] == pytest.approx(2 / 6)
    assert_same_grads(full, skipped)
    print(f"\nskip {agg} mbs={mbs}: bit-identical gradient: {all(torch.equal(x, y) for x, y in zip(full, skipped))}")
    # the logged loss is the step's objective, which the skip leaves as it is (skipped rows' loss is exactly 0)
    assert m_skip["loss"] == pytest.approx(m_full["loss"], rel=1e-5, abs=1e-7)


def test_skip_is_off_with_kl_unless_asked(policy, tiny_model_dir):
    """kl.beta > 0: zero-advantage rows still carry a KL gradient, so the skip needs the explicit option."""
    base = ("kl.beta=0.1", "loss.agg=global_token", "micro_batch_size=4")
    full, _, _ = grads(policy, config(tiny_model_dir, *base), batch())
    on, m_on, _ = grads(policy, config(tiny_model_dir, *base, "loss.skip_zero_advantage=true"), batch())
    assert m_on["skipped_seqs_frac"] == 0.0
    assert_same_grads(full, on, exact=True)
    cfg = config(tiny_model_dir, *base, "loss.skip_zero_advantage=true", "loss.skip_zero_advantage_with_kl=true")
    dropped, m_drop, _ = grads(policy, cfg, batch())
    assert m_drop["skipped_seqs_frac"] == pytest.approx(2 / 6)
    assert max((a - b).abs().max() for a, b in zip(full, dropped)) > 1e-6  # their KL term is gone
    with pytest.raises(ConfigError, match="skip_zero_advantage_with_kl"):
        config(tiny_model_dir, "loss.skip_zero_advantage_with_kl=true")


def test_kl_sample_keeps_the_kl_gradient_in_expectation(policy, tiny_model_dir):
    """loss.zero_advantage_kl_sample=q: share 1 trains every zero-advantage row (the full gradient, weight 1);
    share 0.5 equals, by hand, the full batch with those rows' KL weighted 2 where sampled and 0 where not;
    the per-step sample is a pure function of (seed, step)."""
    from grpo.step import kl_sample

    base = ("kl.beta=0.5", "loss.agg=global_token", "micro_batch_size=4", "loss.skip_zero_advantage=true",
            "loss.skip_zero_advantage_with_kl=true")
    full, _, _ = grads(policy, config(tiny_model_dir, "kl.beta=0.5", "loss.agg=global_token", "micro_batch_size=4"),
                       batch())
    every, m1, _ = grads(policy, config(tiny_model_dir, *base, "loss.zero_advantage_kl_sample=1.0"), batch())
    assert m1["skipped_seqs_frac"] == 0.0 and m1["kl_sampled_seqs_frac"] == pytest.approx(2 / 6)
    assert_same_grads(full, every)

    zero = [float(a) == 0.0 for a in ADV]
    cfg = config(tiny_model_dir, *base, "loss.zero_advantage_kl_sample=0.5")
    steps = [s for s in range(40) if sum(kl_sample(zero, 0.5, cfg.seed * 1_000_003, s)) == 1][:1]
    assert steps, "no step samples exactly one of the two zero rows"
    picked = kl_sample(zero, 0.5, cfg.seed * 1_000_003, steps[0])
    assert picked == kl_sample(zero, 0.5, cfg.seed * 1_000_003, steps[0])  # a pure function of (seed, step)
    params = [p for p in policy.parameters() if p.requires_grad]
    train_on_batch(policy, NoStep(params), NoSchedule(), params, PROMPTS, batch(), ADV, 0, cfg, init_world("cpu"),
                   step=steps[0])
    half = [p.grad.clone() for p in params]
    # by hand: one pass over all six rows, KL weight 2 on the sampled zero row, 0 on the other
    from grpo.batch import pack
    from grpo.step import reference_logprobs, token_logprobs

    rb = batch()
    w = torch.tensor([2.0 if k else (0.0 if z else 1.0) for z, k in zip(zero, picked)])
    ids, attn, P = pack([PROMPTS[i] for i in rb.prompt_index], rb.completion_ids, 0)
    for p in params:
        p.grad = None
    with torch.no_grad():
        ref_logp, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    ref = reference_logprobs(policy, ids, attn, P, cfg)
    logp, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    mask = attn[:, P:].float()
    roll = torch.nn.utils.rnn.pad_sequence([torch.tensor(x) for x in rb.logprobs], batch_first=True)
    loss, _ = policy_loss(logp, ref_logp, ADV, mask, ref_logp=ref, beta=0.5, kl_estimator=cfg.kl.estimator,
                          rollout_logp=roll if cfg.loss.is_correction else None, is_cap=cfg.loss.is_cap,
                          eps_low=cfg.loss.eps_low, eps_high=cfg.loss.eps_high, dual_clip=cfg.loss.dual_clip,
                          agg="global_token", num_global_tokens=float(mask.sum()), kl_weight=w)
    loss.backward()
    assert_same_grads([p.grad.clone() for p in params], half)
    assert max((a - b).abs().max() for a, b in zip(full, half)) > 1e-6  # one draw is not the full gradient
    with pytest.raises(ConfigError, match="zero_advantage_kl_sample"):
        config(tiny_model_dir, "kl.beta=0.5", "loss.zero_advantage_kl_sample=0.5")


def test_all_rows_skipped_gives_zero_gradients_not_none(policy, tiny_model_dir):
    cfg = config(tiny_model_dir, "loss.skip_zero_advantage=true")
    g, m, perf = grads(policy, cfg, batch(), adv=torch.zeros(6))
    assert m["skipped_seqs_frac"] == 1.0 and all(torch.equal(x, torch.zeros_like(x)) for x in g)
    assert perf["perf/pad_frac"] == 0.0


# ------------------------------------------------------------------ 2. overlong


def test_overlong_penalty_by_hand():
    # max_tokens 10, buffer 4: free up to 6 tokens, then -1/4 per token, -1 at 10
    pen = overlong_penalty([3, 6, 7, 8, 10], max_tokens=10, buffer=4)
    torch.testing.assert_close(pen, torch.tensor([0.0, 0.0, -0.25, -0.5, -1.0]))
    torch.testing.assert_close(overlong_penalty([9], max_tokens=10, buffer=4, penalty=0.5), torch.tensor([-0.375]))
    with pytest.raises(ValueError):
        overlong_penalty([1], max_tokens=10, buffer=11)


def test_overlong_config_checks(tiny_model_dir):
    cfg = config(tiny_model_dir, "loss.overlong=soft", "loss.overlong_buffer=8", "sampling.max_tokens=32")
    assert cfg.loss.overlong == "soft"
    with pytest.raises(ConfigError, match="overlong_buffer"):
        config(tiny_model_dir, "loss.overlong=soft", "loss.overlong_buffer=40", "sampling.max_tokens=32")
    with pytest.raises(ConfigError, match="loss.overlong"):
        config(tiny_model_dir, "loss.overlong=mask")


@pytest.mark.parametrize("agg", AGGS)
def test_overlong_filter_equals_dropping_the_truncated_rows(policy, tiny_model_dir, agg):
    """Rows 1 and 5 truncated: filtering them == training on the other four rows alone."""
    trunc = [False, True, False, False, False, True]
    cfg = config(tiny_model_dir, f"loss.agg={agg}", "micro_batch_size=6", "loss.overlong=filter")
    filtered, _, perf = grads(policy, cfg, batch(truncated=trunc))
    assert perf["rollout/overlong_filtered_frac"] == pytest.approx(2 / 6)
    keep = [0, 2, 3, 4]
    ref_batch = batch()
    ref_batch = RolloutBatch(*[[getattr(ref_batch, f)[i] for i in keep] for f in
                               ("completion_ids", "logprobs", "finish_reason", "truncated", "prompt_index")])
    ref, _, _ = grads(policy, config(tiny_model_dir, f"loss.agg={agg}", "micro_batch_size=6"), ref_batch,
                      adv=ADV[keep])
    assert_same_grads(ref, filtered)


# ------------------------------------------------------------------ 3. micro-batch order / token budget


def test_plan_micro_batches_by_hand():
    P, C = [5, 2, 3, 5, 2, 3], [3, 2, 1, 4, 2, 5]  # totals 8 4 4 9 4 8
    assert plan_micro_batches(P, C, 4) == [[0, 1, 2, 3], [4, 5]]
    # grids n x (max P + max C) at 2 rows: rollout [0,1] [2,3] [4,5] 16 + 18 + 16 = 50;
    # by total [1,2] [4,0] [5,3] 10 + 16 + 20 = 46; by (prompt, completion) [1,4] [2,5] [0,3] 8 + 16 + 18 = 42;
    # by (completion, prompt) [2,1] [4,0] [3,5] 10 + 16 + 20 = 46 -> the (prompt, completion) plan
    assert plan_micro_batches(P, C, 2, order="length") == [[1, 4], [2, 5], [0, 3]]
    # budget 16, rollout order: [0,1] 2 x 8 = 16; + row 2 -> 3 x 8 > 16; [2] + row 3 -> 2 x 9 > 16; [3];
    # [4] + row 5 -> 2 x (3 + 5) = 16
    assert plan_micro_batches(P, C, 99, token_budget=16) == [[0, 1], [2], [3], [4, 5]]
    assert plan_micro_batches(P, C, 99, token_budget=1) == [[i] for i in range(6)]  # one row each at least
    # one prompt per group (rollout order, G = 2) already pads no prompt: "length" never does worse
    P2, C2 = [4, 4, 9, 9], [8, 8, 1, 1]
    assert plan_micro_batches(P2, C2, 2, order="length") == [[0, 1], [2, 3]]


def test_length_order_same_gradient_less_padding(policy, tiny_model_dir):
    # rows' prompts 5, 5, 2, 2, 3, 3 tokens; completions 1, 8, 8, 1, 1, 8 tokens
    comps = [[11], list(range(12, 20)), list(range(20, 28)), [28], [29], list(range(30, 38))]
    rollout = batch(completions=comps)
    a, _, perf_a = grads(policy, config(tiny_model_dir, "micro_batch_size=2"), rollout)
    b, _, perf_b = grads(policy, config(tiny_model_dir, "micro_batch_size=2", "micro_batch_order=length"), rollout)
    assert_same_grads(a, b)
    # rollout order: rows (0,1) 2 x (5 + 8) = 26 cells, 19 real; (2,3) 2 x (2 + 8) = 20, 13 real;
    # (4,5) 2 x (3 + 8) = 22, 15 real -> 1 - 47 / 68.  length order (by total, 6 13 10 3 4 11; the
    # (prompt, completion) order gives 68, (completion, prompt) 60 too):
    # (3,4) 2 x (3 + 1) = 8, 7 real; (0,2) 2 x (5 + 8) = 26, 16 real; (5,1) 26, 24 real -> 1 - 47 / 60
    assert perf_a["perf/pad_frac"] == pytest.approx(1 - 47 / 68)
    assert perf_b["perf/pad_frac"] == pytest.approx(1 - 47 / 60)
    c, _, perf_c = grads(policy, config(tiny_model_dir, "micro_batch_tokens=20", "micro_batch_order=length"),
                         rollout)
    assert_same_grads(a, c)


# ------------------------------------------------------------------ 4. sync check pieces


def test_max_logp_gap_in_force(tiny_model_dir):
    assert max_logp_gap(config(tiny_model_dir)) is None  # hf: nothing to sync
    assert max_logp_gap(config(tiny_model_dir, "rollout.backend=vllm")) == 1e-2
    assert max_logp_gap(config(tiny_model_dir, "rollout.backend=vllm", "model.dtype=bfloat16")) == pytest.approx(0.1)
    assert max_logp_gap(config(tiny_model_dir, "rollout.backend=vllm", "rollout.max_logp_gap=null")) is None
    cfg = config(tiny_model_dir, "rollout.backend=vllm", "rollout.sync=adapter")
    check_sync(5e-3, 1e-2, cfg, init_world("cpu"))
    with pytest.raises(RolloutError, match=r"gap 0\.05 > rollout.max_logp_gap 0\.01 .*backend vllm, sync adapter"):
        check_sync(0.05, 1e-2, cfg, init_world("cpu"))


# ------------------------------------------------------------------ 5. dynamic-sampling helpers


def test_prompt_sampler_rounds_are_pure_and_round_0_unchanged():
    rows = [{"text": f"m{i}", "label": "malicious"} for i in range(7)] + \
           [{"text": f"b{i}", "label": "benign"} for i in range(5)]
    world = init_world("cpu")
    plain = PromptSampler(rows, 4, 0.5, seed=3, world=world)
    dyn = PromptSampler(rows, 4, 0.5, seed=3, world=world, extra_rounds=2)
    for step in range(6):
        assert dyn.sample(step, 0) == plain.sample(step)
    assert dyn.sample(4, 2) == PromptSampler(rows, 4, 0.5, seed=3, world=world, extra_rounds=2).sample(4, 2)
    extra = [[r["text"] for r in dyn.sample(s, k)] for s in range(3) for k in (1, 2)]
    assert len({tuple(e) for e in extra}) > 1
    with pytest.raises(ValueError):
        dyn.sample(0, 3)


def test_select_groups_concatenates_rounds():
    r0 = batch(completions=COMPLETIONS[:4], index=(0, 0, 1, 1))
    r1 = batch(completions=COMPLETIONS[4:], index=(0, 0))
    parts = [([{"text": "a"}, {"text": "b"}], [[1], [2]], [False, True], r0, torch.tensor([1.0, 0.0, 5.0, 5.0])),
             ([{"text": "c"}], [[3]], [False], r1, torch.tensor([0.5, 0.25]))]
    rows, prompts, cut, out, rewards = select_groups(parts, [(0, 0), (1, 0)], 2)
    assert [r["text"] for r in rows] == ["a", "c"] and prompts == [[1], [3]] and cut == [False, False]
    assert out.completion_ids == COMPLETIONS[:2] + COMPLETIONS[4:] and out.prompt_index == [0, 0, 1, 1]
    assert out.logprobs == r0.logprobs[:2] + r1.logprobs
    assert rewards.tolist() == [1.0, 0.0, 0.5, 0.25]


# ------------------------------------------------------------------ 6. LoRA dropout


def test_dropout_stays_out_of_old_reference_and_sync_check(tiny_model_dir, tmp_path, monkeypatch):
    """An SFT adapter saved with lora_dropout 0.3, continued with dropout 0.3 and KL to itself: the old and
    reference log-probs the loss gets equal an eval-mode forward exactly, the post-sync check and the IS weight
    see float32 noise against an engine that samples without dropout, and the training forward still drops."""
    import grpo.step
    from grpo.batch import pack
    from grpo.train import setup_policy
    from runtime.checkpoint import save_adapter
    from runtime.logprobs import token_logprobs
    from runtime.models import LoraConfig, ModelConfig, add_lora, load_model

    torch.manual_seed(0)
    sft = add_lora(load_model(ModelConfig(name=tiny_model_dir)), LoraConfig(r=4, alpha=8, dropout=0.3))
    for n, p in sft.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)  # the adapter (and so its dropout) changes the logits
    save_adapter(sft, tmp_path / "sft", meta={"base_model": tiny_model_dir})
    cfg = config(tiny_model_dir, f"policy.init_adapter={tmp_path / 'sft'}", "policy.r=null", "policy.alpha=null",
                 "policy.dropout=0.3", "kl.reference=sft", "kl.beta=0.1", "micro_batch_size=8",
                 "rollout.backend=vllm")  # the post-sync check is in force (1e-2), no engine is started
    policy, _ = setup_policy(cfg, init_world("cpu"))
    rb = batch()
    ids, attn, P = pack([PROMPTS[i] for i in rb.prompt_index], rb.completion_ids, 0)  # the trainer's one micro-batch
    policy.eval()
    with torch.no_grad():
        want, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)  # (6, T)
        policy.train()
        noisy, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
    mask = attn[:, P:].bool()
    assert (noisy - want)[mask].abs().max() > 1e-2, "dropout 0.3 does not move the log-probs: the test shows nothing"
    engine = RolloutBatch(rb.completion_ids, [want[i, :len(c)].tolist() for i, c in enumerate(rb.completion_ids)],
                          rb.finish_reason, rb.truncated, rb.prompt_index)  # a dropout-free sampler's log-probs

    seen = []

    def spy(logp, old_logp, *args, **kwargs):
        seen.append((old_logp.clone(), kwargs["ref_logp"].clone()))
        return policy_loss(logp, old_logp, *args, **kwargs)

    monkeypatch.setattr(grpo.step, "policy_loss", spy)
    _, m, _ = grads(policy, cfg, engine)
    assert len(seen) == 1
    old, ref = seen[0]
    assert torch.equal(old[mask], want[mask]) and torch.equal(ref[mask], want[mask])  # the policy is the SFT adapter
    assert m["rollout_logp_diff_mean"] < 1e-6 and m["rollout_logp_diff_max"] < 1e-5
    assert m["is_ratio_min"] > 1 - 1e-5 and m["is_ratio_max"] < 1 + 1e-5
    assert abs(m["ratio_max"] - 1) > 1e-3 or abs(m["ratio_min"] - 1) > 1e-3  # the training forward has dropout


# ------------------------------------------------------------------ 7. logged metrics


@pytest.mark.parametrize("is_level", ["token", "geometric"])
def test_logged_metrics_do_not_depend_on_micro_batching(policy, tiny_model_dir, is_level):
    """The same 8 completions in 1 micro-batch or 4, two passes (SGD moves the ratio off 1 in the second),
    KL, dual clip and IS weights on: every train/* value is the same statistic of the step. Under a plain mean
    over micro-batches the loss would be a quarter of the objective and the maxima means of maxima."""
    prompts = PROMPTS + [[28, 29, 30, 31]]
    rb = batch(completions=COMPLETIONS + [[32, 33, 34], [35]], index=(0, 0, 1, 1, 2, 2, 3, 3))
    adv = torch.tensor([0.7, -0.7, 0.0, 0.0, 1.0, -1.0, -0.3, 0.3])
    params = [p for p in policy.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    runs = {}
    for mbs in (8, 2):
        cfg = config(tiny_model_dir, f"micro_batch_size={mbs}", "num_iterations=2", "kl.beta=0.1",
                     "loss.dual_clip=3.0", f"loss.is_level={is_level}", "loss.agg=global_token")
        runs[mbs], _ = train_on_batch(policy, torch.optim.SGD(params, lr=2.0), NoSchedule(), params, prompts, rb,
                                      adv, 0, cfg, init_world("cpu"))
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
    one, four = runs[8], runs[2]
    assert set(one) == set(four)
    assert one["ratio_max"] > 1.01 and one["ratio_min"] < 0.99, "the second pass did not move the ratio"
    assert one["num_tokens"] == sum(len(c) for c in rb.completion_ids) == 21  # tokens of a pass, not per micro-batch
    for k in one:
        assert four[k] == pytest.approx(one[k], rel=1e-5, abs=1e-6), k
