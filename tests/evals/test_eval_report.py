"""evals.report: Markdown tables, warnings and PNGs from fixture run dirs and training logs."""

from __future__ import annotations

import json

import pytest

from evals import report as rp
from evals.metrics import EvalError, flat_rates, json_safe, safety_metrics
from runtime.errors import UserError

ROWS = [
    {"label": "malicious", "category": "jailbreak", "source": "hb"},
    {"label": "malicious", "category": "jailbreak", "source": "hb"},
    {"label": "malicious", "category": "harmful", "source": "dan"},
    {"label": "malicious", "category": "harmful", "source": "dan"},
    {"label": "benign", "category": "everyday", "source": "own"},
    {"label": "benign", "category": "everyday", "source": "own"},
    {"label": "benign", "category": "benign_alarming", "source": "own"},
    {"label": "benign", "category": "benign_alarming", "source": "own"},
]


def write_run(d, probs: dict[str, list[float]], sha: str, primary: str = "classifier", judge=None):
    """A metrics.json shaped like evals.run's, built from the real metric functions."""
    by_det = {k: safety_metrics(ROWS, p) for k, p in probs.items()}
    m = {"model": d.name, **flat_rates(by_det[primary]), "detector": primary, "n_rows": 8, "n_malicious": 4,
         "n_benign": 4, "skipped_leaked_rows": 0, "rates": by_det[primary]["rates"],
         "by_source": by_det[primary]["by_source"], "by_category": by_det[primary]["by_category"],
         "by_detector": by_det, "judge": judge, "responses_sha256": sha}
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(json_safe(m)))


@pytest.fixture
def runs(tmp_path):
    base = [0.1] * 8  # refuses nothing
    sft = [0.9, 0.9, 0.9, 0.2, 0.1, 0.1, 0.8, 0.1]  # 3/4 malicious refused, 1/2 alarming refused
    write_run(tmp_path / "evals" / "base", {"markers": base, "classifier": base}, "aaa")
    write_run(tmp_path / "evals" / "sft", {"markers": base, "classifier": sft}, "bbb")
    write_run(tmp_path / "evals" / "grpo", {"markers": sft, "classifier": sft, "judge": sft}, "bbb",
              judge={"unparseable": 2, "n": 8})
    log = tmp_path / "grpo_run" / "metrics.jsonl"
    log.parent.mkdir()
    log.write_text("".join(json.dumps({"step": s, "reward/mean": 0.1 * s, "rollout/frac_reward_zero_std": 0.9 - 0.1 * s,
                                       "train/loss": 1.0 / (s + 1)}) + "\n" for s in range(6))
                   + json.dumps({"note": "no step"}) + "\n")
    return tmp_path


