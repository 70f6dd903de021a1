"""AdamW over the trainable (LoRA) parameters, warmup + constant/cosine schedule, and the gradient
all-reduce + clip shared by the SFT and GRPO loops."""

from __future__ import annotations

import math

import torch

from runtime.world import World


def lr_lambda(step: int, *, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Multiplier of the base LR after `step` optimizer steps: linear warmup, then constant or cosine to 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(params: list[torch.nn.Parameter], cfg, total_steps: int):
    """cfg needs lr, weight_decay, warmup_steps and lr_schedule."""
    if not params:
        raise ValueError("no trainable parameters (is the LoRA adapter loaded as trainable?)")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, warmup_steps=cfg.warmup_steps, total_steps=total_steps, schedule=cfg.lr_schedule)
    )
    return opt, sched


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
