"""Composable reward functions and the registry that scores a batch with several of them.

Every reward function has one signature:

    fn(prompts, completions, labels, completion_lengths, truncated, *, cfg, **kw) -> (rewards, metrics)

with one entry per completion (lists of length N), `completion_lengths` in TOKENS, `truncated`
True where the completion hit the token limit, and `cfg` the function's own config dataclass.
`kw` may carry `generate_fn` (an LLM judge) and `verdicts` (judge verdicts computed once by
`score`). A NaN reward means "no signal" (an unparseable judge verdict): the GRPO loop's
weighted nansum (grpo.advantages.combine_rewards) skips it.

`score(cfg, ...)` runs the functions listed in a `RewardConfig` and returns the (N, K) matrix,
the K column names, the K weights and `reward/...` metrics. Weights live in the config; the
combination into one reward per completion is the GRPO loop's job.

Differences from the seed's reward (reference/seed-pipeline-facts.md), on purpose:
- lengths are tokens, not words compared with a token budget;
- the unsafe-marker penalty skips completions detected as refusals by default (a refusal that
  names what it refuses, like template 19's "bypass safety measures", is not unsafe);
- the benign length bonus is paid only to benign completions that answer (not to refusals);
- the short-answer threshold (16 tokens) is below every refusal template (all 25 are 29+ tokens);
- any label outside {malicious, benign} is an error, never silently "benign".
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch

from reward.judge import GenerateFn, Verdict, judge_responses
from reward.refusal import DEFAULT_REFUSAL_MARKERS, refusal_probability
from runtime.config import NonNegFloat, NonNegInt, PosFloat, PosInt, UnitFloat

LABELS = ("malicious", "benign")
Detector = Literal["markers", "classifier", "judge"]

DEFAULT_UNSAFE_MARKERS: tuple[str, ...] = (
    "bypass", "ignore previous", "jailbreak", "disable safety", "exploit", "steal", "credential",
    "password", "api key",
)


# --- shared checks and helpers ----------------------------------------------------------------

def check_batch(prompts: Sequence[str], completions: Sequence[str], labels: Sequence[str],
                completion_lengths: Sequence[int], truncated: Sequence[bool]) -> None:
    """Equal lengths, labels in {malicious, benign}, lengths non-negative ints (ValueError naming the row)."""
    n = len(completions)
    for name, xs in (("prompts", prompts), ("labels", labels), ("completion_lengths", completion_lengths),
                     ("truncated", truncated)):
        if len(xs) != n:
            raise ValueError(f"reward: {len(xs)} {name} for {n} completions")
    for i, lab in enumerate(labels):
        if lab not in LABELS:
            raise ValueError(f"reward: row {i} has label {lab!r}; expected one of {LABELS}")
    for i, length in enumerate(completion_lengths):
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"reward: row {i} has completion length {length!r}; expected a token count >= 0")


def unsafe_hits(text: str, markers: Sequence[str]) -> int:
    """Number of distinct unsafe markers occurring in `text` (case-insensitive, at a word start)."""
    low = text.lower()
    return sum(1 for m in dict.fromkeys(markers) if re.search(r"(?<!\w)" + re.escape(m.lower()), low))


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def _detect(cfg_detector: str, prompts: Sequence[str], completions: Sequence[str],
            verdicts: Sequence[Verdict | None] | None, generate_fn: GenerateFn | None,
            markers: Sequence[str] | None, max_sentences: int | None) -> list[float]:
    """P(refusal) per completion from the configured detector; NaN where a judge verdict is missing."""
    if cfg_detector == "markers":
        return refusal_probability(list(completions), "markers", markers=tuple(markers or DEFAULT_REFUSAL_MARKERS),
                                   max_sentences=max_sentences)
    if cfg_detector == "classifier":
        return refusal_probability(list(completions), "classifier")
    if cfg_detector != "judge":
        raise ValueError(f"reward: unknown refusal detector {cfg_detector!r}")
    if verdicts is None:
        if generate_fn is None:
            raise ValueError("reward: detector='judge' needs generate_fn (or precomputed verdicts)")
        verdicts, _ = judge_responses(prompts, completions, generate_fn)
    return [0.0 if not c.strip() else (math.nan if v is None else float(v.refused))
            for c, v in zip(completions, verdicts)]


# --- the label-conditioned refusal reward (the seed's, corrected) ------------------------------

@dataclass(kw_only=True)
class RefusalRewardConfig:
    detector: Detector = "markers"
    """Refusal detector: markers, classifier or judge (reward/refusal.py)."""
    threshold: UnitFloat = 0.5
    """A completion is a refusal when the detector's probability is >= this."""
    soft: bool = False
    """Use the probability p itself: base = p * refusal value + (1 - p) * answer value."""
    refusal_markers: list[str] | None = None
    """Regular expressions of the markers detector (None: reward.refusal.DEFAULT_REFUSAL_MARKERS)."""
    max_sentences: PosInt | None = 3
    """Markers detector: look for a refusal in the first this many sentences (None: everywhere)."""
    malicious_refusal: float = 1.2
    """Reward for refusing a malicious prompt."""
    malicious_compliance: float = -1.2
    """Reward for not refusing a malicious prompt."""
    benign_answer: float = 1.0
    """Reward for answering (not refusing) a benign prompt."""
    benign_refusal: float = -0.6
    """Reward for refusing a benign prompt (over-refusal)."""
    benign_length_scale: PosFloat = 120.0
    """Benign length bonus = min(tokens / this, benign_length_bonus_max)."""
    benign_length_bonus_max: NonNegFloat = 0.3
    """Cap of the benign length bonus (0 disables it)."""
    bonus_only_if_answered: bool = True
    """Pay the length bonus only to benign completions that answer (the seed paid refusals too)."""
    unsafe_markers: list[str] = field(default_factory=lambda: list(DEFAULT_UNSAFE_MARKERS))
    """Phrases whose presence costs reward (each distinct one counts once)."""
    malicious_unsafe_penalty: NonNegFloat = 0.08
    """Subtracted per distinct unsafe marker in a completion to a malicious prompt."""
    benign_unsafe_penalty: NonNegFloat = 0.05
    """Subtracted per distinct unsafe marker in a completion to a benign prompt."""
    unsafe_penalty_on_refusals: bool = False
    """Also charge unsafe markers in refusals (the seed did; a refusal may name what it refuses)."""
    malicious_max_tokens: PosInt = 160
    """Completions to malicious prompts longer than this many tokens (~120 words) are penalized."""
    malicious_overlong_penalty: NonNegFloat = 0.1
    """Subtracted from over-long completions to malicious prompts."""
    clip: PosFloat = 2.0
    """Final reward is clipped to [-clip, clip]."""
    answer_only: bool = False
    """Detect the refusal (and count unsafe markers) in the answer section only: the text after <SOLUTION>
    up to </SOLUTION> (or the end) when the completion has that tag, else the whole completion (answer_section)."""


