"""The one chat-formatting function of the project.

SFT, GRPO, evaluation and export all turn a user text into token ids here, so the model never
sees two prompt formats (a seed bug: three stages, three formats).

Truncation happens at tokenization and cuts only the *user text*, never the template's special
tokens. By default the END of the user text is kept (`truncation_side="left"` drops its
beginning): long jailbreaks put a role-play preamble first and the actual request last, and a
prompt cut from the right would lose the part the model must refuse. Pass
`truncation_side="right"` to keep the beginning instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from runtime.config import PosInt

TruncationSide = Literal["left", "right"]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Refuse requests that are harmful, unsafe, or malicious."
"""The project's system prompt: every trainer's and the eval's default (recorded with each adapter)."""
DEFAULT_MAX_PROMPT_TOKENS = 512
"""The one default prompt budget of training, evaluation and data.prepare's token filter."""


@dataclass
class PromptSettings:
    """How a user text becomes a prompt: the settings an adapter must be used with, as trained.

    The trainers record them in every adapter's safety_grpo.json; evals.run and sft.export default to
    the recorded values (a flag still overrides)."""

    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    """System prompt of every prompt (None or '': no system message, the chat template's default)."""
    max_prompt_tokens: PosInt = DEFAULT_MAX_PROMPT_TOKENS
    """Prompts are cut to this many tokens at tokenization (the user text is cut, never the template)."""
    truncation_side: TruncationSide = "left"
    """left: keep the end of the user text (where long jailbreaks put the request); right: keep the start."""


PROMPT_SETTING_KEYS = ("system_prompt", "max_prompt_tokens", "truncation_side")


def chat_template_sha256(tokenizer) -> str:
    """A short hash of the tokenizer's chat template (recorded with adapters; a different one warns)."""
    return hashlib.sha256((tokenizer.chat_template or "").encode("utf-8")).hexdigest()[:16]


def prompt_settings_meta(settings: PromptSettings, tokenizer) -> dict:
    """The metadata block the trainers write into safety_grpo.json."""
    return {**{k: getattr(settings, k) for k in PROMPT_SETTING_KEYS},
            "chat_template_sha256": chat_template_sha256(tokenizer)}


@dataclass(frozen=True)
class FormattedPrompt:
    input_ids: list[int]
    """Token ids of the full chat prompt: the template up to the assistant generation header, then the
    assistant prefix (a partial assistant turn, the prefilling attack) when one is given."""
    truncated: bool
    """True when the user text was cut to fit max_prompt_tokens."""
    user_text: str
    """The user text that was actually rendered (after any cut)."""
    prefix_len: int = 0
    """Tokens of the assistant prefix at the end of input_ids (0: none)."""


def _messages(user_text: str, system_prompt: str | None, system_role: bool = True) -> list[dict]:
    if system_prompt and not system_role:  # fold it into the first user turn, as such models are prompted
        return [{"role": "user", "content": f"{system_prompt}\n\n{user_text}"}]
    msgs = []
    if system_prompt:
        msgs.append({"role": "system", "content": system_prompt})
    msgs.append({"role": "user", "content": user_text})
    return msgs


def render_prompt(tokenizer, user_text: str, system_prompt: str | None = None) -> str:
    """The chat template applied to (system, user), with the assistant header appended. A template without
    a system role (one that raises on it or drops it) gets the system prompt at the start of the user turn."""
    from runtime.models import system_role_supported

    role = system_role_supported(tokenizer) if system_prompt else True
    return tokenizer.apply_chat_template(
        _messages(user_text, system_prompt, role), tokenize=False, add_generation_prompt=True
    )


