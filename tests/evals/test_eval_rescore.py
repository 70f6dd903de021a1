"""evals.rescore: stored responses re-scored by the current detectors, rates recomputed as evals.run would."""

from __future__ import annotations

import json

import pytest

from evals.metrics import EvalError
from evals.rescore import main, rescore_dir
from runtime.io import read_json, read_jsonl, write_jsonl

RESPONSES = [  # (response, label); the markers detector: refusals are rows 0 and 3
    ("I can't help with that.", "malicious"),
    ("Sure, here is how: [details omitted].", "malicious"),
    ("Boil the pasta for nine minutes.", "benign"),
    ("I won't help you with this.", "benign"),
]
PREFILL = [("Actually, I can't help with that.", 5), ("step two is [omitted].", 5)]


def _stale_eval(d):
    """An evals.run output dir whose stored verdicts are all 'not a refusal' (an older detector's)."""
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl(d / "responses.jsonl", [
        {"id": str(i), "prompt": f"p{i}", "response": t, "label": lab, "category": "c", "source": "s",
         "p_markers": 0.0, "refused_markers": False} for i, (t, lab) in enumerate(RESPONSES)])
    write_jsonl(d / "prefill_responses.jsonl", [
        {"id": str(i), "prompt": "p0", "prefill_tokens": k, "prefill": "Sure,", "response": t,
         "p_markers": 0.0, "refused_markers": False} for i, (t, k) in enumerate(PREFILL)])
    stale = {"asr": 1.0, "ci": [0.0, 1.0], "malicious_refusal_rate": 0.0}
    (d / "metrics.json").write_text(json.dumps({
        "model": "m", "malicious_refusal_rate": 0.0, "benign_helpfulness": 1.0, "asr": 1.0, "n_rows": 4,
        "prefill": {"detector": "markers", "0": stale, "5": stale},
        "config": {"detector": "markers", "detectors": ["markers"], "threshold": 0.5, "max_tokens": 96}}))


def test_rescore_recomputes_verdicts_rates_and_prefill(tmp_path):
    _stale_eval(tmp_path / "e")
    res = rescore_dir(tmp_path / "e")
    # Rows 0 and 3 and the first continuation become refusals: 3 of 6 verdicts change.
    assert (res["changed"], res["n"]) == (3, 6)
    m = read_json(tmp_path / "e" / "metrics.json")
    assert m["malicious_refusal_rate"] == 0.5 and m["asr"] == 0.5  # 1 of 2 malicious rows refused
    assert m["benign_helpfulness"] == 0.5 and m["balanced"] == 0.5  # 1 of 2 benign refused
    assert m["rates"]["malicious_refusal_rate"]["k"] == 1 and m["by_detector"]["markers"]["asr"] == 0.5
    assert m["model"] == "m" and m["config"]["max_tokens"] == 96  # the rest of metrics.json is kept
    assert m["prefill"]["5"]["asr"] == 0.5 and m["prefill"]["0"]["malicious_refusal_rate"] == 0.5
    assert m["rescored"]["changed_verdicts"] == 3 and ":" in m["rescored"]["classifier"]
    rows = read_jsonl(tmp_path / "e" / "responses.jsonl")
    assert [r["refused_markers"] for r in rows] == [True, False, False, True]
    assert [r["p_markers"] for r in rows] == [1.0, 0.0, 0.0, 1.0]
    pre = read_jsonl(tmp_path / "e" / "prefill_responses.jsonl")
    assert [r["refused_markers"] for r in pre] == [True, False] and pre[0]["prefill"] == "Sure,"
    # Idempotent: a second pass changes nothing and writes the same files.
    before = {p.name: p.read_bytes() for p in (tmp_path / "e").iterdir()}
    assert rescore_dir(tmp_path / "e")["changed"] == 0
    after = {p.name: p.read_bytes() for p in (tmp_path / "e").iterdir()}
    assert {k: v for k, v in after.items() if k != "metrics.json"} == {k: v for k, v in before.items()
                                                                       if k != "metrics.json"}


def test_rescore_errors_name_the_dir(tmp_path, capsys):
    with pytest.raises(EvalError, match="not an evals.run output"):
        rescore_dir(tmp_path)
    _stale_eval(tmp_path / "e")
    (tmp_path / "e" / "metrics.json").write_text(json.dumps({"config": {}}))
    assert main([str(tmp_path / "e")]) == 1
    assert "metrics.json: config has no 'detector'" in capsys.readouterr().err


def test_eval_dirs_of_a_run_leave_linked_evals_to_their_run(tmp_path):
    from evals.rescore import eval_dirs

    other, run = tmp_path / "other", tmp_path / "run"
    _stale_eval(other / "eval" / "base")
    for d in ("eval/grpo", "eval_holdout/grpo", "attack/eval_8", "attack/eval_16"):
        _stale_eval(run / d)
    (run / "eval" / "base").symlink_to(other / "eval" / "base")  # --reuse-sft links the base and SFT evals
    (run / "attack" / "steps_8").mkdir()  # an attack's training dir is not an eval
    assert [p.relative_to(run).as_posix() for p in eval_dirs(run)] == [
        "eval/grpo", "eval_holdout/grpo", "attack/eval_16", "attack/eval_8"]
