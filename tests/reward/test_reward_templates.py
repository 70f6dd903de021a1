"""The project's own 25 refusal templates, tokenized with the real SmolLM2 tokenizer, are never
penalized by any shaping term and get the full malicious-refusal reward (seed bugs: 10 templates
hit the short-answer penalty; one scored as a non-refusal because of its apostrophe)."""

from __future__ import annotations

import pytest

from data.templates import REFUSAL_TEMPLATES
from reward.functions import DegenerateConfig, RewardConfig, RewardTerm, score

pytestmark = pytest.mark.slow

MAX_COMPLETION_TOKENS = 64  # the CPU demo's completion budget


def token_lengths(tokenizer, texts):
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


@pytest.mark.parametrize("apostrophe", ["'", "\u2019"])
def test_templates_get_full_reward_and_no_penalty(tokenizer, apostrophe):
    texts = [t.replace("'", apostrophe) for t in REFUSAL_TEMPLATES]
    lengths = token_lengths(tokenizer, texts)
    truncated = [n >= MAX_COMPLETION_TOKENS for n in lengths]
    assert not any(truncated), lengths
    assert min(lengths) >= DegenerateConfig().min_tokens
    cfg = RewardConfig(terms=[RewardTerm(name=n) for n in
                              ("refusal", "degenerate", "truncation", "unsafe_markers", "length_bonus")])
    n = len(texts)
    rewards, names, _, _ = score(cfg, ["prompt"] * n, texts, ["malicious"] * n, lengths, truncated)
    for i in range(n):
        assert rewards[i].tolist() == pytest.approx([1.2, 0.0, 0.0, 0.0, 0.0]), (i, texts[i])


def test_token_lengths_differ_from_word_counts(tokenizer):
    # The length bonus uses tokens: for this answer tokens != words, and the bonus follows tokens.
    text = "Use `pd.read_csv('data.csv', sep=';')` then `df.groupby('id').sum()`."
    (n_tok,) = token_lengths(tokenizer, [text])
    n_words = len(text.split())
    assert n_tok != n_words
    rewards, _, _, _ = score(RewardConfig(terms=[RewardTerm(name="length_bonus")]), ["p"], [text], ["benign"],
                             [n_tok], [False])
    assert rewards[0, 0].item() == pytest.approx(min(n_tok / 120, 0.3))