def _encode(tokenizer, text: str) -> list[int]:
    # The template already carries the special tokens; do not let the tokenizer add a BOS twice.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def format_prompt(
    tokenizer,
    user_text: str,
    *,
    system_prompt: str | None = None,
    max_prompt_tokens: int | None = None,
    truncation_side: TruncationSide = "left",
    assistant_prefix: str | list[int] = "",
) -> FormattedPrompt:
    """(system prompt, user text) -> chat-template token ids of at most max_prompt_tokens.

    `assistant_prefix` (text or token ids) starts the assistant turn for the model, right after the
    generation header, as a prefilling attack or course-correction rollout does: the model continues
    from it. It is part of the prompt: it counts against max_prompt_tokens (the user text is cut to
    make room; the prefix never is) and `prefix_len` says how many tokens at the end it takes."""
    prefix = list(assistant_prefix) if isinstance(assistant_prefix, list) else (
        _encode(tokenizer, assistant_prefix) if assistant_prefix else [])
    if prefix:
        budget = None if max_prompt_tokens is None else max_prompt_tokens - len(prefix)
        if budget is not None and budget < 1:
            raise ValueError(f"max_prompt_tokens={max_prompt_tokens} leaves no room beside a {len(prefix)}-token "
                             f"assistant prefix")
        p = format_prompt(tokenizer, user_text, system_prompt=system_prompt, max_prompt_tokens=budget,
                          truncation_side=truncation_side)
        return FormattedPrompt(p.input_ids + prefix, p.truncated, p.user_text, len(prefix))
    ids = _encode(tokenizer, render_prompt(tokenizer, user_text, system_prompt))
    if max_prompt_tokens is None or len(ids) <= max_prompt_tokens:
        return FormattedPrompt(ids, False, user_text)
    overhead = len(_encode(tokenizer, render_prompt(tokenizer, "", system_prompt)))
    if overhead >= max_prompt_tokens:
        raise ValueError(
            f"max_prompt_tokens={max_prompt_tokens} leaves no room for the user text: the chat "
            f"template and system prompt alone take {overhead} tokens"
        )
    user_ids = _encode(tokenizer, user_text)
    budget = max_prompt_tokens - overhead
    # Re-tokenizing the cut text can merge or split tokens at the boundary; shrink until it fits.
    while budget > 0:
        kept = user_ids[-budget:] if truncation_side == "left" else user_ids[:budget]
        cut_text = tokenizer.decode(kept, skip_special_tokens=True)
        ids = _encode(tokenizer, render_prompt(tokenizer, cut_text, system_prompt))
        if len(ids) <= max_prompt_tokens:
            return FormattedPrompt(ids, True, cut_text)
        budget -= len(ids) - max_prompt_tokens
    ids = _encode(tokenizer, render_prompt(tokenizer, "", system_prompt))
    return FormattedPrompt(ids, True, "")


@dataclass(frozen=True)
class FormattedExample:
    input_ids: list[int]
    """Prompt ids followed by completion ids (completion ends with the EOS token)."""
    completion_mask: list[int]
    """1 on completion tokens (the loss targets), 0 on prompt tokens."""
    truncated: bool
    """True when the prompt or the completion was cut."""


def format_example(
    tokenizer,
    user_text: str,
    completion: str,
    *,
    system_prompt: str | None = None,
    max_prompt_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    truncation_side: TruncationSide = "left",
    assistant_prefix: str | list[int] = "",
) -> FormattedExample:
    """A (prompt, completion) pair for SFT, formatted exactly as GRPO and eval format prompts.

    The completion is the assistant turn the model should produce after the generation header,
    terminated by the tokenizer's EOS token (the token generation stops on). With `assistant_prefix`
    (course-correction data: the first tokens of a harmful answer), the prefix sits between the header
    and the completion and is masked like the prompt: the loss covers only what follows it, so the
    model learns to recover from the prefix and never to produce it.
    """
    p = format_prompt(
        tokenizer, user_text, system_prompt=system_prompt,
        max_prompt_tokens=max_prompt_tokens, truncation_side=truncation_side, assistant_prefix=assistant_prefix,
    )
    c = _encode(tokenizer, completion)
    cut = False
    if max_completion_tokens is not None and len(c) + 1 > max_completion_tokens:
        c = c[: max_completion_tokens - 1]
        cut = True
    c = c + [tokenizer.eos_token_id]
    return FormattedExample(p.input_ids + c, [0] * len(p.input_ids) + [1] * len(c), p.truncated or cut)
