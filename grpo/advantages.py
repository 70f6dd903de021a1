"""Group-relative advantages and reward combination (pure tensor math).

Shapes: rewards arrive flat, (B*G,), laid out group after group: the G completions of prompt 0,
then the G completions of prompt 1, ... Internally they are viewed as (B, G).

Modes of `group_advantages` (see shared/reference/grpo-variants.md):
- "group": (r - group mean) / (unbiased group std + eps)        GRPO, TRL's default (eps 1e-4)
- "batch": (r - group mean) / (unbiased std of all B*G rewards + eps)
- "none":  r - group mean                                         Dr. GRPO
A group whose rewards are all equal (within `atol`) gets advantages of exactly 0 in every mode:
such a "zero-std group" carries no learning signal, and float rounding in (r - mean) must not
invent one. `zero_std_mask` reports those groups; `frac_reward_zero_std` is the share logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

AdvantageScale = Literal["group", "batch", "none"]
SCALES = ("group", "batch", "none")


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Check the flat layout and return a float32 (B, G) view."""
    if not isinstance(group_size, int) or isinstance(group_size, bool):
        raise ValueError(f"group_size must be an int, got {group_size!r}")
    if group_size < 2:
        raise ValueError(
            f"group_size must be >= 2 for group-relative advantages (got {group_size}): "
            "the unbiased std of a single reward is undefined and every advantage would be 0"
        )
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (B*G,), got shape {tuple(rewards.shape)}")
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"len(rewards)={rewards.numel()} is not divisible by group_size={group_size}"
        )
    if not torch.isfinite(rewards).all():
        bad = int((~torch.isfinite(rewards)).nonzero()[0].item())
        raise ValueError(f"rewards[{bad}] = {rewards[bad].item()} is not finite (combine_rewards first)")
    return rewards.float().view(-1, group_size)  # (B, G)


def zero_std_mask(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> torch.Tensor:
    """(B,) bool: True for groups whose rewards are all equal (max - min <= atol)."""
    r = _grouped(rewards, group_size)  # (B, G)
    spread = r.max(dim=1).values - r.min(dim=1).values  # (B,)
    return spread <= atol


def frac_reward_zero_std(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> float:
    """Share of groups with identical rewards (no gradient from them); 0.0 for an empty batch."""
    mask = zero_std_mask(rewards, group_size, atol)  # (B,)
    return float(mask.float().mean().item()) if mask.numel() else 0.0


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: AdvantageScale = "group",
    eps: float = 1e-4,
    atol: float = 1e-6,
) -> torch.Tensor:
    """(B*G,) rewards -> (B*G,) float32 advantages; zero-std groups get exactly 0."""
    if scale not in SCALES:
        raise ValueError(f"advantage scale must be one of {SCALES}, got {scale!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    r = _grouped(rewards, group_size)  # (B, G)
    centered = r - r.mean(dim=1, keepdim=True)  # (B, G)
    if scale == "group":
        adv = centered / (r.std(dim=1, unbiased=True, keepdim=True) + eps)  # (B, G)
    elif scale == "batch":
        # std over every reward of the batch (a single number), still centred per group.
        adv = centered / (r.reshape(-1).std(unbiased=True) + eps)  # (B, G)
    else:
        adv = centered  # (B, G)
    zero = zero_std_mask(rewards, group_size, atol)  # (B,)
    adv = adv.masked_fill(zero[:, None], 0.0)  # (B, G)
    return adv.reshape(-1)  # (B*G,)


def combine_rewards(rewards: torch.Tensor, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """(N, K) rewards of K functions -> (N,) weighted nansum.

    NaN means "this reward function does not apply to this row" and contributes nothing (TRL's
    convention). A row that is NaN in every function gets 0.0 (NaN-safe: one such row must not
    turn the whole batch's advantages into NaN); callers that care can count them with
    `torch.isnan(rewards).all(dim=1)`.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (N, K), got shape {tuple(rewards.shape)}")
    w = torch.as_tensor(weights, dtype=torch.float32, device=rewards.device)  # (K,)
    if w.dim() != 1 or w.numel() != rewards.shape[1]:
        raise ValueError(
            f"weights has {w.numel()} entries but rewards has {rewards.shape[1]} reward functions"
        )
    if not torch.isfinite(w).all():
        raise ValueError(f"reward weights must be finite, got {w.tolist()}")
    r = rewards.float()  # (N, K)
    if torch.isinf(r).any():
        row = int(torch.isinf(r).any(dim=1).nonzero()[0].item())
        raise ValueError(f"rewards row {row} has an infinite value: {r[row].tolist()}")
    return torch.nansum(r * w[None, :], dim=1)  # (N,)


def overlong_penalty(lengths: Sequence[int], max_tokens: int, buffer: int, penalty: float = 1.0) -> torch.Tensor:
    """DAPO's soft overlong punishment, (N,) float32 values in [-penalty, 0] to add to the rewards.

    0 up to max_tokens - buffer tokens, then linear down to -penalty at max_tokens:
        p(L) = -penalty * (L - (max_tokens - buffer)) / buffer     for max_tokens - buffer < L <= max_tokens
    (longer than max_tokens cannot happen here: the sampler stops there; it would get -penalty).
    """
    if not 1 <= buffer <= max_tokens:
        raise ValueError(f"buffer must be in [1, max_tokens={max_tokens}], got {buffer}")
    L = torch.as_tensor(list(lengths), dtype=torch.float32)  # (N,)
    over = (L - (max_tokens - buffer)).clamp(min=0.0, max=float(buffer))  # (N,) tokens into the buffer
    return -penalty * over / buffer  # (N,)
