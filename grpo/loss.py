"""The GRPO policy loss: PPO-clip (+ dual clip), truncated importance sampling, KL, aggregation.

Pure tensor math: no model, config object or torch.distributed in here.

Shapes (one convention for the module):
    N = completions in the micro-batch, T = completion tokens (right-padded)
    logp, old_logp, ref_logp, rollout_logp, mask: (N, T)     advantages: (N,)

Per token t of completion i, with A = advantages[i] and ratio = exp(logp - old_logp):
    l   = max(-ratio * A, -clip(ratio, 1 - eps_low, 1 + eps_high) * A)     PPO-clip
    l   = min(l, -A * c)            only where A < 0, with c = dual_clip > 1 (verl / OpenRLHF: caps the
                                    loss, and zeroes the gradient, of a negative-advantage token whose
                                    ratio has run past c; pass dual_clip=None to switch it off)
    l   = l * w                     w = min(exp(old_logp - rollout_logp), is_cap), detached: truncated IS
                                    against the engine that sampled. is_level="geometric" (verl's name) uses
                                    one w per completion, exp(masked MEAN over t of (old_logp - rollout_logp))
                                    (the geometric mean of the token ratios; a sum would crush long
                                    completions), then the cap.
    l   = l + beta * kl             k3: exp(ref - logp) - (ref - logp) - 1, clamped to [-10, 10] like
                                    verl's low_var_kl; k2: (logp - ref)^2 / 2; k1: logp - ref
The log-ratios fed to exp() are clamped to [-20, 20] (as verl does) so one wild token cannot give
inf/NaN; with the small ratios of real training this changes nothing.

What the KL term's gradient is (tokens x sampled from pi, the estimator differentiated through logp
only, so the gradient is E_{x~pi}[grad k(x)] = sum_x pi(x) * k'(x) * grad log pi(x)):
    k1: sum_x pi * grad log pi = grad sum_x pi = 0. Its VALUE is an unbiased estimate of KL(pi || ref),
        but as a loss term it pulls nowhere in expectation (only noise).
    k2: sum_x pi * (log pi - log ref) * grad log pi = grad KL(pi || ref), the reverse KL (mode-seeking).
    k3: sum_x pi * (1 - ref / pi) * grad log pi = -sum_x ref * grad log pi = grad KL(ref || pi), the
        forward KL (mass-covering), though its value estimates KL(pi || ref). The usual GRPO / TRL choice.
tests/grpo/test_loss.py checks the three on an enumerated categorical distribution.
Aggregation (`agg`) over masked tokens:
    token_mean             sum(l*m) / sum(m)                  ("bnpo": tokens of this micro-batch)
    seq_mean_token_mean    mean over completions with >= 1 token of sum_t(l*m) / sum_t(m)  ("grpo").
                           Completions with an empty mask are left out of the mean (they would
                           otherwise dilute the loss of the others by a batch-dependent factor).
    dr_grpo                sum(l*m) / (N * max_tokens)        (max_tokens: the generation budget)
    global_token           sum(l*m) / num_global_tokens       ("dapo": the token count of the whole
                           generation batch, so summing micro-batch losses gives the full-batch loss)
`kl_weight` (N,) multiplies each completion's KL term before aggregation (the importance weight of a
sampled zero-advantage completion, grpo/step.py); the kl_mean metric stays unweighted.
`agg_count` replaces the count a per-micro-batch aggregation divides by, for a micro-batch whose
rows with an exactly-zero loss were left out before the forward (grpo/step.py skips zero-advantage
completions): token_mean its completion tokens, seq_mean_token_mean its non-empty completions,
dr_grpo its completions, all counted over the micro-batch before the cut (global_token ignores it).
An empty mask row contributes 0, never NaN; an all-empty micro-batch gives a loss of 0 that still
has a grad path to `logp`. Values of the inputs outside the mask are ignored (even inf/NaN).
The mask may be bool or 0/1 float; any nonzero entry counts as a completion token.

Metrics are plain floats (keys without prefix; the loop adds `train/`). Clip fractions are over
masked tokens: clip_frac_low = share with ratio < 1 - eps_low and A < 0, clip_frac_high = ratio >
1 + eps_high and A > 0. Min/max metrics of an empty batch are reported as 0.0 (num_tokens says 0).
Each metric is a statistic of this micro-batch; METRIC_REDUCE and metric_count say how a loop combines
them over micro-batches and ranks so that the result is the same statistic of the whole step: loss parts
and counts add up, *_max / *_min take the max / min, every other metric is a mean weighted by its count
(num_tokens, or num_seqs for the geometric IS weight, which is one per completion).
"""

from __future__ import annotations

from typing import Literal

import torch

