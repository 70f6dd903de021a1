"""runtime.logprobs: the chunked log-prob kernel vs cross_entropy / naive log_softmax, and token_logprobs
on a tiny random LlamaForCausalLM vs a naive per-row full forward."""

import pytest
import torch
import torch.nn.functional as F

from runtime.logprobs import logprobs_from_logits, selected_logprobs, token_logprobs


def _logits(R=11, V=13, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(R, V, generator=g) * 3).to(dtype), torch.randint(0, V, (R,), generator=g)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
@pytest.mark.parametrize("chunk_size", [1, 4, 256])
def test_logprobs_from_logits_matches_cross_entropy_and_naive(temperature, chunk_size):
    logits, labels = _logits()
    got = logprobs_from_logits(logits, labels, temperature, chunk_size=chunk_size)
    ce = -F.cross_entropy(logits / temperature, labels, reduction="none")
    naive = torch.log_softmax(logits / temperature, dim=-1).gather(-1, labels[:, None]).squeeze(-1)
    torch.testing.assert_close(got, ce, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got, naive, rtol=1e-6, atol=1e-6)


def test_logprobs_from_logits_keeps_leading_shape_and_bf16_upcasts():
    logits, labels = _logits(R=12)
    got = logprobs_from_logits(logits.view(3, 4, 13), labels.view(3, 4), 0.9)
    assert got.shape == (3, 4) and got.dtype == torch.float32
    bf = logits.to(torch.bfloat16)
    got_bf = logprobs_from_logits(bf, labels, chunk_size=5)
    ref = torch.log_softmax(bf.float(), -1).gather(-1, labels[:, None]).squeeze(-1)
    assert got_bf.dtype == torch.float32
    torch.testing.assert_close(got_bf, ref, rtol=1e-6, atol=1e-6)  # same bf16 inputs, float32 math


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_custom_backward_gradcheck(temperature):
    logits, labels = _logits(R=6, V=7)
    x = logits.double().requires_grad_(True)
    rows = torch.tensor([5, 0, 3])  # a subset of rows, out of order
    fn = lambda z: selected_logprobs(z, rows, labels[:3], temperature=temperature, chunk_size=2)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6)


def test_gradient_matches_autograd_of_naive_with_unselected_rows_zero():
    logits, labels = _logits()
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    rows = torch.tensor([0, 2, 3, 9])
    w = torch.tensor([0.5, -1.0, 2.0, 1.5])
    (selected_logprobs(a, rows, labels[rows], temperature=0.8, chunk_size=3)[0] * w).sum().backward()
    (torch.log_softmax(b[rows] / 0.8, -1).gather(-1, labels[rows, None]).squeeze(-1) * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)
    assert a.grad[[1, 4, 5, 6, 7, 8, 10]].eq(0).all()


def test_entropy_and_argmax_match_naive():
    logits, labels = _logits()
    labels[:4] = logits[:4].argmax(-1)  # make some predictions correct
    logp, ent, correct = selected_logprobs(logits, torch.arange(11), labels, temperature=0.5, chunk_size=3,
                                           with_entropy=True, with_argmax=True)
    lsm = torch.log_softmax(logits / 0.5, -1)
    torch.testing.assert_close(ent, -(lsm.exp() * lsm).sum(-1), rtol=1e-5, atol=1e-6)
    assert torch.equal(correct, logits.argmax(-1) == labels) and correct[:4].all()
    assert not ent.requires_grad


def test_bad_inputs_are_errors():
    logits, labels = _logits()
    with pytest.raises(ValueError, match="token id 13 is outside the vocabulary of 13"):
        selected_logprobs(logits, torch.arange(2), torch.tensor([1, 13]))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        logprobs_from_logits(logits, labels, 0.0)
    with pytest.raises(ValueError, match="do not match"):
        logprobs_from_logits(logits, labels[:3])


# ------------------------------ token_logprobs on a tiny Llama --------------------------------
@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


