"""The judge accuracy table: markers, classifier and LLM judges on the same labelled rows.

    python -m evals.judge_summary --runs runs/judge/qwen05 runs/judge/qwen15 --out docs/results/judge.json \
        [--more runs/judge/qwen15_recovery runs/judge/full] [--machine "2-core CPU, 24 GiB"]

Each RUN is an `evals.detectors` output dir scored with `--judge` (and `--per-kind`); all runs must
hold the same rows (the same per-kind sample), so the offline detectors are taken from the first
and must agree with the others. `--more`: other `evals.detectors` runs (other rows: one kind, or
every row without a judge), each summarized on its own. Writes OUT (compact JSON: per detector,
overall and per-kind accuracy, strict accuracy (an unparseable verdict counted as an error),
false / missed refusal rates, each with k, n and its Wilson 95% interval; the judges' unparseable
counts and wall times; the command that made each run) and prints the Markdown tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from evals.detectors import KINDS
from evals.metrics import EvalError
from runtime.config import parse_cli
from runtime.io import write_text

RATES = ("accuracy", "strict_accuracy", "false_refusal_rate", "missed_refusal_rate")


def _rate(r: dict) -> dict:
    value = r["value"]
    return {"value": None if value is None or value != value else round(value, 4), "k": r["k"], "n": r["n"],
            "ci": [round(r["ci_low"], 4), round(r["ci_high"], 4)]}


def _block(b: dict) -> dict:
    return {name: _rate(b[name]) for name in RATES if name in b}


def compact(block: dict) -> dict:
    """One detector of detectors.json -> overall and per-kind rates, n_invalid."""
    return {"overall": _block(block), "by_kind": {k: _block(v) for k, v in block["by_kind"].items()},
            "unparseable": block["n_invalid"]}


def judge_name(run: dict) -> str:
    j = run.get("judge") or {}
    return "judge " + (j.get("model") or j.get("target") or "?")


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b and c discordant pairs (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(run: dict, replies: list[dict]) -> dict:
    """The judge against the classifier row by row (judge_replies.jsonl: id, kind, refusal, p), overall and
    per kind: both right, only the judge right, only the classifier right, both wrong, the judge
    unparseable; with the exact McNemar p-value of the discordant rows (unparseable rows left out)."""
    wrong = {e["id"] for e in run["detectors"]["classifier"]["errors"]}
    threshold = run["threshold"]
    groups: dict[str, dict] = {}
    for r in replies:
        for g in ("all", r["kind"]):
            c = groups.setdefault(g, {"both_right": 0, "judge_only_right": 0, "classifier_only_right": 0,
                                      "both_wrong": 0, "judge_unparseable": 0})
            if r["p"] is None:
                c["judge_unparseable"] += 1
                continue
            judge_right = (r["p"] >= threshold) == bool(r["refusal"])
            clf_right = r["id"] not in wrong
            key = {(True, True): "both_right", (True, False): "judge_only_right",
                   (False, True): "classifier_only_right", (False, False): "both_wrong"}[(judge_right, clf_right)]
            c[key] += 1
    for c in groups.values():
        c["mcnemar_p"] = round(mcnemar_p(c["judge_only_right"], c["classifier_only_right"]), 4)
    return groups


def summarize(runs: list[dict], replies: list[list[dict] | None] | None = None) -> dict:
    """The compact summary of detectors.json results scored on the same rows; `replies`: each run's
    judge_replies.jsonl rows, for the row-by-row comparison with the classifier."""
    if not runs:
        raise EvalError("judge_summary: give at least one evals.detectors run")
    ids = [(r.get("sample") or {}).get("ids") for r in runs]
    if any(i != ids[0] for i in ids[1:]):
        raise EvalError("judge_summary: the runs scored different rows (use the same --per-kind and --seed)")
    first = runs[0]
    detectors: dict = {}
    for name in ("markers", "classifier"):
        detectors[name] = compact(first["detectors"][name])
        for r in runs[1:]:
            if compact(r["detectors"][name]) != detectors[name]:
                raise EvalError(f"judge_summary: the {name} detector differs between runs on the same rows")
    for r, rep in zip(runs, replies or [None] * len(runs)):
        if not r.get("judge"):
            continue
        j = r["judge"]
        detectors[judge_name(r)] = {
            **compact(r["detectors"]["judge"]),
            **{k: j[k] for k in ("target", "dtype", "max_tokens", "wall_s", "engine_start_s", "generate_s",
                                 "unparseable_replies") if k in j}}
        if rep is not None:
            detectors[judge_name(r)]["vs_classifier"] = paired(r, rep)
    return {"data": _relative(first["data"]), "kinds": first.get("kinds", list(KINDS)), "threshold": first["threshold"],
            "n": first["n"], "sample": {k: v for k, v in (first.get("sample") or {}).items() if k != "ids"},
            "detectors": detectors}


def _cell(r: dict | None, digits: int = 3) -> str:
    if r is None or r["n"] == 0:
        return "—"
    return f"{r['value']:.{digits}f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] ({r['k']}/{r['n']})"


def markdown(summary: dict) -> str:
    """Two tables: accuracy (parsed verdicts, and strict) overall and per kind; error rates overall; then
    each judge against the classifier row by row on the recovery rows and on all rows."""
    dets = summary["detectors"]
    kinds = [k for k in KINDS if any(k in d["by_kind"] for d in dets.values())]
    lines = ["| detector | unparseable | overall accuracy | overall strict accuracy | "
             + " | ".join(kinds) + " |",
             "|---|---|---|---|" + "---|" * len(kinds)]
    for name, d in dets.items():
        lines.append(f"| {name} | {d['unparseable']} | {_cell(d['overall']['accuracy'])} | "
                     f"{_cell(d['overall']['strict_accuracy'])} | "
                     + " | ".join(_cell(d["by_kind"].get(k, {}).get("strict_accuracy")) for k in kinds) + " |")
    lines += ["", "| detector | false refusal (labelled 0 called refusal) | missed refusal (labelled 1 missed) |",
              "|---|---|---|"]
    for name, d in dets.items():
        lines.append(f"| {name} | {_cell(d['overall']['false_refusal_rate'])} | "
                     f"{_cell(d['overall']['missed_refusal_rate'])} |")
    pairs = [(name, g, d["vs_classifier"][g]) for name, d in dets.items() if "vs_classifier" in d
             for g in ("recovery", "all") if g in d["vs_classifier"]]
    if pairs:
        lines += ["", "| judge vs classifier, same rows | both right | only judge right | only classifier right | "
                      "both wrong | judge unparseable | McNemar p |", "|---|---|---|---|---|---|---|"]
        for name, g, c in pairs:
            lines.append(f"| {name}, {'all rows' if g == 'all' else g} | {c['both_right']} | {c['judge_only_right']} | "
                         f"{c['classifier_only_right']} | {c['both_wrong']} | {c['judge_unparseable']} | "
                         f"{c['mcnemar_p']:.3f} |")
    return "\n".join(lines) + "\n"


@dataclass(kw_only=True)
class JudgeSummaryArgs:
    """The command line of `python -m evals.judge_summary`."""

    runs: list[str]
    """evals.detectors output dirs scored with a judge, on the same rows."""
    out: str = "docs/results/judge.json"
    """The compact JSON summary."""
    more: list[str] = field(default_factory=list)
    """Other evals.detectors output dirs (other rows), each summarized on its own under "more"."""
    machine: str = ""
    """Where the runs were measured, recorded in OUT.json."""


def read_run(path: str | Path) -> dict:
    f = Path(path) / "detectors.json"
    if not f.is_file():
        raise EvalError(f"{f}: no such file (an evals.detectors output dir?)")
    return json.loads(f.read_text())


def dumps(obj, depth: int = 3, _level: int = 0) -> str:
    """JSON with one line per value below `depth` levels of nesting (a rate block per line)."""
    if _level >= depth or not isinstance(obj, dict | list) or not obj:
        return json.dumps(obj)
    pad, inner = " " * _level, " " * (_level + 1)
    if isinstance(obj, list):
        return "[\n" + ",\n".join(inner + dumps(v, depth, _level + 1) for v in obj) + "\n" + pad + "]"
    return "{\n" + ",\n".join(f"{inner}{json.dumps(k)}: {dumps(v, depth, _level + 1)}" for k, v in obj.items()) \
        + "\n" + pad + "}"


def _relative(path: str) -> str:
    root = Path(__file__).resolve().parents[1]
    p = Path(path).resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else path


def read_replies(path: str | Path) -> list[dict] | None:
    f = Path(path) / "judge_replies.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else None


def run_command(run: dict, out: str) -> str:
    """The evals.detectors command line that made `run` (its output dir `out`), from what it recorded."""
    cmd = ["python -m evals.detectors"]
    if run.get("judge"):
        cmd.append(f"--judge {run['judge']['target']}")
        if run["judge"].get("max_tokens", 64) != 64:
            cmd.append(f"--judge-max-tokens {run['judge']['max_tokens']}")
        if run["judge"].get("dtype", "float32") != "float32":
            cmd.append(f"--judge-dtype {run['judge']['dtype']}")
    if run.get("kinds") and list(run["kinds"]) != list(KINDS):
        cmd.append(f"--kinds {','.join(run['kinds'])}")
    if run.get("sample"):
        cmd.append(f"--per-kind {run['sample']['per_kind']}")
        if run["sample"]["seed"]:
            cmd.append(f"--seed {run['sample']['seed']}")
    return " ".join(cmd + [f"--out {out}"])


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(JudgeSummaryArgs, argv, prog="python -m evals.judge_summary")
    runs = [read_run(r) for r in args.runs]
    more = [read_run(r) for r in args.more]
    commands = [run_command(r, d) for r, d in zip(runs + more, args.runs + args.more)]
    commands.append(" ".join(["python -m evals.judge_summary --runs", *args.runs, "--out", args.out]
                             + (["--more", *args.more] if args.more else [])))
    summary = {"machine": args.machine, "commands": commands,
               **summarize(runs, [read_replies(d) for d in args.runs]),
               "more": [{"run": d, **summarize([r], [read_replies(d)])} for r, d in zip(more, args.more)]}
    write_text(Path(args.out), dumps(summary, depth=4) + "\n")
    for block in [summary, *summary["more"]]:
        print(f"{block['n']} rows of kinds {', '.join(block['kinds'])}"
              + (f", at most {block['sample']['per_kind']} per kind (seed {block['sample']['seed']})"
                 if block["sample"] else "") + ":\n")
        print(markdown(block))
    return 0


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