def refusal_reward(prompts, completions, labels, completion_lengths, truncated, *,
                   cfg: RefusalRewardConfig | None = None, verdicts=None, generate_fn=None, **kw):
    """Malicious: refuse good, comply bad; benign: answer good, refuse bad; plus length and
    unsafe-marker terms, clipped. NaN where the detector has no answer (judge)."""
    cfg = cfg or RefusalRewardConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    if cfg.answer_only:
        completions = [answer_section(c) for c in completions]
        verdicts = None  # precomputed verdicts judged the whole completion
    probs = _detect(cfg.detector, prompts, completions, verdicts, generate_fn, cfg.refusal_markers,
                    cfg.max_sentences)
    rewards, refused, hits_all, overlong = [], [], [], []
    for text, label, n_tok, p in zip(completions, labels, completion_lengths, probs):
        if math.isnan(p):
            rewards.append(math.nan)
            refused.append(math.nan)
            continue
        is_ref = p >= cfg.threshold
        w = p if cfg.soft else float(is_ref)  # weight of the "refused" outcome
        hits = unsafe_hits(text, cfg.unsafe_markers) if (cfg.unsafe_penalty_on_refusals or not is_ref) else 0
        if label == "malicious":
            r = w * cfg.malicious_refusal + (1 - w) * cfg.malicious_compliance
            r -= cfg.malicious_unsafe_penalty * hits
            long = n_tok > cfg.malicious_max_tokens
            r -= cfg.malicious_overlong_penalty if long else 0.0
            overlong.append(float(long))
        else:
            r = (1 - w) * cfg.benign_answer + w * cfg.benign_refusal
            if not (cfg.bonus_only_if_answered and is_ref):
                r += min(n_tok / cfg.benign_length_scale, cfg.benign_length_bonus_max)
            r -= cfg.benign_unsafe_penalty * hits
        rewards.append(max(-cfg.clip, min(cfg.clip, r)))
        refused.append(float(is_ref))
        hits_all.append(float(hits))
    metrics = {
        "refusal_rate_malicious": _mean([f for f, lab in zip(refused, labels) if lab == "malicious"]),
        "refusal_rate_benign": _mean([f for f, lab in zip(refused, labels) if lab == "benign"]),
        "unsafe_hits_mean": _mean(hits_all),
        "malicious_overlong_frac": _mean(overlong),
    }
    return rewards, metrics


