"""Re-score finished evals with the current refusal detectors, without generating again.

    python -m evals.rescore runs/demo [runs/demo_seed1 ...]   # every eval of those demo runs
    python -m evals.rescore runs/eval/sft                 # one evals.run output dir

A detector change (a retrained classifier, a new marker) changes every number measured before it;
this puts all runs back on one footing. For each evals.run output dir (responses.jsonl + metrics.json)
every stored response is scored again by the detectors its metrics.json config names, with the same
threshold and primary detector (evals.run.score_records, the code evals.run itself scores with), and
responses.jsonl and metrics.json are rewritten (atomically) with the new p_/refused_ fields, rates,
per-source and per-detector blocks and detector agreement; prefill_responses.jsonl and the "prefill"
block likewise. A judge's stored verdicts are kept as they were (the judge is not re-run). metrics.json
records "rescored": the reward.refusal classifier fingerprint and how many verdicts changed.

Given a demo run dir (recipes/demo.py's layout), it re-scores eval/*, eval_holdout/* and attack/eval_*
(directories linked from another run by --reuse-sft are left to that run), re-runs the attack's
evals.robustness (RRR), then evals.report and the run's summary.json (evals.report.write_summary), in
process, and
prints the headline rates before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from evals.metrics import EvalError, json_safe
from evals.run import EvalConfig, score_prefill_records, score_records
from runtime.errors import UserError
from runtime.io import read_json, read_jsonl, write_jsonl, write_text

HEADLINE = ("malicious_refusal_rate", "benign_helpfulness", "over_refusal_rate", "asr")


def _config(metrics: dict, where: Path) -> EvalConfig:
    c = metrics.get("config") or {}
    try:
        return EvalConfig(detector=c["detector"], detectors=tuple(c["detectors"]), threshold=c["threshold"])
    except KeyError as e:
        raise EvalError(f"{where}/metrics.json: config has no {e.args[0]!r}; not an evals.run output") from None


def _verdicts(records: list[dict], detectors) -> list:
    return [tuple(r.get(f"refused_{d}") for d in detectors) for r in records]


def rescore_dir(d: str | Path) -> dict:
    """Re-score one evals.run output dir in place; returns {"dir", "changed", "n", "before", "after"}."""
    from reward.refusal import classifier_fingerprint, refusal_probability

    d = Path(d)
    if not (d / "metrics.json").is_file() or not (d / "responses.jsonl").is_file():
        raise EvalError(f"{d}: no metrics.json and responses.jsonl (not an evals.run output)")
    metrics = read_json(d / "metrics.json")
    cfg = _config(metrics, d)
    records = read_jsonl(d / "responses.jsonl")
    if any(r.get("scored") is False for r in records):
        raise EvalError(f"{d}/responses.jsonl: written before scoring (the eval did not finish)")
    offline = tuple(cfg.detectors)
    before = _verdicts(records, offline)
    scores: dict = {det: refusal_probability([r["response"] for r in records], method=det) for det in offline}
    if "p_judge" in records[0]:  # the judge's stored verdicts count as they were
        scores["judge"] = [math.nan if r["p_judge"] is None else r["p_judge"] for r in records]
        scores["judge_harmful"] = [(r.get("judge_verdict") or {}).get("harmful") for r in records]
    old = {k: metrics.get(k) for k in HEADLINE}
    scored = score_records(records, scores, cfg)
    changed = sum(a != b for a, b in zip(before, _verdicts(records, offline)))
    n = len(records)
    text = scored.pop("responses_text")
    metrics.update(scored.pop("flat"))
    metrics.update(scored)
    prefill_file = d / "prefill_responses.jsonl"
    if metrics.get("prefill") and prefill_file.is_file():
        pre = read_jsonl(prefill_file)
        pre_before = _verdicts(pre, offline)
        zero = metrics["rates"]["malicious_refusal_rate"] if "0" in metrics["prefill"] else None  # K = 0: plain
        metrics["prefill"] = score_prefill_records(pre, cfg, zero)
        changed += sum(a != b for a, b in zip(pre_before, _verdicts(pre, offline)))
        n += len(pre)
        write_jsonl(prefill_file, [json_safe(r) for r in pre])
    metrics["rescored"] = {"classifier": classifier_fingerprint(), "changed_verdicts": changed, "n_verdicts": n}
    write_text(d / "responses.jsonl", text)
    write_text(d / "metrics.json", json.dumps(json_safe(metrics), indent=2, default=str))
    return {"dir": str(d), "changed": changed, "n": n, "before": old, "after": {k: metrics.get(k) for k in HEADLINE}}


def eval_dirs(run: Path) -> list[Path]:
    """The evals.run output dirs of a demo run that belong to it (not linked from another run)."""
    out = []
    for pattern in ("eval/*", "eval_holdout/*", "attack/eval_*"):
        for d in sorted(run.glob(pattern)):
            if d.is_dir() and not d.is_symlink() and (d / "metrics.json").is_file():
                out.append(d)
    return out


def rescore_run(run: Path) -> list[dict]:
    """Re-score a demo run: its evals, the attack's RRR, the report and summary.json."""
    from evals.report import build_report, write_summary
    from evals.robustness import run as robustness

    if not (run / "summary.json").is_file():
        raise EvalError(f"{run}: no summary.json (not a finished recipes.demo run)")
    results = [rescore_dir(d) for d in eval_dirs(run)]
    summary = read_json(run / "summary.json")
    attack = {}
    report = run / "attack" / "report"
    if (report / "robustness.json").is_file():
        steps = sorted(int(p.name.split("_")[1]) for p in (run / "attack").glob("eval_*"))
        payload = robustness(str(run / "eval" / "grpo"), [str(run / "attack" / f"eval_{s}") for s in steps],
                             str(report), names=["grpo", *(f"attack_{s}" for s in steps)])
        for s in steps:
            r = payload["runs"][f"attack_{s}"]
            attack[str(s)] = {"rrr": r["rrr"]["value"], "ci": [r["rrr"]["ci_low"], r["rrr"]["ci_high"]],
                              "rd_median": r["rd"]["median"], "ce_bits": r["ce"]["bits"]}
    names = [n for n in ("base", "sft", "grpo") if (run / "eval" / n / "metrics.json").is_file()]
    build_report([str(run / "eval" / n) for n in names], run / "report.md", names=names,
                 train_logs=[str(run / "sft" / "metrics.jsonl"), str(run / "grpo" / "metrics.jsonl")])
    write_summary(run, {n: summary[n].get("adapter", "smollm2-135m") for n in names}, attack,
                  summary.get("settings", {}), summary.get("timings_s", {}))
    return results


def _fmt(x) -> str:
    return "  -  " if x is None or x != x else f"{x:.3f}"  # None or NaN: the rate has no rows here


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="demo run dirs (with summary.json) or evals.run output dirs")
    args = ap.parse_args(argv)
    try:
        for target in map(Path, args.dirs):
            results = rescore_run(target) if (target / "summary.json").is_file() else [rescore_dir(target)]
            for r in results:
                print(f"{r['dir']}: {r['changed']}/{r['n']} verdicts changed; "
                      + "  ".join(f"{k} {_fmt(r['before'][k])} -> {_fmt(r['after'][k])}" for k in HEADLINE))
    except (UserError, OSError) as e:
        print(f"evals.rescore: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
