"""The model-ladder recipe's own parts: per-model settings (unknown keys and wrong types are errors), the
spread over seeds, and the report with its two plots, on hand-made entries."""

from __future__ import annotations

import pytest

from recipes.scaling import DEFAULTS, model_settings, report, spread

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def entry(model: str, params: int, seed: int, refusal: float, rrr: dict[str, float], k10: float) -> dict:
    rates = {"malicious_refusal_rate": refusal, "benign_helpfulness": 0.9, "balanced": (refusal + 0.9) / 2,
             "over_refusal_rate": 0.1, "asr": 1 - refusal}
    return {"model": model, "params": params, "seed": seed, "note": "", "family": "qwen2",
            "settings": {"sft_overrides": ["max_steps=48"], "grpo_overrides": ["steps=12"]},
            "base": dict(rates), "sft": dict(rates),
            "grpo": {**rates, "prefill": {"10": {"asr": k10, "ci": [0, 1]}},
                     "holdout": {"malicious_refusal_rate": refusal}},
            "attack": {s: {"rrr": v, "ci": [max(0, v - 0.1), min(1, v + 0.1)], "rd_median": 0.5, "ce_bits": 0.1}
                       for s, v in rrr.items()},
            "grpo_cost": {"s_per_step": 10.0, "tokens_per_s": 50.0, "peak_rss_gib": 5.0}}


def test_shipped_ladder_configs_parse():
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        s = model_settings(name, ROOT / "configs" / "scaling")
        assert set(s) == set(DEFAULTS) and "0" not in s["attack_steps"].split(",")
        assert all("=" in o for o in s["sft_overrides"] + s["grpo_overrides"])


def test_settings_errors_name_the_file_and_key(tmp_path):
    (tmp_path / "m.yaml").write_text("eval_rows: 3\n")
    with pytest.raises(SystemExit, match=r"m.yaml: unknown key 'eval_rows'"):
        model_settings("m", tmp_path)
    (tmp_path / "m.yaml").write_text("eval_malicious: '40'\n")
    with pytest.raises(SystemExit, match=r"key 'eval_malicious' must be int"):
        model_settings("m", tmp_path)
    assert model_settings("absent", tmp_path) == DEFAULTS


def test_spread_over_seeds_by_hand():
    es = [entry("a", 100, 0, 0.8, {"0": 0.8, "8": 0.2}, 0.1), entry("a", 100, 1, 0.9, {"0": 0.9, "8": 0.4}, 0.3),
          entry("b", 500, 0, 0.95, {"0": 0.95, "8": 0.6}, 0.05)]
    s = spread(es)
    assert s["a"]["seeds"] == [0, 1]
    assert s["a"]["malicious_refusal_rate"] == {"mean": pytest.approx(0.85), "min": 0.8, "max": 0.9}
    assert s["a"]["rrr_8"] == {"mean": pytest.approx(0.3), "min": 0.2, "max": 0.4}
    assert s["a"]["prefill_k10_asr"]["mean"] == pytest.approx(0.2)
    assert s["b"]["rrr_8"] == {"mean": 0.6, "min": 0.6, "max": 0.6}


def test_report_table_and_plots(tmp_path):
    es = [entry("a", 135_000_000, 0, 0.8, {"0": 0.8, "8": 0.2, "16": 0.0}, 0.1),
          entry("b", 630_000_000, 0, 0.95, {"0": 0.95, "8": 0.6, "16": 0.3}, 0.05)]
    text = report(es, tmp_path / "report.md")
    assert "| a | 135M | 0 | grpo | 0.800 | 0.900 | 0.100 | 0.800 | 0.100 | 0.800 | 0.200 | 0.000 |" in text
    assert "| b | 630M | 0 | grpo | 0.950 |" in text and "RRR@16" in text
    for png in ("report_rrr_vs_params.png", "report_rrr_vs_steps.png"):
        assert (tmp_path / png).stat().st_size > 1000 and f"]({png})" in text


def test_targets_table_counts_seeds_by_hand(tmp_path):
    # base and GRPO helpfulness 0.9 in seed 0 (drop 0.0); RRR@8 0.6 and 0.5 -> 1 of 2 above 0.56
    es = [entry("a", 100, 0, 0.8, {"0": 0.8, "8": 0.6}, 0.1), entry("a", 100, 1, 0.9, {"0": 0.9, "8": 0.5}, 0.3)]
    es[1]["grpo"]["benign_helpfulness"] = 0.8  # seed 1 drops 0.1: 1 of 2 within 0.05
    text = report(es, tmp_path / "r.md")
    row = next(line for line in text.splitlines() if line.startswith("| a | 2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "0.050 (0.000 to 0.100); 1/2"
    assert cells[3] == "0.550 (0.500 to 0.600); 1/2"
    assert cells[4] == "0.850 (0.800 to 0.900); 1/2"  # held-out refusal 0.8 and 0.9 against >= 0.90
    assert cells[5] == "0.200 (0.100 to 0.300); 1/2"  # prefill 0.1 and 0.3 against <= 0.25


def test_merge_joins_summaries_later_file_wins(tmp_path):
    from recipes.scaling import main
    from runtime.io import read_json, write_json

    old = [entry("a", 100, 0, 0.5, {"0": 0.5, "8": 0.1}, 0.1), entry("b", 500, 0, 0.9, {"0": 0.9, "8": 0.3}, 0.1)]
    new = [entry("a", 100, 0, 0.8, {"0": 0.8, "8": 0.2, "16": 0.0}, 0.1), entry("b", 500, 1, 0.7, {"0": 0.7}, 0.2)]
    write_json(tmp_path / "old.json", {"what": "the ladder", "entries": old})
    write_json(tmp_path / "new.json", {"entries": new})
    assert main(["--merge", str(tmp_path / "old.json"), str(tmp_path / "new.json"),
                 "--out", str(tmp_path / "docs"), "--name", "scaling"]) == 0
    got = read_json(tmp_path / "docs" / "scaling.json")
    assert got["what"] == "the ladder"
    assert [(e["model"], e["seed"], e["grpo"]["malicious_refusal_rate"]) for e in got["entries"]] == \
        [("a", 0, 0.8), ("b", 0, 0.9), ("b", 1, 0.7)]
    assert got["by_model"]["b"]["rrr_0"] == {"mean": pytest.approx(0.8), "min": 0.7, "max": 0.9}
    assert (tmp_path / "docs" / "scaling_rrr_vs_params.png").is_file()
    (tmp_path / "bad.json").write_text('{"entries": [{"model": "a"}]}')
    with pytest.raises(SystemExit, match=r"bad.json: entry 0 has no 'seed'"):
        main(["--merge", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x")])
