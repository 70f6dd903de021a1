"""Tagged-reasoning format reward, values worked out by hand.

Default points: 1 per tag present exactly once (4 tags), 1 for the right order, 1 per non-empty
section (2), 1 for a short non-empty pre-text; normalized by the maximum 8.
"""

from __future__ import annotations

import pytest

from reward.functions import FormatRewardConfig, format_reward, format_score

CFG = FormatRewardConfig()

CASES = [
    # 4 tags + order + 2 sections + pretext = 8 -> 1.0
    ("Let me check. <PAUSE>Is this safe? Yes.</PAUSE><SOLUTION>Paris.</SOLUTION>", 8 / 8),
    # no pre-text: 4 + 1 + 2 = 7
    ("<PAUSE>Is this safe?</PAUSE><SOLUTION>Paris.</SOLUTION>", 7 / 8),
    # no tags at all: 0 (no <PAUSE>, so no pre-text either)
    ("The capital of France is Paris.", 0.0),
    # empty reflection: 4 + 1 + 1 (answer) + 1 (pretext) = 7
    ("Okay. <PAUSE>   </PAUSE><SOLUTION>Paris.</SOLUTION>", 7 / 8),
    # wrong order: 4 tags, no order, no section points; first tag is <SOLUTION>, so no pretext -> 4
    ("Hi <SOLUTION>Paris.</SOLUTION><PAUSE>hm</PAUSE>", 4 / 8),
    # duplicated <PAUSE>: 3 tags once, no order, pretext "x" (first tag is <PAUSE>) -> 3 + 1 = 4
    ("x <PAUSE>a<PAUSE>b</PAUSE><SOLUTION>c</SOLUTION>", 4 / 8),
    # only <PAUSE>...</PAUSE> with pretext: 2 tags + pretext = 3
    ("Thinking. <PAUSE>safe</PAUSE> Paris.", 3 / 8),
    # 22-word pre-text: 1 - 0.2 * (22 - 20) = 0.6 -> 4 + 1 + 2 + 0.6 = 7.6
    (" ".join(["w"] * 22) + " <PAUSE>r</PAUSE><SOLUTION>s</SOLUTION>", 7.6 / 8),
    # 30-word pre-text: 1 - 0.2 * 10 < 0 -> floored at 0 -> 7
    (" ".join(["w"] * 30) + " <PAUSE>r</PAUSE><SOLUTION>s</SOLUTION>", 7 / 8),
    # closing tags missing: <PAUSE> and <SOLUTION> once -> 2, pretext 1 -> 3
    ("Hm. <PAUSE>r <SOLUTION>s", 3 / 8),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_format_score_by_hand(text, expected):
    assert format_score(text, CFG) == pytest.approx(expected)


def test_format_score_unnormalized_and_custom_points():
    cfg = FormatRewardConfig(normalize=False, tag_points=0.5, order_points=2.0, section_points=0.0,
                             pretext_points=3.0, max_pretext_words=2, pretext_decay=1.0)
    # 4 x 0.5 + 2.0 + 0 + (3.0 - 1.0 x (3 - 2)) = 2 + 2 + 2 = 6
    assert format_score("one two three <PAUSE>r</PAUSE><SOLUTION>s</SOLUTION>", cfg) == pytest.approx(6.0)


def test_format_reward_custom_tags_and_batch():
    cfg = FormatRewardConfig(pause_open="<think>", pause_close="</think>", solution_open="<answer>",
                             solution_close="</answer>")
    rewards, _ = format_reward(["p", "p"], ["Ok. <think>x</think><answer>y</answer>", "<PAUSE>x</PAUSE>"],
                               ["benign", "malicious"], [9, 4], [False, False], cfg=cfg)
    assert rewards == pytest.approx([1.0, 0.0])
