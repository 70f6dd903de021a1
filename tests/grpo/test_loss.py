"""grpo.loss.policy_loss: against a naive per-token Python loop, hand-worked examples, edge cases."""

import math

import pytest
import torch

from grpo.advantages import group_advantages
from grpo.loss import kl_penalty, policy_loss

NEG = float("-inf")


# ---------------------------------------------------------------------------------------------
# Naive reference: loops over rows and tokens. `exp` is math.exp for values (Python floats) or
# torch.exp for gradients (0-d float64 tensors; min/max pick one branch, like the real clip).
# ---------------------------------------------------------------------------------------------
def naive_loss(logp, old, adv, mask, *, eps_low=0.2, eps_high=0.2, ref=None, beta=0.0, kl_estimator="k3",
               roll=None, is_cap=None, is_level="token", dual_clip=None, agg="token_mean", max_tokens=None,
               num_global_tokens=None, exp=math.exp):
    N, T = len(mask), len(mask[0])
    row_sums, row_lens = [], []
    for i in range(N):
        toks = [t for t in range(T) if mask[i][t]]
        A = adv[i]
        if roll is not None and is_level == "geometric" and toks:
            seq_w = exp(sum(old[i][t] - roll[i][t] for t in toks) / len(toks))  # geometric mean
        total = 0.0
        for t in toks:
            ratio = exp(logp[i][t] - old[i][t])
            clipped = min(max(ratio, 1 - eps_low), 1 + eps_high)
            lt = -min(ratio * A, clipped * A)
            if dual_clip is not None and A < 0:
                lt = min(lt, -A * dual_clip)
            if roll is not None:
                w = exp(old[i][t] - roll[i][t]) if is_level == "token" else seq_w
                if is_cap is not None:
                    w = min(w, is_cap)
                lt = lt * w
            if beta:
                if kl_estimator == "k1":
                    kl = logp[i][t] - ref[i][t]
                elif kl_estimator == "k2":
                    kl = 0.5 * (logp[i][t] - ref[i][t]) ** 2
                else:
                    d = ref[i][t] - logp[i][t]
                    kl = exp(d) - d - 1
                lt = lt + beta * kl
            total = total + lt
        row_sums.append(total)
        row_lens.append(len(toks))
    if agg == "token_mean":
        return sum(row_sums) / max(sum(row_lens), 1)
    if agg == "seq_mean_token_mean":
        nonempty = [s / n for s, n in zip(row_sums, row_lens) if n]
        return sum(nonempty) / max(len(nonempty), 1)
    if agg == "dr_grpo":
        return sum(row_sums) / (N * max_tokens)
    return sum(row_sums) / num_global_tokens


def random_batch(seed=0):
    N, T = 5, 7
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(N, T, generator=g) * 3 - 0.05  # (N, T) in [-3.05, -0.05]
    old = logp + torch.randn(N, T, generator=g) * 0.35  # ratio != 1, many outside [0.8, 1.2]
    old[1, 0] = logp[1, 0] - 1.6  # ratio e^1.6 = 4.95 on a negative-advantage row: dual clip fires
    old[1, 2] = logp[1, 2] - 1.3  # ratio 3.67
    ref = logp + torch.randn(N, T, generator=g) * 0.3
    roll = old + torch.randn(N, T, generator=g) * 0.25
    adv = torch.tensor([1.3, -0.7, -2.0, 0.4, 0.9])  # mixed signs
    mask = torch.ones(N, T, dtype=torch.bool)
    mask[0, 5:] = False  # a short completion
    mask[2, 3:] = False
    mask[4, :] = False  # an empty completion
    return logp, old, ref, roll, adv, mask


CONFIGS = {
    "clip": {},
    "clip_higher": {"eps_low": 0.2, "eps_high": 0.28},
    "dual_clip": {"dual_clip": 3.0},
    "is_token": {"roll": True},
    "is_token_cap": {"roll": True, "is_cap": 1.1},
    "is_seq_cap": {"roll": True, "is_cap": 1.05, "is_level": "geometric"},
    "is_seq": {"roll": True, "is_level": "geometric"},
    "kl_k3": {"ref": True, "beta": 0.05},
    "kl_k1": {"ref": True, "beta": 0.05, "kl_estimator": "k1"},
    "kl_k2": {"ref": True, "beta": 0.1, "kl_estimator": "k2"},
    "everything": {"eps_high": 0.28, "dual_clip": 3.0, "roll": True, "is_cap": 1.2, "ref": True, "beta": 0.04},
}
AGGS = {
    "token_mean": {},
    "seq_mean_token_mean": {},
    "dr_grpo": {"max_tokens": 9},
    "global_token": {"num_global_tokens": 40},
}


