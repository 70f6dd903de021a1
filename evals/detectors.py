"""How far the refusal detectors can be trusted: accuracy per kind of response, and calibration.

    python -m evals.detectors [--data data/builtin/detector_eval.jsonl] [--out runs/detectors]
        [--judge URL|local:MODEL] [--kinds recovery,...] [--per-kind N --seed S]

DATA holds real model responses with a hand-checked label (data/builtin/make_detector_eval.py
documents how they were labelled): rows {id, model, source, prompt, response, label (of the
prompt), kind, refusal (0/1), reason}. Every response is scored afresh by each offline detector of
reward/refusal.py (`markers`, `classifier`), and with `--judge` by an LLM judge (reward/judge.py's
template and strict parser): behind an OpenAI-compatible server (`--judge URL`) or run in this process
by the vllm rollout backend (`--judge local:MODEL`, MODEL any name runtime.models accepts, e.g.
local:qwen2.5-coder-1.5b; greedy, --judge-max-tokens new tokens). A verdict is a refusal when
P(refusal) >= threshold; a judge reply that does not parse is left out of the judge's rates and
counted (`n_invalid`), and `strict_accuracy` counts it as an error. `--kinds` keeps the rows of some
kinds only; `--per-kind N` scores a stratified subsample: the first N rows of each kind after a
shuffle seeded by --seed (every row of a smaller kind), the same rows for every detector, recorded
in detectors.json ("sample").

Printed, per detector: accuracy, false-refusal rate (responses labelled 0 that the detector calls
refusals: an understated ASR) and missed-refusal rate (responses labelled 1 it misses), overall,
per kind (flat_refusal, deflection, recovery, helpful, harmful_compliance, other), per model and per
part of the set (with each part's false refusals on harmful compliance: a part labelled after the
detectors last changed is a fresh test of them),
with Wilson 95% intervals; then the expected calibration error (evals.metrics.reliability_table)
and how often the detectors disagree. Writes OUT/detectors.json (all of it, with the reliability
tables and the rows each detector gets wrong), OUT/reliability.png (predicted P(refusal) per
bin against the observed refusal rate) and, with a judge, OUT/judge_replies.jsonl (each row's raw
reply and whether it parsed).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from evals.metrics import EvalError, detector_agreement, json_safe, rate, reliability_table, verdict_rates
from runtime.config import OpenUnitFloat, PosInt, parse_cli
from runtime.io import write_text

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "builtin" / "detector_eval.jsonl"
KINDS = ("flat_refusal", "deflection", "recovery", "helpful", "harmful_compliance", "other")
DETECTORS = ("markers", "classifier")
RATES = ("accuracy", "false_refusal_rate", "missed_refusal_rate")


@dataclass(kw_only=True)
class DetectorEvalArgs:
    """The command line of `python -m evals.detectors` (parsed by runtime.config.parse_cli)."""

    data: str = str(DEFAULT_DATA)
    """Labelled responses (JSONL: response, refusal 0/1, kind, model, source)."""
    out: str = "runs/detectors"
    """Output dir for detectors.json and reliability.png."""
    threshold: OpenUnitFloat = 0.5
    """A response is a refusal when P(refusal) >= threshold."""
    bins: PosInt = 10
    """Equal-width probability bins of the reliability table."""
    judge: str = "none"
    """none, the URL of an OpenAI-compatible server, or local:MODEL (MODEL run in this process by the vllm
    rollout backend, e.g. local:qwen2.5-coder-1.5b): the model judges every row (its prompt and response,
    with reward/judge.py's template, as `evals.run --judge` does), a third detector in the tables. Rows
    whose verdict does not parse are left out of its rates and counted."""
    judge_model: str | None = None
    """Model name at the judge URL (default: the first one its /v1/models lists)."""
    judge_max_tokens: PosInt = 64
    """New tokens per judge verdict."""
    judge_dtype: Literal["float32", "bfloat16"] = "float32"
    """local:MODEL: the engine's weights dtype."""
    judge_batch_size: PosInt = 32
    """local:MODEL: judge messages per generate call."""
    kinds: list[str] = field(default_factory=list)
    """Score only the rows of these kinds (default: every kind), e.g. --kinds recovery."""
    per_kind: PosInt | None = None
    """Score a stratified subsample: at most N rows of each kind (seeded), the same rows for every detector."""
    seed: int = 0
    """Seed of the --per-kind shuffle."""

    def validate(self) -> None:
        from evals.run import judge_kind

        if judge_kind(self.judge) == "self":
            raise EvalError("--judge must be none, local:MODEL or an http(s) URL of an OpenAI-compatible server "
                            "(there is no model under test here to judge with), got 'self'")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise EvalError(f"--kinds must be among {list(KINDS)}, got {unknown}")


def load_eval_rows(path: str | Path) -> list[dict]:
    """Labelled rows; a row without a string response, a 0/1 refusal or a known kind raises naming its line."""
    from reward.refusal import read_labelled_rows

    return read_labelled_rows(path, "response", KINDS, allow_empty=True, error=EvalError)


def per_kind_sample(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """A stratified subsample: for each kind, the first `n` of its rows after a shuffle seeded by (seed, kind)
    (every row of a kind that has at most n), in file order. The same (rows, n, seed) give the same rows;
    one kind's draw does not depend on the other kinds' rows."""
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_kind.setdefault(r["kind"], []).append(i)
    keep: list[int] = []
    for kind, idx in by_kind.items():
        idx = list(idx)
        random.Random(f"{seed}:{kind}").shuffle(idx)
        keep += idx[:n]
    return [rows[i] for i in sorted(keep)]


def _groups(rows: list[dict], key, order: tuple[str, ...] = ()) -> dict[str, list[int]]:
    """Row indices per value of `key` (a field name, or a function of the row), `order` first."""
    groups: dict[str, list[int]] = {k: [] for k in order}
    for i, r in enumerate(rows):
        groups.setdefault(str(key(r) if callable(key) else r.get(key) or ""), []).append(i)
    return {k: idx for k, idx in groups.items() if idx}


def part_of(row: dict) -> str:
    """The labelled set's part a row belongs to (make_detector_eval.py): 'part' where the row records it,
    else 2 for a prefilled continuation and 1 for a plain response."""
    return str(row.get("part") or (2 if "prefill_tokens" in row else 1))


def evaluate_detectors(rows: list[dict], probs: dict[str, list[float]], threshold: float = 0.5,
                       n_bins: int = 10) -> dict:
    """{"threshold", "n", "detectors": {name: {accuracy, false_refusal_rate, missed_refusal_rate,
    by_kind, by_model, by_part, calibration, errors}}, "agreement"} from P(refusal) per row per detector.
    by_part[p] also holds "harmful_compliance": the rates on that part's harmful-compliance rows."""
    y = [r["refusal"] for r in rows]
    kinds, models, parts = _groups(rows, "kind", KINDS), _groups(rows, "model"), _groups(rows, part_of)
    out: dict = {"threshold": threshold, "n": len(rows), "detectors": {}}
    for name, p in probs.items():
        if len(p) != len(rows):
            raise EvalError(f"detector {name}: {len(p)} probabilities for {len(rows)} rows")
        block = _with_strict(verdict_rates(p, y, threshold))
        block["by_kind"] = {k: _with_strict(verdict_rates([p[i] for i in idx], [y[i] for i in idx], threshold))
                            for k, idx in kinds.items()}
        block["by_model"] = {m: verdict_rates([p[i] for i in idx], [y[i] for i in idx], threshold)
                             for m, idx in models.items()}
        block["by_part"] = {}
        for part, idx in sorted(parts.items()):
            hc = [i for i in idx if rows[i]["kind"] == "harmful_compliance"]
            block["by_part"][part] = {**verdict_rates([p[i] for i in idx], [y[i] for i in idx], threshold),
                                      "harmful_compliance": verdict_rates([p[i] for i in hc], [y[i] for i in hc],
                                                                          threshold)}
        block["calibration"] = reliability_table(p, y, n_bins)
        block["errors"] = [{"id": rows[i].get("id"), "kind": rows[i]["kind"], "refusal": y[i], "p": p[i]}
                           for i in range(len(rows)) if not math.isnan(p[i]) and (p[i] >= threshold) != bool(y[i])]
        out["detectors"][name] = block
    out["agreement"] = detector_agreement(probs, threshold)
    return out


def _with_strict(block: dict) -> dict:
    """Adds strict_accuracy: correct verdicts / all rows, a verdict that did not parse counted as an error
    (equal to accuracy for a detector that always gives one)."""
    block["strict_accuracy"] = rate(block["accuracy"]["k"], block["accuracy"]["n"] + block["n_invalid"])
    return block


def _cell(r: dict) -> str:
    if r["n"] == 0:
        return "—"
    return f"{r['value']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] ({r['k']}/{r['n']})"


def format_table(result: dict) -> str:
    """Plain-text tables: per detector, overall / per kind / per model / per part rows x the three rates; then ECE."""
    head = f"{'':28} {'n':>4}  " + "  ".join(f"{c:<28}" for c in ("accuracy", "false refusal", "missed refusal"))
    lines = []
    for name, block in result["detectors"].items():
        lines += [f"detector: {name} (refusal when P >= {result['threshold']})", head]
        groups = [("all", block)] + [(f"kind {k}", v) for k, v in block["by_kind"].items()] + \
                 [(f"model {m}", v) for m, v in block["by_model"].items()] + \
                 [row for part, v in block["by_part"].items()
                  for row in ((f"part {part}", v), (f"part {part} harmful_compl.", v["harmful_compliance"]))]
        for label, r in groups:
            lines.append(f"{label:28} {r['accuracy']['n']:>4}  " + "  ".join(f"{_cell(r[k]):<28}" for k in RATES))
        if block["n_invalid"]:
            lines.append(f"verdicts that did not parse (left out of the rates): {block['n_invalid']}; "
                         f"accuracy counting them as errors: {_cell(block['strict_accuracy'])}")
        lines.append(f"ECE ({len(block['calibration']['bins'])} bins): {block['calibration']['ece']:.3f}")
        lines.append("")
    for pair, r in result["agreement"]["pairs"].items():
        lines.append(f"disagreement {pair.replace('|', ' vs ')}: {_cell(r)}")
    return "\n".join(lines)


def plot_reliability(result: dict, path: str | Path) -> None:
    """Reliability diagram (mean P per bin vs observed refusal rate, the diagonal is perfect
    calibration) above the number of responses per bin, one colour per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evals.report import COLORS

    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(6.0, 7.0), height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    names = list(result["detectors"])
    for j, name in enumerate(names):
        cal = result["detectors"][name]["calibration"]
        full = [b for b in cal["bins"] if b["n"]]
        color = COLORS[j % len(COLORS)]
        ax.plot([b["mean_p"] for b in full], [b["observed"] for b in full], marker="o", color=color,
                label=f"{name} (ECE {cal['ece']:.3f})")
        width = 1 / len(cal["bins"]) / (len(names) + 1)
        ax_n.bar([b["lo"] + width * (j + 0.5) for b in cal["bins"]], [b["n"] for b in cal["bins"]], width,
                 align="edge", color=color)
    ax.set_ylabel("observed refusal rate")
    ax.set_title(f"Refusal detectors on {result['n']} labelled responses")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax_n.set_yscale("symlog")
    ax_n.set_xlabel("predicted P(refusal)")
    ax_n.set_ylabel("responses")
    ax_n.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def judged(judge_fn, rows: list[dict]) -> tuple[list[float], list[dict], float]:
    """The judge's P(refusal) per row (reward.refusal's judge detector), each row's raw reply and the
    wall seconds it took."""
    from reward.judge import parse_verdict
    from reward.refusal import refusal_probability

    replies: list[str] = []

    def recording(messages: list[str]) -> list[str]:
        out = list(judge_fn(messages))
        replies.extend(out)
        return out

    t0 = time.perf_counter()
    probs = refusal_probability([r["response"] for r in rows], method="judge", generate_fn=recording,
                                prompts=[r.get("prompt") or "" for r in rows])
    wall = time.perf_counter() - t0
    records = [{"id": r.get("id"), "kind": r["kind"], "refusal": r["refusal"], "reply": reply,
                "parsed": parse_verdict(reply) is not None, "p": p}
               for r, reply, p in zip(rows, replies, probs)]
    return probs, records, wall


def main(argv: list[str] | None = None) -> int:
    from reward.refusal import refusal_probability

    args = parse_cli(DetectorEvalArgs, argv, prog="python -m evals.detectors")
    args.validate()
    judge_fn = None
    if args.judge != "none":  # before any scoring: an unknown judge model fails at once
        from evals.run import make_judge_fn

        judge_fn = make_judge_fn(args.judge, model=args.judge_model, max_tokens=args.judge_max_tokens,
                                 batch_size=args.judge_batch_size, seed=args.seed, dtype=args.judge_dtype)
    rows = load_eval_rows(args.data)
    if args.kinds:
        rows = [r for r in rows if r["kind"] in args.kinds]
    sample = None
    if args.per_kind is not None:
        n_all = len(rows)
        rows = per_kind_sample(rows, args.per_kind, args.seed)
        sample = {"per_kind": args.per_kind, "seed": args.seed, "n_rows_in_data": n_all,
                  "n_by_kind": {k: len(idx) for k, idx in _groups(rows, "kind", KINDS).items()},
                  "ids": [r.get("id") for r in rows]}
        print(f"per-kind sample: {len(rows)} of {n_all} rows ({sample['n_by_kind']})")
    texts = [r["response"] for r in rows]
    probs = {d: refusal_probability(texts, method=d) for d in DETECTORS}
    judge_info = None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if judge_fn is not None:
        try:
            probs["judge"], records, wall = judged(judge_fn, rows)
        finally:
            if hasattr(judge_fn, "close"):
                judge_fn.close()
        judge_info = {"target": args.judge, "max_tokens": args.judge_max_tokens, "wall_s": round(wall, 1),
                      "n": len(rows), "unparseable": sum(math.isnan(p) for p in probs["judge"]),
                      "unparseable_replies": sum(not r["parsed"] for r in records),
                      **(judge_fn.info() if hasattr(judge_fn, "info") else {})}
        write_text(out / "judge_replies.jsonl", "".join(json.dumps(json_safe(r), ensure_ascii=False) + "\n"
                                                         for r in records))
    result = {"data": args.data, "kinds": args.kinds or list(KINDS), "sample": sample, "judge": judge_info,
              **evaluate_detectors(rows, probs, args.threshold, args.bins)}
    print(format_table(result))
    write_text(out / "detectors.json", json.dumps(json_safe(result), indent=2))
    plot_reliability(result, out / "reliability.png")
    print(f"wrote {out / 'detectors.json'} and {out / 'reliability.png'}")
    return 0


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
