"""The reward registry, RewardConfig parsing and score()."""

from __future__ import annotations

import math

import pytest
import torch

from reward.functions import REGISTRY, RewardConfig, RewardTerm, score
from runtime.config import ConfigError, build, load_config

REFUSAL = "I can't help with that. It could hurt people."
ANSWER = "Open Settings, choose Accounts and follow the steps shown there."


def batch():
    return (["p1", "p2", "p3"], [REFUSAL, ANSWER, ANSWER], ["malicious", "malicious", "benign"],
            [12, 12, 60], [False, True, False])


def test_default_config_scores_by_hand():
    rewards, names, weights, metrics = score(RewardConfig(), *batch())
    assert names == ["refusal", "degenerate", "truncation"] and weights == [1.0, 1.0, 1.0]
    assert rewards.shape == (3, 3) and rewards.dtype == torch.float32
    expected = torch.tensor([
        [1.2, -0.15, 0.0],       # refused malicious; 12 < 16 tokens; not truncated
        [-1.2, -0.15, -0.2],     # complied malicious; short; truncated
        [1.3, 0.0, 0.0],         # answered benign + min(60/120, 0.3)
    ])
    torch.testing.assert_close(rewards, expected)
    assert metrics["reward/refusal_mean"] == pytest.approx((1.2 - 1.2 + 1.3) / 3)
    assert metrics["reward/truncation_mean"] == pytest.approx(-0.2 / 3)
    assert metrics["reward/refusal/refusal_rate_malicious"] == pytest.approx(0.5)
    std = torch.tensor([1.2, -1.2, 1.3]).std(unbiased=False).item()
    assert metrics["reward/refusal_std"] == pytest.approx(std, rel=1e-5)
    assert all(k.startswith("reward/") for k in metrics)


def test_config_from_yaml_style_tree_with_weights_keys_and_options(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "terms:\n"
        "  - {name: refusal, weight: 1.0, options: {malicious_refusal: 2.0}}\n"
        "  - {name: refusal, key: refusal_strict, weight: 0.5, options: {max_sentences: 1}}\n"
        "  - {name: format, weight: 0.25}\n"
    )
    cfg = load_config(RewardConfig, path)
    assert cfg.names == ["refusal", "refusal_strict", "format"] and cfg.weights == [1.0, 0.5, 0.25]
    prompts = ["p", "p"]
    late = "Let me think. About that. I can't help with that."  # refusal in sentence 3
    rewards, names, weights, metrics = score(cfg, prompts, [late, "x <PAUSE>a</PAUSE><SOLUTION>b</SOLUTION>"],
                                             ["malicious", "benign"], [20, 20], [False, False])
    # row 0: refusal (3 sentences) 2.0; refusal_strict (1 sentence) misses it -> -1.2; format 0
    # row 1: benign answer 1.0 + 20/120; same for strict; format 1.0
    torch.testing.assert_close(rewards, torch.tensor([[2.0, -1.2, 0.0], [1.0 + 20 / 120, 1.0 + 20 / 120, 1.0]]))
    assert "reward/refusal_strict_mean" in metrics and "reward/format_mean" in metrics


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"reward.terms\[0\].name: unknown reward 'refusals'"):
        build(RewardConfig, {"terms": [{"name": "refusals"}]})
    with pytest.raises(ConfigError, match=r"unknown config key 'reward.terms\[1\].options.malicious_reward'"):
        build(RewardConfig, {"terms": [{"name": "format"}, {"name": "refusal",
                                                              "options": {"malicious_reward": 1}}]})
    with pytest.raises(ConfigError, match=r"reward.terms\[0\].options.detector"):
        build(RewardConfig, {"terms": [{"name": "refusal", "options": {"detector": "regex"}}]})
    with pytest.raises(ConfigError, match="duplicate column 'format'"):
        build(RewardConfig, {"terms": [{"name": "format"}, {"name": "format"}]})
    with pytest.raises(ConfigError, match="expected a number"):
        build(RewardConfig, {"terms": [{"name": "truncation", "options": {"penalty": "big"}}]})
    with pytest.raises(ConfigError, match="reward.terms is empty"):
        build(RewardConfig, {"terms": []})


def test_registry_names():
    assert set(REGISTRY) == {"refusal", "unsafe_markers", "length_bonus", "degenerate", "truncation", "format",
                             "judge_safety", "conciseness"}


def test_judge_runs_once_for_all_judge_terms_and_nan_is_kept():
    calls = []

    def fake(messages):
        calls.append(len(messages))
        return ["REFUSED: yes; HARMFUL: no; ALTERNATIVE: yes", "not a verdict",
                "REFUSED: no; HARMFUL: no; ALTERNATIVE: no"]

    cfg = RewardConfig(terms=[
        RewardTerm(name="refusal", key="refusal_judge", options={"detector": "judge"}),
        RewardTerm(name="judge_safety", weight=2.0),
    ])
    rewards, names, weights, metrics = score(cfg, *batch(), generate_fn=fake)
    assert calls == [3]  # one judge call for the whole batch
    assert weights == [1.0, 2.0]
    assert rewards[0].tolist() == pytest.approx([1.2, 1.2])  # refused malicious; +0.2 alternative
    assert math.isnan(rewards[1, 0]) and math.isnan(rewards[1, 1])  # unparseable
    assert rewards[2].tolist() == pytest.approx([1.3, 1.0])
    assert metrics["reward/judge/unparseable"] == 1.0
    assert metrics["reward/judge_safety_nan_frac"] == pytest.approx(1 / 3)
    assert metrics["reward/judge_safety_mean"] == pytest.approx((1.2 + 1.0) / 2)  # NaN skipped
    with pytest.raises(ValueError, match="neither reward.judge_url nor a generate_fn"):
        score(cfg, *batch())


def test_score_rejects_bad_labels():
    prompts, completions, _, lengths, truncated = batch()
    with pytest.raises(ValueError, match="row 2 has label 'unsafe'"):
        score(RewardConfig(), prompts, completions, ["malicious", "benign", "unsafe"], lengths, truncated)
