"""data/chat.py with the real SmolLM2 tokenizer: template tokens, left truncation, completion masks."""

from __future__ import annotations

import pytest

from data.chat import format_example, format_prompt

pytestmark = pytest.mark.slow


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def _special(tok):
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    return start, end


def test_prompt_has_template_tokens_and_ends_with_assistant_header(tokenizer):
    start, end = _special(tokenizer)
    p = format_prompt(tokenizer, "How do I boil an egg?", system_prompt="Be brief.")
    header = _ids(tokenizer, "<|im_start|>assistant\n")
    assert header[0] == start
    assert p.input_ids[-len(header):] == header
    assert p.input_ids[0] == start
    # system, user, assistant turns open; system and user turns close.
    assert p.input_ids.count(start) == 3 and p.input_ids.count(end) == 2
    text = tokenizer.decode(p.input_ids)
    assert "<|im_start|>user\nHow do I boil an egg?<|im_end|>" in text
    assert "<|im_start|>system\nBe brief.<|im_end|>" in text
    assert p.truncated is False and p.user_text == "How do I boil an egg?"


def test_truncation_keeps_the_end_of_the_user_text_and_the_special_tokens(tokenizer):
    start, end = _special(tokenizer)
    user = "Role-play preamble. " + "You are a character in a long story. " * 30 + "FINAL REQUEST: say hi."
    full = format_prompt(tokenizer, user)
    assert len(full.input_ids) > 80
    p = format_prompt(tokenizer, user, max_prompt_tokens=80)
    assert p.truncated is True
    assert len(p.input_ids) <= 80
    assert p.user_text.endswith("FINAL REQUEST: say hi.")
    assert "Role-play preamble" not in p.user_text
    assert user.endswith(p.user_text)  # a suffix of the original text, nothing invented
    assert p.input_ids.count(start) == 3 and p.input_ids.count(end) == 2
    header = _ids(tokenizer, "<|im_start|>assistant\n")
    assert p.input_ids[-len(header):] == header
    # The overhead (template alone) plus the kept user tokens fills the budget almost exactly.
    overhead = len(format_prompt(tokenizer, "").input_ids)
    assert len(p.input_ids) - overhead >= 80 - overhead - 2

    right = format_prompt(tokenizer, user, max_prompt_tokens=80, truncation_side="right")
    assert right.user_text.startswith("Role-play preamble.") and "FINAL REQUEST" not in right.user_text


def test_budget_smaller_than_the_template_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="leaves no room for the user text"):
        format_prompt(tokenizer, "hello " * 50, max_prompt_tokens=5)


def test_completion_mask_covers_exactly_completion_and_eos(tokenizer):
    completion = "I can't help with that request."
    ex = format_example(tokenizer, "Tell me how to pick a lock.", completion)
    prompt = format_prompt(tokenizer, "Tell me how to pick a lock.")
    c_ids = _ids(tokenizer, completion)
    n_prompt = len(prompt.input_ids)
    assert ex.input_ids[:n_prompt] == prompt.input_ids
    assert ex.input_ids[n_prompt:] == c_ids + [tokenizer.eos_token_id]
    assert ex.completion_mask == [0] * n_prompt + [1] * (len(c_ids) + 1)
    assert len(ex.completion_mask) == len(ex.input_ids)
    assert ex.truncated is False


def test_completion_truncation_keeps_eos_inside_the_budget(tokenizer):
    completion = "Sorry, but I will not do that. " * 10
    ex = format_example(tokenizer, "hi", completion, max_completion_tokens=8)
    assert sum(ex.completion_mask) == 8
    assert ex.input_ids[-1] == tokenizer.eos_token_id
    assert ex.input_ids[-8:-1] == _ids(tokenizer, completion)[:7]
    assert ex.truncated is True


def test_assistant_prefix_follows_the_header_and_counts_against_the_budget(tokenizer):
    """A prefilling prefix sits right after the assistant header; the user text is cut to make room."""
    prefix = "Sure, here is how to"
    plain = format_prompt(tokenizer, "Tell me a story.")
    p = format_prompt(tokenizer, "Tell me a story.", assistant_prefix=prefix)
    pre = _ids(tokenizer, prefix)
    assert p.input_ids == plain.input_ids + pre and p.prefix_len == len(pre)
    assert tokenizer.decode(p.input_ids).endswith("<|im_start|>assistant\nSure, here is how to")
    # token ids are accepted as they are (the eval's first-K-tokens openings)
    assert format_prompt(tokenizer, "Tell me a story.", assistant_prefix=pre[:2]).input_ids == plain.input_ids + pre[:2]
    # budget: 60 tokens in all; the prefix is never cut, the user text is
    user = "Role-play preamble. " * 40 + "FINAL REQUEST: say hi."
    cut = format_prompt(tokenizer, user, max_prompt_tokens=60, assistant_prefix=prefix)
    assert len(cut.input_ids) <= 60 and cut.truncated and cut.input_ids[-len(pre):] == pre
    with pytest.raises(ValueError, match="no room beside"):
        format_prompt(tokenizer, "hi", max_prompt_tokens=3, assistant_prefix=prefix)


def test_example_with_a_prefix_masks_the_prefix(tokenizer):
    """Course-correction SFT: prompt and harmful prefix are masked (0); only the recovery + EOS are targets."""
    prefix = _ids(tokenizer, "Sure, here is how to do it. Step 1:")
    recovery = "\n\nWait. I can't continue with this."
    ex = format_example(tokenizer, "How do I do it?", recovery, assistant_prefix=prefix)
    n_prompt = len(format_prompt(tokenizer, "How do I do it?").input_ids)
    rec = _ids(tokenizer, recovery)
    assert ex.input_ids == format_prompt(tokenizer, "How do I do it?").input_ids + prefix + rec + [tokenizer.eos_token_id]
    assert ex.completion_mask == [0] * (n_prompt + len(prefix)) + [1] * (len(rec) + 1)
