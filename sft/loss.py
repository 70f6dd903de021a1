"""The SFT completion loss: token-mean cross-entropy over completion tokens only (pure tensor math).

Shapes: logits (B, T, V) from the model run on input_ids (B, T); completion_mask (B, T) is 1 on
the completion (assistant) tokens. Token t (t >= 1) with completion_mask[:, t] == 1 is scored by
logits[:, t - 1]; prompt positions never contribute, whatever their logits are.

Memory: only the masked rows of the logits are read, in chunks, through the same custom autograd
function as GRPO's log-probs (`runtime.logprobs.selected_logprobs`): no float32 log_softmax copy of
(B, T, V) exists at any point, forward or backward.

reduction="mean": loss = sum of token losses / number of tokens (0 with a grad path when there are
none). reduction="sum": loss = the sum; divide by the token count of the whole optimizer step
(metrics["num_tokens"] summed over micro-batches) for an exact token mean under gradient accumulation.
"""

from __future__ import annotations

from typing import Literal

import torch

from runtime.logprobs import DEFAULT_CHUNK, selected_logprobs


def completion_loss(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    reduction: Literal["mean", "sum"] = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, dict[str, float]]:
    """-> (loss, {loss, token_accuracy, entropy, num_tokens}); metrics are token means over the batch."""
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, V), got shape {tuple(logits.shape)}")
    B, T, V = logits.shape
    if tuple(input_ids.shape) != (B, T) or tuple(completion_mask.shape) != (B, T):
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and completion_mask {tuple(completion_mask.shape)} "
            f"must be ({B}, {T}) like logits"
        )
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    target = completion_mask.bool().clone()  # (B, T)
    target[:, 0] = False  # the first token has no previous position
    b_idx, t_idx = target.nonzero(as_tuple=True)  # (M,), (M,)
    rows = b_idx * T + t_idx - 1  # (M,) rows of the flat (B*T, V) logits
    labels = input_ids[b_idx, t_idx]  # (M,)
    flat = logits.reshape(B * T, V)  # (B*T, V), a view for contiguous logits
    logp, entropy, correct = selected_logprobs(
        flat, rows, labels, chunk_size=chunk_size, with_entropy=True, with_argmax=True
    )  # (M,) each
    n = labels.numel()
    total = -logp.sum()
    loss = total if reduction == "sum" else total / max(n, 1)
    metrics = {
        "loss": float(total.detach()) / max(n, 1),
        "token_accuracy": float(correct.float().sum()) / max(n, 1),
        "entropy": float(entropy.sum()) / max(n, 1),
        "num_tokens": float(n),
    }
    return loss, metrics