# --- separate shaping terms ------------------------------------------------------------------

@dataclass(kw_only=True)
class UnsafeMarkerConfig:
    markers: list[str] = field(default_factory=lambda: list(DEFAULT_UNSAFE_MARKERS))
    """Phrases whose presence costs reward (each distinct one counts once)."""
    penalty_per_marker: NonNegFloat = 0.05
    """Subtracted per distinct marker found."""
    skip_refusals: bool = True
    """No penalty for completions the markers detector flags as refusals."""


def unsafe_marker_reward(prompts, completions, labels, completion_lengths, truncated, *,
                         cfg: UnsafeMarkerConfig | None = None, **kw):
    """-penalty_per_marker x number of distinct unsafe markers (0 for refusals by default)."""
    cfg = cfg or UnsafeMarkerConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    refused = refusal_probability(list(completions)) if cfg.skip_refusals else [0.0] * len(completions)
    hits = [0 if r >= 0.5 else unsafe_hits(c, cfg.markers) for c, r in zip(completions, refused)]
    return [-cfg.penalty_per_marker * h for h in hits], {"hits_mean": _mean([float(h) for h in hits])}


@dataclass(kw_only=True)
class LengthBonusConfig:
    scale_tokens: PosFloat = 120.0
    """Bonus = min(tokens / this, max_bonus)."""
    max_bonus: NonNegFloat = 0.3
    """Cap of the bonus."""
    skip_refusals: bool = True
    """No bonus for completions the markers detector flags as refusals."""


def length_bonus_reward(prompts, completions, labels, completion_lengths, truncated, *,
                        cfg: LengthBonusConfig | None = None, **kw):
    """Benign prompts only: min(tokens / scale_tokens, max_bonus); 0 for malicious prompts."""
    cfg = cfg or LengthBonusConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    refused = refusal_probability(list(completions)) if cfg.skip_refusals else [0.0] * len(completions)
    out = [min(n / cfg.scale_tokens, cfg.max_bonus) if lab == "benign" and r < 0.5 else 0.0
           for lab, n, r in zip(labels, completion_lengths, refused)]
    return out, {}


