"""sft.loss.completion_loss: vs F.cross_entropy(ignore_index=-100), prompt positions inert, hand values."""

import math

import pytest
import torch
import torch.nn.functional as F

from sft.loss import completion_loss


def _batch(seed=0, B=3, T=8, V=17):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * 2
    ids = torch.randint(0, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    mask[0, 3:] = 1  # prompt of 3 tokens
    mask[1, 5:7] = 1  # completion followed by padding
    mask[2, 0:4] = 1  # completion_mask set at t = 0: that position has no previous logits, ignored
    return logits, ids, mask


def _reference(logits, ids, mask):
    labels = torch.where(mask.bool(), ids, -100)[:, 1:]  # (B, T-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@pytest.mark.parametrize("chunk_size", [1, 4, 256])
def test_matches_cross_entropy_value_and_gradient(chunk_size):
    logits, ids, mask = _batch()
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    loss, m = completion_loss(a, ids, mask, chunk_size=chunk_size)
    ref = _reference(b, ids, mask)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
    # 5 + 2 + 3 tokens (row 2's t = 0 does not count).
    assert m["num_tokens"] == 10
    assert m["loss"] == pytest.approx(ref.item(), rel=1e-6)


def test_sum_reduction_gives_exact_token_mean_over_micro_batches():
    logits, ids, mask = _batch()
    full, m = completion_loss(logits, ids, mask)
    parts = [completion_loss(logits[s], ids[s], mask[s], reduction="sum") for s in (slice(0, 1), slice(1, 3))]
    total_tokens = sum(p[1]["num_tokens"] for p in parts)
    assert total_tokens == m["num_tokens"]
    assert (sum(p[0] for p in parts) / total_tokens).item() == pytest.approx(full.item(), rel=1e-6)


def test_prompt_positions_never_contribute():
    logits, ids, mask = _batch()
    x = logits.clone().requires_grad_(True)
    loss, _ = completion_loss(x, ids, mask)
    loss.backward()
    # Logits at t - 1 are used only where mask[:, t] == 1.
    used = torch.zeros_like(mask, dtype=torch.bool)
    used[:, :-1] = mask[:, 1:].bool()
    assert x.grad[~used].eq(0).all() and x.grad[used].abs().sum() > 0
    changed = logits.clone()
    changed[~used] = torch.randn_like(changed[~used]) * 50  # wild prompt/padding logits
    assert completion_loss(changed, ids, mask)[0].item() == loss.item()
    # ... and changing the prompt token ids (not the scored ones) changes nothing either.
    ids2 = ids.clone()
    ids2[0, :3] = (ids2[0, :3] + 1) % 17
    assert completion_loss(logits, ids2, mask)[0].item() == loss.item()


def test_hand_values():
    # ids [0, 1, 2, 1], mask [0, 0, 1, 1]: token 2 is scored by logits[1], token 1 (t = 3) by logits[2].
    # logits[1] = [0, 0, ln 2] -> p = [1/4, 1/4, 1/2]: -log p(2) = ln 2, argmax 2 == label (correct).
    # logits[2] = [ln 2, 0, 0] -> p = [1/2, 1/4, 1/4]: -log p(1) = ln 4, argmax 0 != 1 (wrong).
    # loss = (ln 2 + 2 ln 2) / 2 = 1.5 ln 2; accuracy 1/2.
    # entropy of both rows = 2 * (1/4) ln 4 + (1/2) ln 2 = 1.5 ln 2.
    ln2 = math.log(2)
    logits = torch.tensor([[[9.0, 9, 9], [0, 0, ln2], [ln2, 0, 0], [5, 5, 5]]])
    loss, m = completion_loss(logits, torch.tensor([[0, 1, 2, 1]]), torch.tensor([[0, 0, 1, 1]]))
    assert loss.item() == pytest.approx(1.5 * ln2, rel=1e-6)
    assert m["token_accuracy"] == 0.5
    assert m["entropy"] == pytest.approx(1.5 * ln2, rel=1e-6)
    assert m["num_tokens"] == 2


def test_empty_mask_gives_zero_not_nan_with_grad_path():
    logits, ids, _ = _batch()
    x = logits.clone().requires_grad_(True)
    for reduction in ("mean", "sum"):
        loss, m = completion_loss(x, ids, torch.zeros_like(ids), reduction=reduction)
        assert loss.item() == 0.0 and loss.requires_grad
        assert m == {"loss": 0.0, "token_accuracy": 0.0, "entropy": 0.0, "num_tokens": 0.0}
        loss.backward()
    assert x.grad.eq(0).all()


def test_bf16_logits_give_float32_loss():
    logits, ids, mask = _batch()
    loss, _ = completion_loss(logits.bfloat16(), ids, mask)
    assert loss.dtype == torch.float32
    ref = _reference(logits.bfloat16().float(), ids, mask)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)


def test_bad_inputs_are_errors():
    logits, ids, mask = _batch()
    with pytest.raises(ValueError, match=r"must be \(3, 8\) like logits"):
        completion_loss(logits, ids[:, :5], mask)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        completion_loss(logits[0], ids, mask)
    with pytest.raises(ValueError, match="reduction"):
        completion_loss(logits, ids, mask, reduction="none")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        completion_loss(logits, ids + 17, mask)