class NoLogitsToKeep(torch.nn.Module):
    """A model whose forward has no logits_to_keep: token_logprobs must slice full logits itself."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, use_cache=False):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=use_cache)


PROMPTS = [[5, 9, 11], [7, 8, 20, 21, 33], [40, 41, 42, 43]]
COMPLETIONS = [[12, 13, 2, 50], [22, 2], [44, 45, 46]]


def _batch():
    P = max(map(len, PROMPTS))
    Tc = max(map(len, COMPLETIONS))
    ids = torch.zeros(len(PROMPTS), P + Tc, dtype=torch.long)
    am = torch.zeros_like(ids)
    for i, (p, c) in enumerate(zip(PROMPTS, COMPLETIONS)):
        ids[i, P - len(p):P] = torch.tensor(p)  # left-padded prompt
        ids[i, P:P + len(c)] = torch.tensor(c)  # right-padded completion
        am[i, P - len(p):P + len(c)] = 1
    return ids, am, P


def _naive(model, temperature):
    """Each row alone, unpadded, full log_softmax over all positions."""
    out, ent = [], []
    for p, c in zip(PROMPTS, COMPLETIONS):
        seq = torch.tensor([p + c])
        logits = model(input_ids=seq).logits[0] / temperature  # (L, V)
        lsm = torch.log_softmax(logits, -1)
        pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
        out.append(lsm[pos, torch.tensor(c)])
        ent.append(-(lsm[pos].exp() * lsm[pos]).sum(-1))
    return out, ent


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logprobs_matches_naive_per_row_forward(tiny_llama, temperature):
    ids, am, P = _batch()
    with torch.no_grad():
        naive, naive_ent = _naive(tiny_llama, temperature)
        results = [
            token_logprobs(tiny_llama, ids, am, prompt_len=P, temperature=temperature, with_entropy=True,
                           chunk_size=cs)
            for cs in (1, 3, 256)
        ]
        results.append(token_logprobs(NoLogitsToKeep(tiny_llama), ids, am, prompt_len=P,
                                      temperature=temperature, with_entropy=True))
        no_ent = token_logprobs(tiny_llama, ids, am, prompt_len=P, temperature=temperature)
    for logp, ent in results:
        assert logp.shape == (3, 4) and ent.shape == (3, 4)
        for i, c in enumerate(COMPLETIONS):
            torch.testing.assert_close(logp[i, :len(c)], naive[i], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ent[i, :len(c)], naive_ent[i], rtol=1e-5, atol=1e-5)
            assert logp[i, len(c):].eq(0).all() and ent[i, len(c):].eq(0).all()  # padding -> 0
    assert no_ent[1] is None
    torch.testing.assert_close(no_ent[0], results[0][0])
    # Chunking changes nothing: identical numbers for chunk sizes 1, 3, 256.
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-6)
    torch.testing.assert_close(results[0][0], results[2][0], rtol=0, atol=1e-6)


def test_left_padding_positions_with_absolute_position_embeddings():
    # Llama's RoPE only sees relative positions, so a left-padding offset cannot show there; GPT-2 adds
    # absolute position embeddings, so this fails unless position ids are taken from the attention mask.
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32)).eval()
    ids, am, P = _batch()
    with torch.no_grad():
        naive, _ = _naive(gpt2, 0.9)
        logp, _ = token_logprobs(gpt2, ids, am, prompt_len=P, temperature=0.9)
    for i, c in enumerate(COMPLETIONS):
        torch.testing.assert_close(logp[i, :len(c)], naive[i], rtol=1e-5, atol=1e-5)


def test_token_logprobs_gradient_matches_naive(tiny_llama):
    ids, am, P = _batch()
    tiny_llama.zero_grad()
    logp, _ = token_logprobs(tiny_llama, ids, am, prompt_len=P, temperature=0.8, chunk_size=2)
    logp.sum().backward()
    got = {n: p.grad.clone() for n, p in tiny_llama.named_parameters()}
    tiny_llama.zero_grad()
    sum(x.sum() for x in _naive(tiny_llama, 0.8)[0]).backward()
    for n, p in tiny_llama.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)
    tiny_llama.zero_grad()


def test_token_logprobs_bad_prompt_len(tiny_llama):
    ids, am, P = _batch()
    with pytest.raises(ValueError, match="prompt_len must be in"):
        token_logprobs(tiny_llama, ids, am, prompt_len=0)
    with pytest.raises(ValueError, match="must be equal"):
        token_logprobs(tiny_llama, ids, am[:, :3], prompt_len=P)
