"""Per-token log-probs (and entropy) of sampled tokens: the one place the policy model is called.

Memory: a full float32 log_softmax of (N, T, V) logits is the largest tensor of a naive GRPO step
(and plain autograd would keep a float32 copy of the logits per chunk for the backward pass). Here
`selected_logprobs` is a custom autograd Function: the forward pass walks the logits in chunks of
rows, upcasts one chunk at a time, and keeps only the chosen logit minus the logsumexp (plus
entropy / argmax on request); it saves the logits as they are (the model's dtype, no copy) and the
(M,) logsumexp, and the backward pass recomputes softmax chunk by chunk:
    d logp / d logits = (onehot(label) - softmax(logits / temp)) / temp.
Entropy (of softmax(logits / temperature), the sampling distribution) and token accuracy are
metrics: returned detached.

Batch layout accepted by `token_logprobs`: input_ids (N, P + T_c) = [left-padded prompt |
right-padded completion], so every completion starts at column P = prompt_len. attention_mask is 0
on the left prompt padding and on the right completion padding. Position ids are derived from the
attention mask (cumsum - 1), as HF generate and vLLM number them, so left padding does not shift
positions. Completion token at column P + j is scored by the logits of column P + j - 1.
"""

from __future__ import annotations

import inspect

import torch

DEFAULT_CHUNK = 256
"""Rows of (V,) logits upcast at once: 256 x 152k vocab x 4 bytes ~ 155 MB."""


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # float64 stays float64 (gradcheck); bf16/fp16/fp32 compute in float32.
    return torch.promote_types(dtype, torch.float32)


class _SelectedLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, rows, labels, temperature, chunk_size, with_entropy, with_argmax):
        # logits (R, V); rows (M,) indices into R; labels (M,)
        cdt = _compute_dtype(logits.dtype)
        M = rows.numel()
        logp = logits.new_empty(M, dtype=cdt)  # (M,)
        lse = logits.new_empty(M, dtype=cdt)  # (M,)
        entropy = logits.new_empty(M if with_entropy else 0, dtype=cdt)  # (M,) or (0,)
        correct = logits.new_empty(M if with_argmax else 0, dtype=torch.bool)  # (M,) or (0,)
        for s in range(0, M, chunk_size):
            e = min(s + chunk_size, M)
            z = logits[rows[s:e]].to(cdt)  # (c, V)
            if temperature != 1.0:
                z = z / temperature
            lse_c = torch.logsumexp(z, dim=-1)  # (c,)
            lse[s:e] = lse_c
            logp[s:e] = z.gather(-1, labels[s:e, None]).squeeze(-1) - lse_c
            if with_entropy:
                # -(p * log p) on centred log-probs: no cancellation for peaked distributions.
                lsm = z - lse_c[:, None]  # (c, V)
                entropy[s:e] = -(lsm.exp() * lsm).sum(-1)
                del lsm
            if with_argmax:
                correct[s:e] = z.argmax(dim=-1) == labels[s:e]
        ctx.save_for_backward(logits, rows, labels, lse)
        ctx.temperature, ctx.chunk_size = temperature, chunk_size
        ctx.mark_non_differentiable(entropy, correct)
        return logp, entropy, correct

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy, _grad_correct):
        logits, rows, labels, lse = ctx.saved_tensors
        temperature, chunk_size = ctx.temperature, ctx.chunk_size
        cdt = lse.dtype
        grad_logits = torch.zeros_like(logits)  # (R, V)
        for s in range(0, rows.numel(), chunk_size):
            e = min(s + chunk_size, rows.numel())
            z = logits[rows[s:e]].to(cdt)  # (c, V)
            if temperature != 1.0:
                z = z / temperature
            g = grad_logp[s:e, None].to(cdt)  # (c, 1)
            grad = -torch.exp(z - lse[s:e, None]) * g  # (c, V)
            grad.scatter_add_(-1, labels[s:e, None], g)
            if temperature != 1.0:
                grad = grad / temperature
            # rows are unique, so index_put without accumulate is exact.
            grad_logits[rows[s:e]] = grad.to(logits.dtype)
        return grad_logits, None, None, None, None, None, None


