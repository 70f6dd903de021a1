"""recipes.demo: a seed sweep (--reuse-sft) reuses the unchanged models' evals only when nothing they
depend on changed (model, rows' bytes, flags); anything else runs evals.run again."""

from __future__ import annotations

import json

from recipes import demo


def test_eval_stage_reuses_only_an_identical_eval(tmp_path, monkeypatch):
    calls = []

    def fake_stage(name, cmd, timings):
        calls.append(cmd)
        out = cmd[cmd.index("--out") + 1]
        (tmp_path / out).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(demo, "stage", fake_stage)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "hi", "label": "benign"}) + "\n")
    adapter = tmp_path / "sweep0" / "sft" / "adapter"
    adapter.mkdir(parents=True)
    flags = ["--max-tokens", "96", "--prefill-tokens", "0,10"]

    # First run: evals.run, and the key recorded next to its output.
    first = tmp_path / "sweep0" / "eval" / "sft"
    demo.eval_stage("eval-sft", str(adapter), rows, first, {}, None, flags)
    assert len(calls) == 1 and calls[0][calls[0].index("--model") + 1] == str(adapter)
    (first / "metrics.json").write_text("{}")
    assert json.loads((first / "eval_key.json").read_text())["flags"] == flags

    # Same model (reached through a symlinked run dir, as --reuse-sft makes it), rows and flags: a link.
    (tmp_path / "sweep1").mkdir()
    (tmp_path / "sweep1" / "sft").symlink_to(tmp_path / "sweep0" / "sft")
    second = tmp_path / "sweep1" / "eval" / "sft"
    demo.eval_stage("eval-sft", str(tmp_path / "sweep1" / "sft" / "adapter"), rows, second, {}, first, flags)
    assert len(calls) == 1 and second.is_symlink() and second.resolve() == first.resolve()

    # Any change runs the eval again: other flags, other rows, another model.
    demo.eval_stage("eval-sft", str(adapter), rows, tmp_path / "a", {}, first, ["--max-tokens", "64"])
    rows2 = tmp_path / "rows2.jsonl"
    rows2.write_text(json.dumps({"text": "hi!", "label": "benign"}) + "\n")
    demo.eval_stage("eval-sft", str(adapter), rows2, tmp_path / "b", {}, first, flags)
    demo.eval_stage("eval-sft", "smollm2-135m", rows, tmp_path / "c", {}, first, flags)
    assert len(calls) == 4
    # An eval that never finished (no metrics.json) is not reused.
    (first / "metrics.json").unlink()
    demo.eval_stage("eval-sft", str(adapter), rows, tmp_path / "d", {}, first, flags)
    assert len(calls) == 5