Aggregation = Literal["token_mean", "seq_mean_token_mean", "dr_grpo", "global_token"]
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "dr_grpo", "global_token")
KL_ESTIMATORS = ("k1", "k2", "k3")
IS_LEVELS = ("token", "geometric")
LOG_RATIO_CLAMP = 20.0
K3_CLAMP = 10.0
METRIC_REDUCE = {"loss": "sum", "pg_loss": "sum", "kl_loss": "sum", "num_tokens": "sum", "num_seqs": "sum",
                 "ratio_max": "max", "is_ratio_max": "max", "rollout_logp_diff_max": "max",
                 "ratio_min": "min", "is_ratio_min": "min"}
"""How a policy_loss metric combines over micro-batches and ranks; any other one is a count-weighted mean."""
IS_WEIGHT_METRICS = ("is_ratio_min", "is_ratio_mean", "is_ratio_max", "is_capped_frac")


def metric_count(name: str, is_level: str) -> str:
    """The count a metric is over: num_seqs for the geometric IS weight's statistics, else num_tokens."""
    return "num_seqs" if is_level == "geometric" and name in IS_WEIGHT_METRICS else "num_tokens"


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(policy || ref) from sampled-token log-probs, (N, T) -> (N, T)."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    if estimator == "k1":
        return logp - ref_logp  # (N, T)
    if estimator == "k2":
        return 0.5 * (logp - ref_logp) ** 2  # (N, T)
    log_r = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    return (torch.exp(log_r) - log_r - 1.0).clamp(-K3_CLAMP, K3_CLAMP)  # (N, T)