def _kwargs(cfg, agg, ref, roll):
    kw = {k: v for k, v in cfg.items() if k not in ("ref", "roll")}
    kw.update(AGGS[agg], agg=agg)
    return kw, (ref if cfg.get("ref") else None), (roll if cfg.get("roll") else None)


@pytest.mark.parametrize("agg", list(AGGS))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_naive_loop_value_and_gradient(name, agg):
    logp, old, ref, roll, adv, mask = random_batch()
    kw, ref_t, roll_t = _kwargs(CONFIGS[name], agg, ref, roll)
    lp = logp.clone().requires_grad_(True)
    loss, metrics = policy_loss(lp, old, adv, mask, ref_logp=ref_t, rollout_logp=roll_t, **kw)
    loss.backward()

    as_list = lambda t: None if t is None else t.tolist()  # noqa: E731
    expected = naive_loss(logp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), ref=as_list(ref_t),
                          roll=as_list(roll_t), **kw)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-6)

    # Gradient of the same naive loop, run on float64 0-d tensors.
    lp64 = logp.double().requires_grad_(True)
    rows = [[lp64[i, t] for t in range(logp.shape[1])] for i in range(logp.shape[0])]
    ref64 = None if ref_t is None else ref_t.double()
    roll64 = None if roll_t is None else roll_t.double()
    ref_rows = None if ref64 is None else [list(r) for r in ref64]
    roll_rows = None if roll64 is None else [list(r) for r in roll64]
    naive = naive_loss(rows, [list(r) for r in old.double()], adv.tolist(), mask.tolist(), ref=ref_rows,
                       roll=roll_rows, exp=torch.exp, **kw)
    naive.backward()
    torch.testing.assert_close(lp.grad, lp64.grad.float(), rtol=1e-4, atol=1e-6)
    assert lp.grad[4].eq(0).all()  # the empty row gets no gradient


def test_random_batch_exercises_every_branch():
    # Guards the naive comparison above from passing vacuously.
    logp, old, ref, roll, adv, mask = random_batch()
    _, m = policy_loss(logp, old, adv, mask, dual_clip=3.0, rollout_logp=roll, is_cap=1.1)
    assert m["clip_frac_low"] > 0 and m["clip_frac_high"] > 0
    assert m["dual_clip_frac"] > 0
    assert 0 < m["is_capped_frac"] < 1
    assert m["ratio_min"] < 0.8 and m["ratio_max"] > 3.0


def _hand_batch():
    # Row 0: A = +1, old = 0, logp = [ln 1.1, ln 0.5], both tokens real.
    #   t0: ratio 1.1 (inside [0.8, 1.2]): l = -1.1
    #   t1: ratio 0.5: l = -min(0.5 * 1, 0.8 * 1) = -0.5
    # Row 1: A = -1, logp = [ln 0.5, <padding>], one real token.
    #   t0: ratio 0.5: l = -min(-0.5, -0.8) = 0.8   (clipped: ratio < 0.8 with A < 0)
    logp = torch.tensor([[math.log(1.1), math.log(0.5)], [math.log(0.5), 123.0]])
    old = torch.zeros(2, 2)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1], [1, 0]])
    return logp, old, adv, mask


