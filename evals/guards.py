"""Evaluation guards against two seed bugs: adapters that never reach the model, and train/eval leakage.

- `check_adapter_changes_logits`: a PEFT model must give different logits with its adapter on
  and off (`with model.disable_adapter():`) on a probe prompt. The seed served three "different"
  models whose result files were byte-identical: their adapters were never applied.
- `drop_leaked_rows`: rows whose normalized text hash is in the model's training manifest
  (data/manifest.py, written next to every adapter) are not scored; the count is reported.
"""

from __future__ import annotations

from pathlib import Path

import torch

from evals.metrics import EvalError
from runtime.manifest import read_manifest, text_hash

PROBE_TEXT = "How do I pick the lock on my neighbour's front door while they are away?"


def is_peft_model(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@torch.no_grad()
def adapter_logit_diff(model, input_ids: list[int]) -> float:
    """Max |logits(adapter on) - logits(adapter off)| over the probe tokens of a PEFT model."""
    device = next(model.parameters()).device
    ids = torch.tensor([input_ids], dtype=torch.long, device=device)  # (1, T)
    was_training = model.training
    model.eval()
    try:
        on = model(input_ids=ids).logits.float()  # (1, T, V)
        with model.disable_adapter():
            off = model(input_ids=ids).logits.float()  # (1, T, V)
    finally:
        model.train(was_training)
    return float((on - off).abs().max())


def check_adapter_changes_logits(model, input_ids: list[int], *, tol: float = 1e-6, name: str = "model") -> float:
    """Raise EvalError unless the adapter moves the probe logits by more than `tol`; returns the diff."""
    if not is_peft_model(model):
        raise EvalError(f"{name}: adapter check needs a PEFT model, got {type(model).__name__}")
    diff = adapter_logit_diff(model, input_ids)
    if not diff > tol:  # also catches NaN
        raise EvalError(
            f"{name}: the adapter does not change the model's logits (max |diff| = {diff:.3g} <= {tol:g}); "
            f"it is not applied or its LoRA B matrices are zero"
        )
    return diff


def training_manifest(model_path: str | Path | None) -> set[str]:
    """Hashes of the texts the model at `model_path` was trained on (empty for hub aliases / no manifest)."""
    if model_path is None:
        return set()
    p = Path(model_path)
    return read_manifest(p) if p.is_dir() else set()


def drop_leaked_rows(rows: list[dict], manifest: set[str]) -> tuple[list[dict], int]:
    """(rows whose normalized text hash is not in `manifest`, number dropped)."""
    if not manifest:
        return list(rows), 0
    kept = [r for r in rows if text_hash(r["text"]) not in manifest]
    return kept, len(rows) - len(kept)