def selected_logprobs(
    logits: torch.Tensor,
    rows: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK,
    with_entropy: bool = False,
    with_argmax: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """log softmax(logits[rows] / temperature)[labels], chunked, memory-aware.

    logits (R, V) any float dtype; rows (M,) unique row indices; labels (M,) token ids.
    Returns (logp (M,) float32 with grad, entropy (M,) detached or None, argmax == label (M,) or None).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (R, V), got shape {tuple(logits.shape)}")
    if rows.shape != labels.shape or rows.dim() != 1:
        raise ValueError(f"rows {tuple(rows.shape)} and labels {tuple(labels.shape)} must be equal 1-D shapes")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    V = logits.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= V):
        bad = labels[(labels < 0) | (labels >= V)][0].item()
        raise ValueError(f"token id {bad} is outside the vocabulary of {V} logits")
    logp, entropy, correct = _SelectedLogprobs.apply(
        logits, rows.long(), labels.long(), float(temperature), int(chunk_size), with_entropy, with_argmax
    )
    return logp, (entropy if with_entropy else None), (correct if with_argmax else None)


def logprobs_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, *, chunk_size: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """(..., V) logits, (...) labels -> (...) float32 log-probs of the labels under logits / temperature."""
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    flat = logits.reshape(-1, logits.shape[-1])  # (R, V) (a view when logits is contiguous)
    rows = torch.arange(flat.shape[0], device=logits.device)  # (R,)
    logp, _, _ = selected_logprobs(flat, rows, labels.reshape(-1), temperature=temperature,
                                   chunk_size=chunk_size)
    return logp.view(labels.shape)  # (...)


def _accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps forward
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False


def token_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    prompt_len: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward of `model` -> (logp (N, T_c), entropy (N, T_c) or None) of the completion tokens.

    input_ids / attention_mask: (N, P + T_c) in the [left-padded prompt | right-padded completion]
    layout, P = prompt_len. logp keeps its grad path when the model has one; entropy is detached.
    Completion positions where attention_mask is 0 (right padding) get 0 in both outputs.
    """
    if input_ids.dim() != 2 or input_ids.shape != attention_mask.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} "
            "must be equal (N, L) shapes"
        )
    N, L = input_ids.shape
    if not 1 <= prompt_len <= L:
        raise ValueError(f"prompt_len must be in [1, {L}] for input of length {L}, got {prompt_len}")
    T_c = L - prompt_len
    comp_mask = attention_mask[:, prompt_len:].bool()  # (N, T_c)
    position_ids = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)  # (N, L)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
              "use_cache": False}
    if _accepts_logits_to_keep(model):
        # Only the LM head rows we need: positions P-1 .. L-1 (the last one is dropped below).
        kwargs["logits_to_keep"] = T_c + 1
    logits = model(**kwargs).logits  # (N, K, V), the last K positions (K = T_c + 1 or L)
    K, V = logits.shape[1], logits.shape[2]
    # Completion column P + j is predicted at column P + j - 1; in the kept positions that is
    # index K - (T_c + 1) + j (works for full logits, K = L, as well).
    first = K - (T_c + 1)
    flat = logits.reshape(N * K, V)  # (N*K, V), a view
    n_idx, j_idx = comp_mask.nonzero(as_tuple=True)  # (M,), (M,) only real completion tokens
    rows = n_idx * K + first + j_idx  # (M,)
    labels = input_ids[:, prompt_len:][n_idx, j_idx]  # (M,)
    logp_sel, ent_sel, _ = selected_logprobs(
        flat, rows, labels, temperature=temperature, chunk_size=chunk_size, with_entropy=with_entropy
    )
    logp = logp_sel.new_zeros(N, T_c).index_put((n_idx, j_idx), logp_sel)  # (N, T_c)
    entropy = None
    if with_entropy:
        entropy = ent_sel.new_zeros(N, T_c).index_put((n_idx, j_idx), ent_sel)  # (N, T_c)
    return logp, entropy