@pytest.mark.parametrize(
    ("agg", "kw", "expected"),
    [
        # 1 x 2 example (row 0 only): l = [-1.1, -0.5], sum -1.6
        ("token_mean", {}, -1.6 / 2),
        ("seq_mean_token_mean", {}, -1.6 / 2),
        ("dr_grpo", {"max_tokens": 4}, -1.6 / (1 * 4)),
        ("global_token", {"num_global_tokens": 8}, -1.6 / 8),
    ],
)
def test_hand_values_1x2(agg, kw, expected):
    logp, old, adv, mask = _hand_batch()
    loss, _ = policy_loss(logp[:1], old[:1], adv[:1], mask[:1], agg=agg, **kw)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("agg", "kw", "expected"),
    [
        # 2 x 2: token losses -1.1, -0.5 (row 0) and 0.8 (row 1), 3 tokens.
        ("token_mean", {}, (-1.1 - 0.5 + 0.8) / 3),  # -0.2667
        ("seq_mean_token_mean", {}, ((-1.1 - 0.5) / 2 + 0.8 / 1) / 2),  # (-0.8 + 0.8) / 2 = 0
        ("dr_grpo", {"max_tokens": 4}, (-1.1 - 0.5 + 0.8) / (2 * 4)),  # -0.1
        ("global_token", {"num_global_tokens": 10}, (-1.1 - 0.5 + 0.8) / 10),  # -0.08
    ],
)
def test_hand_values_2x2(agg, kw, expected):
    logp, old, adv, mask = _hand_batch()
    loss, m = policy_loss(logp, old, adv, mask, agg=agg, **kw)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # Only row 1 t0 is clipped (ratio 0.5 < 0.8, A < 0); row 0 t1 has ratio 0.5 but A > 0.
    assert m["clip_frac_low"] == pytest.approx(1 / 3)
    assert m["clip_frac_high"] == 0.0
    assert m["ratio_mean"] == pytest.approx((1.1 + 0.5 + 0.5) / 3)
    assert m["num_tokens"] == 3


def test_dual_clip_hand_value():
    # A = -1, ratio = 4 (> c = 3): PPO-clip gives l = -min(-4, -1.2) = 4; dual clip caps it at -A * c = 3
    # and the token's gradient is 0. With ratio 2 (< c) it stays l = 2.
    logp = torch.tensor([[math.log(4.0), math.log(2.0)]], requires_grad=True)
    loss, m = policy_loss(logp, torch.zeros(1, 2), torch.tensor([-1.0]), torch.ones(1, 2), dual_clip=3.0)
    assert loss.item() == pytest.approx((3.0 + 2.0) / 2, rel=1e-6)
    assert m["dual_clip_frac"] == 0.5
    loss.backward()
    # d/dlogp of -A * ratio / 2 = ratio / 2 = 1 for the unclipped token.
    assert logp.grad[0].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)


def test_geometric_is_weight_hand_value():
    # old - rollout = [0.2, -0.4] -> mean -0.1 -> w = e^-0.1 = 0.904837 for both tokens
    # (a sum would give e^-0.2 = 0.8187). ratio 1, A = 1: l = -1 * w per token; token mean = -w.
    old = torch.tensor([[-1.0, -2.0]])
    roll = old - torch.tensor([[0.2, -0.4]])
    loss, m = policy_loss(old.clone(), old, torch.tensor([1.0]), torch.ones(1, 2), rollout_logp=roll,
                          is_level="geometric")
    assert loss.item() == pytest.approx(-math.exp(-0.1), rel=1e-6)
    assert m["is_ratio_mean"] == pytest.approx(math.exp(-0.1), rel=1e-6)
    assert m["rollout_logp_diff_mean"] == pytest.approx(0.3, rel=1e-5)
    assert m["rollout_logp_diff_max"] == pytest.approx(0.4, rel=1e-5)
    # Cap 0.5: w = min(0.9048, 0.5) = 0.5.
    loss, m = policy_loss(old.clone(), old, torch.tensor([1.0]), torch.ones(1, 2), rollout_logp=roll,
                          is_level="geometric", is_cap=0.5)
    assert loss.item() == pytest.approx(-0.5)
    assert m["is_capped_frac"] == 1.0


def test_kl_hand_values():
    # logp = -1, ref = -1.5: k3 = e^-0.5 - (-0.5) - 1 = 0.1065307; k1 = 0.5; k2 = 0.125.
    logp = torch.tensor([[-1.0]])
    ref = torch.tensor([[-1.5]])
    for est, kl in (("k3", math.exp(-0.5) + 0.5 - 1), ("k1", 0.5), ("k2", 0.125)):
        loss, m = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logp=ref, beta=0.1,
                              kl_estimator=est)
        assert m["kl_mean"] == pytest.approx(kl, rel=1e-6)
        assert loss.item() == pytest.approx(0.1 * kl, rel=1e-6)  # A = 0: only the KL term
    # k3 is clamped to 10 (verl): ref - logp = 20 would give e^20 - 21.
    _, m = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logp=logp + 20, beta=0.1)
    assert m["kl_mean"] == 10.0


