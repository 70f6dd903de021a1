"""Booster: an alignment-stage defence against harmful fine-tuning (LoRA) attacks, hand-written.

Huang et al. 2024, "Booster: Tackling Harmful Fine-tuning for Large Language Models via Attenuating
Harmful Perturbation" (arXiv 2409.01586). The SFT objective gains a term that measures how much one
simulated attack step lowers the harmful loss, and minimizes it:

    f(w) + lambda * [ h(w) - h(w - alpha * g / ||g||) ],   g = grad h(w)

f is the alignment (SFT) loss, h the harmful loss: the token-mean -log p of harmful-compliant answers
(by default data/builtin/compliance.py's, for the SFT split's malicious prompts: the same generator the
LoRA attack of recipes/attack.py trains on, so this is the in-distribution case the paper evaluates).
As in the paper, the perturbation's own dependence on w is not differentiated, so the gradient is

    grad f(w) + lambda * [ g - grad h(w_perturbed) ]

The cost is two more forward/backward passes per optimizer step, on the harmful micro-batch.
The weights are put back exactly (copied, not re-added) after the simulated step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from runtime.config import NonNegFloat, PosFloat, PosInt


@dataclass
class BoosterConfig:
    weight: NonNegFloat = 0.0
    """lambda: weight of the harmful-perturbation term (0: off, plain SFT)."""
    step: PosFloat = 0.1
    """alpha: L2 length of the simulated attack step in the trained (LoRA) parameters."""
    batch_size: PosInt = 4
    """Harmful examples per optimizer step per rank."""
    pairs: str | None = None
    """A {prompt, completion} JSONL of harmful-compliant answers (None: data/builtin/compliance.py's pairs
    for the malicious rows of data.train)."""


def perturbation_term(params: Sequence[torch.nn.Parameter], harmful_loss: Callable[[], torch.Tensor],
                      alpha: float) -> tuple[list[torch.Tensor], dict[str, float]]:
    """(grad h(w) - grad h(w - alpha * g / ||g||) per parameter, stats); the parameters end exactly as found.

    `harmful_loss()` runs the model on the harmful batch and returns the scalar h at the current weights.
    stats: h (before), h_perturbed (after the simulated step), grad_norm (||g||)."""
    params = list(params)
    h = harmful_loss()
    g = torch.autograd.grad(h, params)
    norm = torch.sqrt(sum((x.double() ** 2).sum() for x in g)).item()
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, x in zip(params, g):
                p.sub_(x, alpha=alpha / max(norm, 1e-12))
        h_pert = harmful_loss()
        g_pert = torch.autograd.grad(h_pert, params)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    stats = {"h": h.item(), "h_perturbed": h_pert.item(), "grad_norm": norm}
    return [a - b for a, b in zip(g, g_pert)], stats