def _check_shapes(logp, old_logp, advantages, mask, ref_logp, rollout_logp) -> None:
    if logp.dim() != 2:
        raise ValueError(f"logp must be (N, T), got shape {tuple(logp.shape)}")
    shape = tuple(logp.shape)
    for name, t in (("old_logp", old_logp), ("mask", mask), ("ref_logp", ref_logp),
                    ("rollout_logp", rollout_logp)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape} like logp")
    if tuple(advantages.shape) != (shape[0],):
        raise ValueError(f"advantages has shape {tuple(advantages.shape)}, expected ({shape[0]},)")


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean of x over m (bool, same shape); 0 when m is empty."""
    return torch.where(m, x, 0.0).sum() / m.sum().clamp(min=1)


def _masked_min_max(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not m.any():
        zero = x.new_zeros(())
        return zero, zero
    return x[m].min(), x[m].max()


def _aggregate(
    per_token: torch.Tensor,  # (N, T)
    m: torch.Tensor,  # (N, T) bool
    agg: str,
    max_tokens: int | None,
    num_global_tokens: float | int | torch.Tensor | None,
    count: int | None = None,
) -> torch.Tensor:
    masked = torch.where(m, per_token, 0.0)  # (N, T)
    if agg == "token_mean":
        return masked.sum() / (m.sum().clamp(min=1) if count is None else max(count, 1))
    if agg == "seq_mean_token_mean":
        lens = m.sum(dim=1)  # (N,)
        per_seq = masked.sum(dim=1) / lens.clamp(min=1)  # (N,)
        return per_seq.sum() / ((lens > 0).sum().clamp(min=1) if count is None else max(count, 1))
    if agg == "dr_grpo":
        return masked.sum() / ((m.shape[0] if count is None else count) * max_tokens)
    # global_token
    return masked.sum() / max(float(num_global_tokens), 1.0)


def aggregation_count(lengths: list[int], agg: str) -> int:
    """The count `agg` divides a micro-batch's loss by, from its completions' lengths (policy_loss's agg_count)."""
    if agg == "token_mean":
        return sum(lengths)
    if agg == "seq_mean_token_mean":
        return sum(1 for n in lengths if n > 0)
    return len(lengths)


def _check_options(agg, max_tokens, num_global_tokens, eps_low, eps_high, dual_clip, is_cap, is_level,
                   kl_estimator, beta, ref_logp) -> None:
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg must be one of {AGGREGATIONS}, got {agg!r}")
    if agg == "dr_grpo" and (max_tokens is None or max_tokens <= 0):
        raise ValueError(f"agg='dr_grpo' needs max_tokens > 0 (the completion budget), got {max_tokens}")
    if agg == "global_token":
        if num_global_tokens is None:
            raise ValueError("agg='global_token' needs num_global_tokens (completion tokens of the whole batch)")
        if float(num_global_tokens) < 0:
            raise ValueError(f"num_global_tokens must be >= 0, got {float(num_global_tokens)}")
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"eps_low and eps_high must be >= 0, got {eps_low}, {eps_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (verl uses 3.0) or None, got {dual_clip}")
    if is_cap is not None and is_cap <= 0:
        raise ValueError(f"is_cap must be > 0 or None, got {is_cap}")
    if is_level not in IS_LEVELS:
        raise ValueError(f"is_level must be one of {IS_LEVELS}, got {is_level!r}")
    if kl_estimator not in KL_ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {kl_estimator!r}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and ref_logp is None:
        raise ValueError(f"beta={beta} > 0 needs ref_logp")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    rollout_logp: torch.Tensor | None = None,
    is_cap: float | None = None,
    is_level: str = "token",
    dual_clip: float | None = None,
    agg: Aggregation = "token_mean",
    max_tokens: int | None = None,
    num_global_tokens: float | int | torch.Tensor | None = None,
    agg_count: int | None = None,
    kl_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO loss of a micro-batch -> (scalar loss with grad through logp, float metrics)."""
    _check_shapes(logp, old_logp, advantages, mask, ref_logp, rollout_logp)
    _check_options(agg, max_tokens, num_global_tokens, eps_low, eps_high, dual_clip, is_cap, is_level,
                   kl_estimator, beta, ref_logp)
    m = mask.bool()  # (N, T)
    if agg == "global_token" and float(num_global_tokens) == 0 and m.any():
        raise ValueError(f"num_global_tokens is 0 but this micro-batch has {int(m.sum())} completion tokens")

    # Neutralise everything outside the mask first, so padding can never leak inf/NaN into the loss
    # or its gradient (masked_fill passes a zero gradient to the filled positions).
    logp = logp.float().masked_fill(~m, 0.0)  # (N, T)
    old = old_logp.detach().float().masked_fill(~m, 0.0)  # (N, T)
    adv = advantages.detach().float()[:, None]  # (N, 1)

    log_ratio = (logp - old).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    ratio = torch.exp(log_ratio)  # (N, T)
    pg_unclipped = -adv * ratio  # (N, T)
    pg_clipped = -adv * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)  # (N, T)
    pg = torch.maximum(pg_unclipped, pg_clipped)  # (N, T)
    metrics: dict[str, torch.Tensor] = {}
    if dual_clip is not None:
        cap = -adv * dual_clip  # (N, 1), > 0 where A < 0
        neg = (adv < 0).expand_as(pg)  # (N, T)
        metrics["dual_clip_frac"] = _masked_mean((neg & (pg > cap)).float(), m)
        pg = torch.where(neg, torch.minimum(pg, cap), pg)  # (N, T)

    if rollout_logp is not None:
        roll = rollout_logp.detach().float().masked_fill(~m, 0.0)  # (N, T)
        diff = old - roll  # (N, T)
        if is_level == "token":
            log_w = diff  # (N, T)
            w_mask = m  # (N, T)
        else:
            lens = m.sum(dim=1, keepdim=True)  # (N, 1)
            log_w = diff.sum(dim=1, keepdim=True) / lens.clamp(min=1)  # (N, 1) geometric mean
            w_mask = lens > 0  # (N, 1)
        w_raw = torch.exp(log_w.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (N, T) or (N, 1)
        w = w_raw if is_cap is None else w_raw.clamp(max=is_cap)
        pg = pg * w  # (N, T), w carries no gradient (old and rollout are detached)
        w_min, w_max = _masked_min_max(w, w_mask)
        metrics["is_ratio_min"] = w_min
        metrics["is_ratio_mean"] = _masked_mean(w, w_mask)
        metrics["is_ratio_max"] = w_max
        metrics["is_capped_frac"] = _masked_mean((w_raw > w).float(), w_mask)
        abs_diff = diff.abs()  # (N, T)
        metrics["rollout_logp_diff_mean"] = _masked_mean(abs_diff, m)
        metrics["rollout_logp_diff_max"] = _masked_min_max(abs_diff, m)[1]

    pg_loss = _aggregate(pg, m, agg, max_tokens, num_global_tokens, agg_count)
    loss = pg_loss
    if ref_logp is not None:
        ref = ref_logp.detach().float().masked_fill(~m, 0.0)  # (N, T)
        kl = kl_penalty(logp, ref, kl_estimator)  # (N, T)
        metrics["kl_mean"] = _masked_mean(kl, m)
        if beta > 0:
            weighted = kl if kl_weight is None else kl * kl_weight.detach().float()[:, None]  # (N, T)
            kl_loss = beta * _aggregate(weighted, m, agg, max_tokens, num_global_tokens, agg_count)
            metrics["kl_loss"] = kl_loss
            loss = pg_loss + kl_loss

    with torch.no_grad():
        is_low = (ratio < 1.0 - eps_low) & (adv < 0)  # (N, T)
        is_high = (ratio > 1.0 + eps_high) & (adv > 0)  # (N, T)
        metrics["clip_frac_low"] = _masked_mean(is_low.float(), m)
        metrics["clip_frac_high"] = _masked_mean(is_high.float(), m)
        metrics["clip_frac"] = _masked_mean((is_low | is_high).float(), m)
        metrics["ratio_mean"] = _masked_mean(ratio, m)
        r_min, r_max = _masked_min_max(ratio, m)
        metrics["ratio_min"], metrics["ratio_max"] = r_min, r_max
        metrics["pg_loss"] = pg_loss
        metrics["loss"] = loss
        metrics["num_tokens"] = m.sum()
        metrics["num_seqs"] = (m.sum(dim=1) > 0).sum()
        # One device->host transfer for all metrics.
        names = list(metrics)
        values = torch.stack([metrics[k].detach().float().reshape(()) for k in names]).tolist()
    return loss, dict(zip(names, values))