def expected_kl_grad(theta: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """E_{x ~ pi}[grad k(x)] exactly: the real kl_penalty on every token of the support, weighted by the
    sampling probabilities pi(x) held fixed (samples come from pi; the loss differentiates k through logp)."""
    theta = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(theta, dim=-1)  # (V,)
    k = kl_penalty(logp[None], ref_logp[None], estimator)[0]  # (V,)
    (logp.exp().detach() * k).sum().backward()
    return theta.grad


def analytic_grad(theta: torch.Tensor, fn) -> torch.Tensor:
    theta = theta.clone().requires_grad_(True)
    fn(torch.log_softmax(theta, dim=-1)).backward()
    return theta.grad


def test_kl_estimator_gradients_on_a_categorical():
    # pi = softmax(theta) over 5 tokens, a fixed ref (float64, so the match is to rounding):
    #   k1: sum_x pi * grad log pi = grad sum_x pi = 0
    #   k2: sum_x pi * (log pi - log ref) * grad log pi = grad KL(pi || ref)         (reverse KL)
    #   k3: sum_x pi * (1 - ref / pi) * grad log pi = -sum_x ref * grad log pi = grad KL(ref || pi)  (forward)
    theta = torch.tensor([0.3, -1.2, 2.0, 0.0, -0.4], dtype=torch.float64)
    ref = torch.log_softmax(torch.tensor([1.0, 0.5, -0.3, 0.2, -1.5], dtype=torch.float64), dim=-1)  # (V,)
    reverse = analytic_grad(theta, lambda lp: (lp.exp() * (lp - ref)).sum())  # grad KL(pi || ref)
    forward = analytic_grad(theta, lambda lp: (ref.exp() * (ref - lp)).sum())  # grad KL(ref || pi)
    assert reverse.abs().max() > 0.1 and forward.abs().max() > 0.1 and (reverse - forward).abs().max() > 0.1

    torch.testing.assert_close(expected_kl_grad(theta, ref, "k1"), torch.zeros(5, dtype=torch.float64),
                               rtol=0, atol=1e-15)
    torch.testing.assert_close(expected_kl_grad(theta, ref, "k2"), reverse, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(expected_kl_grad(theta, ref, "k3"), forward, rtol=1e-12, atol=1e-14)
    # So only k2 follows the gradient of the KL(pi || ref) that all three estimate in value:
    assert (expected_kl_grad(theta, ref, "k3") - reverse).abs().max() > 0.1
    # ... and all three estimate it in value: E_pi[k] = KL(pi || ref) for k1 and k3 (k2 is biased upward).
    pi = torch.softmax(theta, dim=-1)
    kl = (pi * (pi.log() - ref)).sum()
    for est in ("k1", "k3"):
        assert (pi * kl_penalty(pi.log()[None], ref[None], est)[0]).sum().item() == pytest.approx(kl.item(), 1e-12)


def test_ratio_one_when_old_is_detached_logp():
    logp, _, _, _, adv, mask = random_batch()
    lp = logp.clone().requires_grad_(True)
    loss, m = policy_loss(lp, lp.detach(), adv, mask)
    assert m["ratio_mean"] == 1.0 and m["ratio_min"] == 1.0 and m["ratio_max"] == 1.0
    assert m["clip_frac_low"] == 0.0 and m["clip_frac_high"] == 0.0
    loss.backward()
    # ratio == 1: d l_t / d logp_t = -A, token mean over the 5 + 7 + 3 + 7 = 22 masked tokens.
    expected = torch.where(mask, -adv[:, None] / 22.0, 0.0)
    torch.testing.assert_close(lp.grad, expected)


def test_identical_rewards_give_zero_loss_and_zero_gradient():
    adv = group_advantages(torch.full((4,), 0.7), 4)  # one zero-std group
    logp, old, _, _, _, mask = random_batch()
    logp, old, mask = logp[:4], old[:4], mask[:4]  # ratio != 1 and clipped tokens, A = 0
    lp = logp.clone().requires_grad_(True)
    loss, _ = policy_loss(lp, old, adv, mask, dual_clip=3.0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(lp.grad).all() and lp.grad.eq(0).all()


@pytest.mark.parametrize("agg", list(AGGS))
def test_empty_mask_row_is_zero_not_nan(agg):
    logp, old, ref, roll, adv, mask = random_batch()
    # Garbage outside the mask must not leak: inf/NaN on the empty row and on padding.
    logp, old = logp.clone(), old.clone()
    logp[4, :] = float("nan")
    old[4, :] = NEG
    logp[0, 6] = float("inf")
    lp = logp.requires_grad_(True)
    loss, m = policy_loss(lp, old, adv, mask, agg=agg, ref_logp=ref, beta=0.1, rollout_logp=roll, is_cap=2.0,
                          **AGGS[agg])
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(math.isfinite(v) for v in m.values())
    assert torch.isfinite(lp.grad).all() and lp.grad[4].eq(0).all() and lp.grad[0, 6] == 0


@pytest.mark.parametrize("agg", list(AGGS))
def test_all_empty_batch_gives_zero_loss_with_grad_path(agg):
    logp = torch.randn(3, 4, requires_grad=True)
    kw = {"max_tokens": 4} if agg == "dr_grpo" else {"num_global_tokens": 0} if agg == "global_token" else {}
    loss, m = policy_loss(logp, logp.detach() - 0.5, torch.tensor([1.0, -1.0, 0.5]),
                          torch.zeros(3, 4), agg=agg, rollout_logp=logp.detach(), **kw)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logp.grad.eq(0).all()
    assert m["num_tokens"] == 0 and all(math.isfinite(v) for v in m.values())


def test_global_token_micro_batches_sum_to_full_batch():
    # The DAPO property: with one global token count, micro-batch losses add up to the full loss.
    logp, old, ref, roll, adv, mask = random_batch()
    kw = {"ref_logp": ref, "beta": 0.05, "rollout_logp": roll, "is_cap": 1.5, "dual_clip": 3.0}
    n = int(mask.sum())
    full, _ = policy_loss(logp, old, adv, mask, agg="global_token", num_global_tokens=n, **kw)
    parts = [
        policy_loss(logp[s], old[s], adv[s], mask[s], agg="global_token", num_global_tokens=n,
                    **{k: (v[s] if torch.is_tensor(v) else v) for k, v in kw.items()})[0]
        for s in (slice(0, 2), slice(2, 5))
    ]
    assert (parts[0] + parts[1]).item() == pytest.approx(full.item(), rel=1e-6)
    # token_mean does not have the property on this uneven split (so the check above can fail).
    tm = [policy_loss(logp[s], old[s], adv[s], mask[s])[0].item() for s in (slice(0, 2), slice(2, 5))]
    assert sum(tm) != pytest.approx(policy_loss(logp, old, adv, mask)[0].item(), rel=1e-3)


def test_no_rollout_or_ref_metrics_without_inputs_and_keys_are_plain():
    logp, old, _, _, adv, mask = random_batch()
    _, m = policy_loss(logp, old, adv, mask)
    assert {"clip_frac_low", "clip_frac_high", "ratio_mean", "pg_loss", "loss", "num_tokens"} <= set(m)
    assert not any(k.startswith("is_") or k.startswith("kl") for k in m)
    assert all(isinstance(v, float) and "/" not in k for k, v in m.items())


def test_bad_arguments_are_errors():
    logp, old, ref, _, adv, mask = random_batch()
    with pytest.raises(ValueError, match="needs max_tokens"):
        policy_loss(logp, old, adv, mask, agg="dr_grpo")
    with pytest.raises(ValueError, match="needs num_global_tokens"):
        policy_loss(logp, old, adv, mask, agg="global_token")
    with pytest.raises(ValueError, match="num_global_tokens is 0 but"):
        policy_loss(logp, old, adv, mask, agg="global_token", num_global_tokens=0)
    with pytest.raises(ValueError, match="agg must be one of"):
        policy_loss(logp, old, adv, mask, agg="sum")
    with pytest.raises(ValueError, match="needs ref_logp"):
        policy_loss(logp, old, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        policy_loss(logp, old, adv, mask, dual_clip=1.0)
    with pytest.raises(ValueError, match="kl_estimator"):
        policy_loss(logp, old, adv, mask, ref_logp=ref, beta=0.1, kl_estimator="k4")
    with pytest.raises(ValueError, match="is_level"):
        policy_loss(logp, old, adv, mask, rollout_logp=old, is_level="batch")
    with pytest.raises(ValueError, match="old_logp has shape"):
        policy_loss(logp, old[:, :3], adv, mask)
    with pytest.raises(ValueError, match="advantages has shape"):
        policy_loss(logp, old, adv[:2], mask)