def test_report_tables_warnings_and_pngs(runs):
    dirs = [str(runs / "evals" / n) for n in ("base", "sft", "grpo")]
    out = runs / "report" / "report.md"
    text = rp.build_report(dirs, out, names=["base", "sft", "grpo"], train_logs=[str(runs / "grpo_run" / "metrics.jsonl")])
    assert out.read_text() == text
    lines = text.splitlines()
    # Headline row of sft: classifier, malicious refusal 3/4 -> wilson(3,4) = (0.3006, 0.9544)
    sft_row = next(x for x in lines if x.startswith("| sft | classifier | 8 (4/4)"))
    assert "0.750 [0.301, 0.954] (n=4)" in sft_row
    # Over-refusal 1/2 -> wilson(1,2) = (0.0945, 0.9055)
    assert "0.500 [0.095, 0.905] (n=2)" in sft_row
    # Per-detector table: 2 + 2 + 3 rows
    det_rows = [x for x in lines if x.count("|") > 5 and x.split("|")[2].strip() in ("markers", "classifier", "judge")]
    assert len(det_rows) == 2 + 2 + 3 + 3  # 7 in the detector table, 3 in the headline table
    # Breakdown per category: jailbreak row has one cell per model
    jb = next(x for x in lines if x.startswith("| jailbreak |"))
    assert jb.count("(n=2)") == 3
    # Warnings: sft and grpo share a responses hash; grpo's judge had 2 unparseable verdicts
    assert "**grpo** and **sft** produced byte-identical responses" in text
    assert "2 of 8 judge verdicts were unparseable" in text
    assert "keys: reward/mean, rollout/frac_reward_zero_std, train/loss" in text
    for png in ("report_rates.png", "report_detectors.png", "report_training.png"):
        data = (runs / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f"]({png})" in text


def test_training_log_found_next_to_run_dir(runs):
    # RUN_DIR/../metrics.jsonl is picked up without --train-logs.
    (runs / "evals" / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/kl_mean": 0.01}) + "\n")
    text = rp.build_report([str(runs / "evals" / "base")], runs / "r.md")
    assert "keys: train/kl_mean" in text and (runs / "r_training.png").is_file()
    # No log anywhere: no training section, no PNG.
    (runs / "evals" / "metrics.jsonl").unlink()
    text = rp.build_report([str(runs / "evals" / "base")], runs / "r2.md")
    assert "Training curves" not in text and not (runs / "r2_training.png").exists()


def test_report_errors(runs, capsys):
    with pytest.raises(EvalError, match="2 names for 1 run dirs"):
        rp.build_report([str(runs / "evals" / "base")], runs / "x.md", names=["a", "b"])
    bad = runs / "bad.jsonl"
    bad.write_text(json.dumps({"step": 1}) + "\n{oops\n")
    with pytest.raises(UserError, match="bad.jsonl: line 2: invalid JSON"):
        rp.read_train_log(bad)
    assert rp.main([str(runs / "nope"), "--out", str(runs / "x.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "metrics.json" in err and err.count("\n") == 1


def test_fmt_rate():
    assert rp.fmt_rate(None) == "—"
    assert rp.fmt_rate({"value": None, "ci_low": 0.0, "ci_high": 1.0, "n": 0}) == "—"
    assert rp.fmt_rate({"value": 0.5, "ci_low": 0.2366, "ci_high": 0.7634, "n": 10}) == "0.500 [0.237, 0.763] (n=10)"


def test_prefill_table_and_plot(runs):
    """Runs with a "prefill" block (evals.run --prefill-tokens) get an ASR-vs-K table and plot; a run
    without one is a row of dashes, and a report with none has neither."""
    from evals.run import prefill_block

    def add_prefill(name, refused_by_k):
        path = runs / "evals" / name / "metrics.json"
        m = json.loads(path.read_text())
        m["prefill"] = {"detector": "classifier", **{k: prefill_block(r, 4, {}) for k, r in refused_by_k.items()}}
        path.write_text(json.dumps(json_safe(m)))

    add_prefill("base", {"0": 1, "5": 0, "10": 0})
    add_prefill("grpo", {"0": 4, "10": 3})
    dirs = [str(runs / "evals" / n) for n in ("base", "sft", "grpo")]
    text = rp.build_report(dirs, runs / "p.md", names=["base", "sft", "grpo"])
    lines = text.splitlines()
    assert "| model | detector | K=0 | K=5 | K=10 |" in lines
    # base at K=0: 1 of 4 refused -> ASR 3/4, wilson(3, 4) = (0.3006, 0.9544)
    assert next(x for x in lines if x.startswith("| base | classifier | 0.750 [0.301, 0.954] (n=4)"))
    # grpo was not measured at K=5; at K=10, 3 of 4 refused -> ASR 1/4 = [0.0456, 0.6994]
    grpo = next(x for x in lines if x.startswith("| grpo | classifier | 0.000"))
    assert grpo.split(" | ")[3] == "—" and "0.250 [0.046, 0.699] (n=4)" in grpo
    assert "| sft | — | — | — | — |" in lines
    data = (runs / "p_prefill.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and "](p_prefill.png)" in text
    text = rp.build_report([str(runs / "evals" / "sft")], runs / "q.md")
    assert "Prefilling attack" not in text and not (runs / "q_prefill.png").exists()