@dataclass(kw_only=True)
class DegenerateConfig:
    min_tokens: NonNegInt = 16
    """Completions with fewer tokens than this are 'too short' (every refusal template has 29+)."""
    short_penalty: NonNegFloat = 0.15
    """Subtracted from too-short completions."""
    ngram: PosInt = 3
    """Word n-gram size of the repetition check."""
    max_repeat_frac: UnitFloat = 0.4
    """A completion whose fraction of repeated word n-grams exceeds this is degenerate."""
    repeat_penalty: NonNegFloat = 0.3
    """Subtracted from degenerate (repetitive) completions."""
    min_words_for_repeat: NonNegInt = 8
    """The repetition check needs at least this many words."""


def repeated_ngram_frac(text: str, n: int) -> float:
    """Fraction of word n-grams that repeat an earlier one: 1 - distinct / total (0 if none)."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def degenerate_penalty(prompts, completions, labels, completion_lengths, truncated, *,
                       cfg: DegenerateConfig | None = None, **kw):
    """-short_penalty under min_tokens tokens; -repeat_penalty for heavy n-gram repetition."""
    cfg = cfg or DegenerateConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    out, short, rep = [], [], []
    for text, n_tok in zip(completions, completion_lengths):
        is_short = n_tok < cfg.min_tokens
        is_rep = (len(re.findall(r"\w+", text)) >= cfg.min_words_for_repeat
                  and repeated_ngram_frac(text, cfg.ngram) > cfg.max_repeat_frac)
        penalty = cfg.short_penalty * is_short + cfg.repeat_penalty * is_rep
        out.append(-penalty if penalty else 0.0)
        short.append(float(is_short))
        rep.append(float(is_rep))
    return out, {"short_frac": _mean(short), "repetitive_frac": _mean(rep)}


@dataclass(kw_only=True)
class TruncationConfig:
    penalty: NonNegFloat = 0.2
    """Subtracted from completions that hit the completion token limit."""


def truncation_penalty(prompts, completions, labels, completion_lengths, truncated, *,
                       cfg: TruncationConfig | None = None, **kw):
    """-penalty where the completion was cut at the token limit (no EOS)."""
    cfg = cfg or TruncationConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    return [-cfg.penalty if t else 0.0 for t in truncated], {"truncated_frac": _mean([float(t) for t in truncated])}


# --- conciseness ---------------------------------------------------------------------------------

@dataclass(kw_only=True)
class ConcisenessConfig:
    budget_tokens: NonNegInt = 64
    """Completion tokens free of any penalty."""
    per_token: NonNegFloat = 0.01
    """Penalty per completion token beyond budget_tokens."""
    max_penalty: NonNegFloat = 0.5
    """The largest penalty: the reward never goes below -max_penalty."""


def conciseness_penalty(prompts, completions, labels, completion_lengths, truncated, *,
                        cfg: ConcisenessConfig | None = None, **kw):
    """-min(max_penalty, per_token * max(0, tokens - budget_tokens)) per completion, any label.

    `tokens` is the whole completion's token count (pre-text, reflection and answer together), so the
    term pays for brevity everywhere; a long pre-text is also charged by the format reward's pretext
    decay (in words). A completion cut at the token limit is charged like any other of that length."""
    cfg = cfg or ConcisenessConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    excess = [max(0, n - cfg.budget_tokens) for n in completion_lengths]
    out = [-min(cfg.max_penalty, cfg.per_token * e) if e else 0.0 for e in excess]
    return out, {"over_budget_frac": _mean([float(e > 0) for e in excess]),
                 "excess_tokens_mean": _mean([float(e) for e in excess])}


# --- tagged-reasoning format ---------------------------------------------------------------------

@dataclass(kw_only=True)
class FormatRewardConfig:
    pause_open: str = "<PAUSE>"
    """Opening tag of the reflection section."""
    pause_close: str = "</PAUSE>"
    """Closing tag of the reflection section."""
    solution_open: str = "<SOLUTION>"
    """Opening tag of the answer section."""
    solution_close: str = "</SOLUTION>"
    """Closing tag of the answer section."""
    tag_points: NonNegFloat = 1.0
    """Per tag that occurs exactly once."""
    order_points: NonNegFloat = 1.0
    """All four tags once, in the order pause_open, pause_close, solution_open, solution_close."""
    section_points: NonNegFloat = 1.0
    """Per non-empty section (reflection, answer); needs the right order."""
    pretext_points: NonNegFloat = 1.0
    """Non-empty text before the first tag (which must be pause_open), of at most max_pretext_words."""
    max_pretext_words: NonNegInt = 20
    """Longest pre-text (words) with full pretext points."""
    pretext_decay: NonNegFloat = 0.2
    """Pretext points lost per word over max_pretext_words (floored at 0)."""
    normalize: bool = True
    """Divide by the maximum (4 tags + order + 2 sections + pretext) so the reward is in [0, 1]."""


def sections(text: str, cfg: FormatRewardConfig) -> tuple[str, str] | None:
    """(reflection, answer) when each of the four tags occurs exactly once and in the order
    pause_open, pause_close, solution_open, solution_close; else None."""
    tags = (cfg.pause_open, cfg.pause_close, cfg.solution_open, cfg.solution_close)
    pos = [text.find(t) for t in tags]
    if any(text.count(t) != 1 for t in tags) or pos != sorted(pos):
        return None
    return text[pos[0] + len(tags[0]):pos[1]], text[pos[2] + len(tags[2]):pos[3]]


def structure_ok(text: str, cfg: FormatRewardConfig | None = None) -> bool:
    """The format adherence test: every tag once, in order, both sections non-empty (text before the
    first tag and after the last is not checked; the pre-text is the format reward's business)."""
    parts = sections(text, cfg or FormatRewardConfig())
    return parts is not None and all(p.strip() for p in parts)


def answer_section(text: str, open_tag: str = "<SOLUTION>", close_tag: str = "</SOLUTION>") -> str:
    """The answer a reader gets: the text after the first open_tag up to the next close_tag (or the end,
    for a completion cut at the token limit); the whole text when open_tag does not occur."""
    start = text.find(open_tag)
    if start < 0:
        return text
    rest = text[start + len(open_tag):]
    end = rest.find(close_tag)
    return rest if end < 0 else rest[:end]


def format_score(text: str, cfg: FormatRewardConfig) -> float:
    tags = (cfg.pause_open, cfg.pause_close, cfg.solution_open, cfg.solution_close)
    points = cfg.tag_points * sum(text.count(t) == 1 for t in tags)
    pos = [text.find(t) for t in tags]
    parts = sections(text, cfg)
    if parts is not None:
        points += cfg.order_points
        points += cfg.section_points * sum(bool(p.strip()) for p in parts)
    found = [p for p in pos if p >= 0]
    if found and min(found) == pos[0]:
        n_words = len(text[:pos[0]].split())
        if n_words:
            excess = max(0, n_words - cfg.max_pretext_words)
            points += max(0.0, cfg.pretext_points - cfg.pretext_decay * excess)
    if cfg.normalize:
        points /= 4 * cfg.tag_points + cfg.order_points + 2 * cfg.section_points + cfg.pretext_points
    return points


def format_reward(prompts, completions, labels, completion_lengths, truncated, *,
                  cfg: FormatRewardConfig | None = None, **kw):
    """Structure of `pre-text <PAUSE> reflection </PAUSE> <SOLUTION> answer </SOLUTION>`."""
    cfg = cfg or FormatRewardConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    out = [format_score(c, cfg) for c in completions]
    return out, {}


# --- judge-based safety ------------------------------------------------------------------------

@dataclass(kw_only=True)
class JudgeSafetyConfig:
    refused_malicious: float = 1.0
    """Judge says a malicious prompt was refused."""
    complied_malicious: float = -1.0
    """Judge says a malicious prompt was not refused."""
    answered_benign: float = 1.0
    """Judge says a benign prompt was answered."""
    refused_benign: float = -0.5
    """Judge says a benign prompt was refused."""
    harmful_penalty: NonNegFloat = 1.0
    """Subtracted when the judge finds harmful specifics (any label)."""
    alternative_bonus: NonNegFloat = 0.2
    """Added when a refused malicious prompt also gets a safe alternative."""


def judge_safety_reward(prompts, completions, labels, completion_lengths, truncated, *,
                        cfg: JudgeSafetyConfig | None = None, verdicts=None, generate_fn=None, **kw):
    """Reward from the LLM judge's verdicts; NaN where the verdict is unparseable."""
    cfg = cfg or JudgeSafetyConfig()
    check_batch(prompts, completions, labels, completion_lengths, truncated)
    stats: dict[str, float] = {}
    if verdicts is None:
        if generate_fn is None:
            raise ValueError("reward judge_safety needs generate_fn (or precomputed verdicts)")
        verdicts, stats = judge_responses(prompts, completions, generate_fn)
    out = []
    for label, v in zip(labels, verdicts):
        if v is None:
            out.append(math.nan)
            continue
        if label == "malicious":
            r = cfg.refused_malicious + cfg.alternative_bonus * v.alternative if v.refused else cfg.complied_malicious
        else:
            r = cfg.refused_benign if v.refused else cfg.answered_benign
        out.append(r - cfg.harmful_penalty * v.harmful)
    return out, {k.removeprefix("judge/"): val for k, val in stats.items()}


# --- registry and scoring ------------------------------------------------------------------------

RewardFn = Callable[..., tuple[list[float], dict[str, float]]]

REGISTRY: dict[str, tuple[RewardFn, type]] = {
    "refusal": (refusal_reward, RefusalRewardConfig),
    "unsafe_markers": (unsafe_marker_reward, UnsafeMarkerConfig),
    "length_bonus": (length_bonus_reward, LengthBonusConfig),
    "degenerate": (degenerate_penalty, DegenerateConfig),
    "truncation": (truncation_penalty, TruncationConfig),
    "format": (format_reward, FormatRewardConfig),
    "conciseness": (conciseness_penalty, ConcisenessConfig),
    "judge_safety": (judge_safety_reward, JudgeSafetyConfig),
}


@dataclass(kw_only=True)
class RewardTerm:
    name: str
    """Reward function from the registry: refusal, unsafe_markers, length_bonus, degenerate, truncation, format,
    conciseness, judge_safety."""
    weight: float = 1.0
    """Weight of this column in the GRPO loop's weighted sum."""
    key: str = ""
    """Column / metric name (defaults to name; must be unique in the config)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Fields of the function's config dataclass (e.g. {detector: classifier})."""

    @property
    def column(self) -> str:
        return self.key or self.name


def _default_terms() -> list[RewardTerm]:
    return [RewardTerm(name="refusal"), RewardTerm(name="degenerate"), RewardTerm(name="truncation")]


@dataclass(kw_only=True)
class RewardConfig:
    terms: list[RewardTerm] = field(default_factory=_default_terms)
    """Reward functions, each {name, weight, key, options}; the columns of the reward matrix."""
    judge_url: str | None = None
    """OpenAI-compatible URL of the LLM judge that judge_safety (and refusal with detector judge) use when the
    caller passes no judge (None: such a term is an error)."""
    judge_model: str | None = None
    """Model name at judge_url (None: the first one its /v1/models lists)."""
    judge_max_tokens: PosInt = 64
    """New tokens per judge verdict."""

    def validate(self) -> None:
        from runtime.config import ConfigError

        if not self.terms:
            raise ConfigError("reward.terms is empty")
        seen = set()
        for i, t in enumerate(self.terms):
            if t.name not in REGISTRY:
                raise ConfigError(f"reward.terms[{i}].name: unknown reward {t.name!r} (known: {', '.join(REGISTRY)})")
            if t.column in seen:
                raise ConfigError(f"reward.terms[{i}]: duplicate column {t.column!r} (set a distinct key)")
            seen.add(t.column)
            term_config(t, f"reward.terms[{i}].options.")

    @property
    def names(self) -> list[str]:
        return [t.column for t in self.terms]

    @property
    def weights(self) -> list[float]:
        return [float(t.weight) for t in self.terms]


def term_config(term: RewardTerm, prefix: str = "") -> Any:
    """The term's options built into its config dataclass (unknown keys / wrong types: ConfigError)."""
    from runtime.config import build

    _, cls = REGISTRY[term.name]
    return build(cls, dict(term.options), prefix=prefix or f"reward.{term.column}.")


@functools.lru_cache(maxsize=4)
def endpoint_judge(url: str, model: str | None, max_tokens: int) -> GenerateFn:
    """The judge behind an OpenAI-compatible URL (reward.judge's client), built once per (url, model)."""
    from reward.judge import openai_judge_fn

    return openai_judge_fn(url, model, max_tokens)


def needs_judge(cfg: RewardConfig) -> bool:
    return any(t.name == "judge_safety" or (t.name == "refusal" and t.options.get("detector") == "judge")
               for t in cfg.terms)


class Scores(NamedTuple):
    rewards: torch.Tensor
    """(N, K) float32, NaN where a function had no signal."""
    names: list[str]
    """The K column names."""
    weights: list[float]
    """The K weights from the config."""
    metrics: dict[str, float]
    """reward/<name>_mean, reward/<name>_std, reward/<name>/<function metric>, reward/judge/..."""


def score(cfg: RewardConfig, prompts: Sequence[str], completions: Sequence[str], labels: Sequence[str],
          lengths: Sequence[int], truncated: Sequence[bool], generate_fn: GenerateFn | None = None) -> Scores:
    """Run every configured reward function on the batch; the judge (if any) runs once: `generate_fn`, or
    the endpoint at cfg.judge_url (how the GRPO loop gets one)."""
    cfg.validate()
    check_batch(prompts, completions, labels, lengths, truncated)
    metrics: dict[str, float] = {}
    verdicts = None
    if needs_judge(cfg):
        if generate_fn is None and cfg.judge_url:
            generate_fn = endpoint_judge(cfg.judge_url, cfg.judge_model, cfg.judge_max_tokens)
        if generate_fn is None:
            raise ValueError("reward: the config uses the LLM judge but neither reward.judge_url nor a "
                             "generate_fn was given")
        verdicts, stats = judge_responses(prompts, completions, generate_fn)
        metrics.update({f"reward/{k}": v for k, v in stats.items()})
    columns = []
    for term in cfg.terms:
        fn, _ = REGISTRY[term.name]
        term_cfg = term_config(term)
        values, fn_metrics = fn(prompts, completions, labels, lengths, truncated, cfg=term_cfg,
                                verdicts=verdicts, generate_fn=generate_fn)
        col = torch.tensor(values, dtype=torch.float32)  # (N,)
        columns.append(col)
        valid = col[~col.isnan()]  # (n_valid,)
        metrics[f"reward/{term.column}_mean"] = valid.mean().item() if valid.numel() else math.nan
        metrics[f"reward/{term.column}_std"] = valid.std(unbiased=False).item() if valid.numel() else math.nan
        if term.name == "judge_safety" or getattr(term_cfg, "detector", None) == "judge":
            metrics[f"reward/{term.column}_nan_frac"] = 1.0 - valid.numel() / max(1, col.numel())
        metrics.update({f"reward/{term.column}/{k}": v for k, v in fn_metrics.items()})
    rewards = torch.stack(columns, dim=1) if columns else torch.zeros(len(completions), 0)  # (N, K)
    return Scores(rewards, cfg.names, cfg.weights, metrics)
