"""Refusal detection (markers, embedding classifier, LLM judge) and the reward functions.

`reward.refusal.refusal_probability` is the one detector used by both the GRPO reward and the
eval; `reward.functions.score` runs the configured reward functions on a batch.
"""

from reward.judge import Verdict, judge_responses, parse_verdict
from reward.refusal import DEFAULT_REFUSAL_MARKERS, embed, refusal_probability

__all__ = [
    "DEFAULT_REFUSAL_MARKERS", "Verdict", "embed", "judge_responses", "parse_verdict", "refusal_probability",
]
