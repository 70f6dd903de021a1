"""AdamW over the trainable (LoRA) parameters, warmup + constant/cosine schedule, and the gradient
all-reduce + clip shared by the SFT and GRPO loops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from runtime.config import NonNegFloat, NonNegInt, PosFloat, UnitFloat
from runtime.world import World


@dataclass
class OptimConfig:
    """AdamW on the LoRA parameters with a warmup + constant/cosine schedule (shared by SFT and GRPO)."""

    lr: PosFloat = 1e-5
    """AdamW learning rate of the LoRA parameters."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """constant or cosine to 0 (both after a linear warmup)."""
    warmup_steps: NonNegInt = 0
    """Linear warmup in optimizer steps (0 with warmup_ratio > 0: derived from it)."""
    warmup_ratio: UnitFloat = 0.0
    """Warmup as a share of all optimizer steps, used when warmup_steps is 0."""
    weight_decay: NonNegFloat = 0.0
    """AdamW weight decay."""
    max_grad_norm: NonNegFloat = 1.0
    """Gradient clipping by global norm (0: no clipping)."""

    def warmup_for(self, total_steps: int) -> int:
        """The warmup length in optimizer steps for a run of `total_steps`."""
        if self.warmup_steps == 0 and self.warmup_ratio > 0:
            return max(1, round(self.warmup_ratio * total_steps))
        return self.warmup_steps


def lr_lambda(step: int, *, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Multiplier of the base LR after `step` optimizer steps: linear warmup, then constant or cosine to 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(params: list[torch.nn.Parameter], cfg: OptimConfig, total_steps: int):
    """AdamW + LambdaLR for a run of `total_steps` optimizer steps."""
    if not params:
        raise ValueError("no trainable parameters (is the LoRA adapter loaded as trainable?)")
    warmup = cfg.warmup_for(total_steps)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, warmup_steps=warmup, total_steps=total_steps, schedule=cfg.lr_schedule)
    )
    return opt, sched


def set_base_lr(optimizer, scheduler, lr: float) -> None:
    """After loading a checkpoint's optimizer/scheduler state: make `lr` the base LR from here on
    (the saved state would otherwise silently keep the old one)."""
    scheduler.base_lrs = [lr for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["initial_lr"] = lr
        group["lr"] = lr * scheduler.lr_lambdas[0](scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def clip_and_reduce_grads(params: list[torch.nn.Parameter], max_norm: float, world: World, *,
                          sum_ranks: bool = False) -> float:
    """All-reduce the gradients over ranks (mean, or sum when the loss is already globally normalized),
    then clip to max_norm. Returns the pre-clip global norm. Identical on every rank, so the LoRA
    weights stay identical (this is DDP's gradient averaging, done explicitly on the few LoRA tensors)."""
    grads = [p.grad for p in params if p.grad is not None]
    if world.distributed:
        world.all_reduce_mean_(grads)
        if sum_ranks:
            for g in grads:
                g.mul_(world.world_size)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
    return float(norm)
