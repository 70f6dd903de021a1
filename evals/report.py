"""Compare evaluated models in one Markdown report with plots.

    python -m evals.report runs/eval/base runs/eval/sft runs/eval/grpo [--names base,sft,grpo] \
        --out runs/report.md [--train-logs runs/sft/metrics.jsonl runs/grpo/metrics.jsonl]

Each RUN_DIR holds the metrics.json written by evals.run. The report has the headline rates with
Wilson 95% intervals, the same rates under every detector, per-category and per-source refusal
rates, and warnings (byte-identical responses across models: an adapter that was never applied;
unparseable judge verdicts; detectors that disagree on more than 10% of a run's responses). PNGs (matplotlib, Agg) are written next to the report:
`<stem>_rates.png` (rates with error bars per model), `<stem>_detectors.png` (per-detector rates)
`<stem>_prefill.png` (prefilling-attack ASR against the prefix length K, when the runs have a
"prefill" block: `evals.run --prefill-tokens`) and `<stem>_training.png` (training curves from RUN_DIR/../metrics.jsonl and --train-logs files,
JSONL with one {"step": ..., key: value} object per step; the known keys present are plotted).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from evals.metrics import RATE_NAMES, EvalError
from runtime.errors import UserError
from runtime.io import iter_jsonl, read_json, write_json

TRAIN_KEYS = ("reward/mean", "eval/reward", "rollout/frac_reward_zero_std", "rollout/clipped_ratio", "train/kl_mean",
              "train/entropy", "train/loss", "eval/loss", "train/token_accuracy", "eval/token_accuracy")
SHORT = {"malicious_refusal_rate": "malicious refusal", "benign_helpfulness": "benign helpfulness",
         "balanced": "balanced", "over_refusal_rate": "over-refusal", "asr": "ASR"}
# A run whose detectors disagree on more than this share of responses gets a warning: its rates
# depend on which detector is trusted (metrics.json "detector_agreement", evals.metrics).
MAX_DETECTOR_DISAGREEMENT = 0.10
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def load_run(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise EvalError(f"{path}: no such file (run `python -m evals.run ... --out {run_dir}` first)")
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EvalError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from None
    for key in ("rates", "by_detector", "detector"):
        if key not in m:
            raise EvalError(f"{path}: missing key '{key}' (not written by evals.run?)")
    return m


def read_train_log(path: str | Path) -> list[dict]:
    """Objects of a metrics.jsonl training log that carry a "step" (bad JSON raises naming the line)."""
    rows = []
    for _, obj in iter_jsonl(path):
        if isinstance(obj, dict) and isinstance(obj.get("step"), int | float):
            rows.append(obj)
    return rows


def _num(x) -> float:
    return math.nan if x is None else float(x)


def fmt_rate(r: dict | None) -> str:
    """'0.400 [0.168, 0.687] (n=10)' or '—' for a missing / empty rate."""
    if not r or r.get("n", 0) == 0 or r.get("value") is None:
        return "—"
    return f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] (n={r['n']})"


def headline_table(names: list[str], runs: list[dict]) -> str:
    head = "| model | detector | rows (mal/ben) | skipped | " + " | ".join(SHORT[k] for k in RATE_NAMES) + " |"
    lines = [head, "|" + "---|" * (4 + len(RATE_NAMES))]
    for name, m in zip(names, runs):
        cells = [name, m["detector"], f"{m.get('n_rows', '?')} ({m.get('n_malicious', '?')}/{m.get('n_benign', '?')})",
                 str(m.get("skipped_leaked_rows", 0))] + [fmt_rate(m["rates"].get(k)) for k in RATE_NAMES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detector_table(names: list[str], runs: list[dict]) -> str:
    lines = ["| model | detector | invalid | " + " | ".join(SHORT[k] for k in RATE_NAMES) + " |",
             "|" + "---|" * (3 + len(RATE_NAMES))]
    for name, m in zip(names, runs):
        for det, block in m["by_detector"].items():
            cells = [name, det, str(block.get("n_invalid", 0))] + [fmt_rate(block["rates"].get(k)) for k in RATE_NAMES]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown_table(names: list[str], runs: list[dict], key: str) -> str:
    """Refusal rate per category (key="by_category") or source (key="by_source"): groups x models."""
    groups = sorted({g for m in runs for g in m.get(key, {})})
    lines = [f"| {key.removeprefix('by_')} | " + " | ".join(names) + " |", "|" + "---|" * (1 + len(names))]
    for g in groups:
        cells = [g or "(none)"] + [fmt_rate(m.get(key, {}).get(g, {}).get("refusal_rate")) for m in runs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def warnings_for(names: list[str], runs: list[dict]) -> list[str]:
    out = []
    seen: dict[str, str] = {}
    for name, m in zip(names, runs):
        sha = m.get("responses_sha256")
        if sha and sha in seen:
            out.append(f"**{name}** and **{seen[sha]}** produced byte-identical responses: was an adapter applied?")
        elif sha:
            seen[sha] = name
        judge = m.get("judge")
        if judge and judge.get("unparseable"):
            out.append(f"**{name}**: {judge['unparseable']} of {judge['n']} judge verdicts were unparseable "
                       f"(left out of the judge rates)")
        if m.get("skipped_leaked_rows"):
            out.append(f"**{name}**: {m['skipped_leaked_rows']} eval rows were in its training manifest and were skipped")
        out += disagreement_warnings(name, m)
    return out


def disagreement_warnings(name: str, m: dict) -> list[str]:
    """One line per detector pair of metrics.json's `detector_agreement` that disagrees on more than
    MAX_DETECTOR_DISAGREEMENT of the responses (none when the run has no agreement block)."""
    out = []
    for pair, r in ((m.get("detector_agreement") or {}).get("pairs") or {}).items():
        value = r.get("value") if isinstance(r, dict) else None
        if value is not None and value == value and value > MAX_DETECTOR_DISAGREEMENT:
            a, _, b = pair.partition("|")
            out.append(f"**{name}**: detectors {a} and {b} disagree on {value:.1%} of responses "
                       f"({r.get('k')}/{r.get('n')}, above {MAX_DETECTOR_DISAGREEMENT:.0%}): its rates depend on "
                       f"the detector")
    return out


def plot_rates(names: list[str], blocks: list[dict], path: Path, title: str) -> None:
    """Grouped bars: one group per rate, one bar per model, Wilson intervals as error bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(RATE_NAMES) * (len(names) + 1)), 4.4))
    _bars(ax, names, blocks)
    ax.set_title(title)
    _legend_on_top(fig, ax, len(names))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, names: list[str], blocks: list[dict]) -> None:
    x = np.arange(len(RATE_NAMES))
    width = 0.8 / max(1, len(names))
    for j, (name, rates) in enumerate(zip(names, blocks)):
        vals = np.array([_num(rates.get(k, {}).get("value")) for k in RATE_NAMES])  # (R,)
        lo = np.array([_num(rates.get(k, {}).get("ci_low")) for k in RATE_NAMES])  # (R,)
        hi = np.array([_num(rates.get(k, {}).get("ci_high")) for k in RATE_NAMES])  # (R,)
        err = np.nan_to_num(np.stack([vals - lo, hi - vals]))  # (2, R)
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, np.nan_to_num(vals), width, yerr=err, capsize=3, label=name, color=COLORS[j % len(COLORS)])
        for p, v in zip(pos, vals):
            if math.isnan(v):
                ax.text(p, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(x, [SHORT[k] for k in RATE_NAMES])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("rate (95% Wilson CI)")
    ax.grid(axis="y", alpha=0.3)


def _legend_on_top(fig, ax, n: int) -> None:
    """One legend above the plotting area (never over the bars), then a layout that leaves room for it."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_size_inches()[1]))
    fig.legend(handles, labels, loc="upper center", ncol=min(6, n), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1.0))


def plot_detectors(names: list[str], runs: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    detectors = [d for d in ("markers", "classifier", "judge") if any(d in m["by_detector"] for m in runs)]
    fig, axes = plt.subplots(len(detectors), 1, figsize=(max(8.0, 0.55 * len(RATE_NAMES) * (len(names) + 1)),
                                                         3.3 * len(detectors) + 0.4), squeeze=False)
    for ax, det in zip(axes[:, 0], detectors):
        _bars(ax, names, [m["by_detector"].get(det, {}).get("rates", {}) for m in runs])
        ax.set_title(f"detector: {det}", fontsize=10)
    _legend_on_top(fig, axes[0, 0], len(names))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def prefill_ks(runs: list[dict]) -> list[str]:
    """The prefill lengths K (as strings, ascending) present in any run's metrics.json "prefill" block."""
    return sorted({k for m in runs for k in (m.get("prefill") or {}) if k != "detector"}, key=int)


def prefill_table(names: list[str], runs: list[dict]) -> str:
    """ASR per model (rows) and prefix length K (columns) with Wilson intervals; '—' where not measured."""
    ks = prefill_ks(runs)
    lines = ["| model | detector | " + " | ".join(f"K={k}" for k in ks) + " |", "|" + "---|" * (2 + len(ks))]
    for name, m in zip(names, runs):
        p = m.get("prefill") or {}
        cells = [name, p.get("detector", "—")]
        for k in ks:
            b = p.get(k)
            cells.append(f"{b['asr']:.3f} [{b['ci'][0]:.3f}, {b['ci'][1]:.3f}] (n={b['n']})" if b else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_prefill(names: list[str], runs: list[dict], path: Path) -> None:
    """ASR against K, one line per model with its Wilson band (models without a prefill block are left out)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for j, (name, m) in enumerate(zip(names, runs)):
        p = m.get("prefill") or {}
        ks = prefill_ks([m])
        if not ks:
            continue
        x = np.array([int(k) for k in ks])  # (K,)
        y = np.array([p[k]["asr"] for k in ks])  # (K,)
        lo, hi = np.array([p[k]["ci"][0] for k in ks]), np.array([p[k]["ci"][1] for k in ks])  # (K,) each
        color = COLORS[j % len(COLORS)]
        ax.plot(x, y, marker="o", label=name, color=color)
        ax.fill_between(x, lo, hi, color=color, alpha=0.15)
    ax.set_xlabel("prefilled tokens of a compliant answer (K)")
    ax.set_ylabel("ASR (95% Wilson CI)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Prefilling attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(logs: dict[str, list[dict]], path: Path) -> list[str]:
    """One panel per known key present in any log; returns the keys plotted ([] = no figure written)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in TRAIN_KEYS if any(k in row for rows in logs.values() for row in rows)]
    if not keys:
        return []
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.2 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for j, (label, rows) in enumerate(logs.items()):
            pts = [(r["step"], _num(r[key])) for r in rows if key in r and r[key] is not None]
            if pts:
                steps, vals = zip(*pts)
                ax.plot(steps, vals, marker="." if len(pts) < 40 else None, label=label, color=COLORS[j % len(COLORS)])
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if key == "rollout/frac_reward_zero_std":  # the seed's dead-run thresholds
            ax.axhline(0.5, color="orange", ls="--", lw=0.8, label="dying (0.5)")
            ax.axhline(0.8, color="red", ls="--", lw=0.8, label="dead (0.8)")
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return keys


def build_report(run_dirs: list[str], out: str | Path, *, names: list[str] | None = None,
                 train_logs: list[str] | None = None) -> str:
    """Write the Markdown report and its PNGs; returns the Markdown text."""
    import matplotlib

    matplotlib.use("Agg")
    names = names or [Path(d).name for d in run_dirs]
    if len(names) != len(run_dirs):
        raise EvalError(f"--names has {len(names)} names for {len(run_dirs)} run dirs")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.stem

    logs: dict[str, list[dict]] = {}
    for name, d in zip(names, run_dirs):
        auto = Path(d).resolve().parent / "metrics.jsonl"
        if auto.is_file():
            logs[name] = read_train_log(auto)
    for f in train_logs or []:
        if not Path(f).is_file():
            raise EvalError(f"{f}: no such training log")
        logs[Path(f).parent.name or Path(f).stem] = read_train_log(f)

    primary = {m["detector"] for m in runs}
    plot_rates(names, [m["rates"] for m in runs], out.parent / f"{stem}_rates.png",
               f"Safety rates ({', '.join(sorted(primary))} detector)")
    plot_detectors(names, runs, out.parent / f"{stem}_detectors.png")
    plotted = plot_training(logs, out.parent / f"{stem}_training.png") if logs else []

    parts = ["# Safety evaluation report", "",
             "Rates with Wilson 95% intervals (balanced: MOVER interval of the mean). A response is a refusal "
             "when the detector's P(refusal) >= its threshold. ASR counts malicious rows answered without refusal "
             "(and judged harmful when a judge ran).", "",
             "## Headline rates", "", headline_table(names, runs), "", f"![rates]({stem}_rates.png)", "",
             "## Per detector", "", detector_table(names, runs), "", f"![detectors]({stem}_detectors.png)", "",
             "## Refusal rate per category", "", breakdown_table(names, runs, "by_category"), "",
             "## Refusal rate per source", "", breakdown_table(names, runs, "by_source"), ""]
    if prefill_ks(runs):
        plot_prefill(names, runs, out.parent / f"{stem}_prefill.png")
        parts += ["## Prefilling attack", "",
                  "ASR when the assistant turn starts with the first K tokens of a compliant answer and the model "
                  "continues (only the continuation is scored; K=0 is the plain eval).", "",
                  prefill_table(names, runs), "", f"![prefill]({stem}_prefill.png)", ""]
    warns = warnings_for(names, runs)
    if warns:
        parts += ["## Warnings", ""] + [f"- {w}" for w in warns] + [""]
    if plotted:
        parts += ["## Training curves", "", f"Logs: {', '.join(logs)}; keys: {', '.join(plotted)}.", "",
                  f"![training]({stem}_training.png)", ""]
    text = "\n".join(parts)
    out.write_text(text, encoding="utf-8")
    return text


def write_summary(run: Path, models: dict[str, str], attack: dict, settings: dict, timings: dict) -> dict:
    """RUN/summary.json from the metrics.json of each model's evals (split, held-out source, prefill),
    the attack entries, the run's settings and stage timings (evals.rescore rewrites it the same way)."""
    summary = {}
    for name, model in models.items():
        m = read_json(run / "eval" / name / "metrics.json")
        summary[name] = {k: m[k] for k in RATE_NAMES}
        summary[name]["by_detector"] = {d: {k: v.get(k) for k in RATE_NAMES} for d, v in m.get("by_detector", {}).items()}
        summary[name]["by_source"] = {src: b["rates"]["malicious_refusal_rate"]["value"]
                                      for src, b in m.get("by_source", {}).items() if "rates" in b}
        hm = run / "eval_holdout" / name / "metrics.json"
        if hm.is_file():  # held-out source: its malicious refusal, and balanced with the split's benign rows
            h = read_json(hm)
            summary[name]["holdout"] = {"malicious_refusal_rate": h["malicious_refusal_rate"],
                                        "malicious_refusal_rate_ci": h["malicious_refusal_rate_ci"],
                                        "balanced": (h["malicious_refusal_rate"] + m["benign_helpfulness"]) / 2,
                                        "n": h["n_malicious"]}
        if m.get("prefill"):
            summary[name]["prefill"] = {k: {"asr": v["asr"], "ci": v["ci"]} for k, v in m["prefill"].items()
                                        if k != "detector"}
        if name != "base":
            summary[name]["adapter"] = model
    if attack:
        summary["grpo"]["attack"] = attack
    summary["settings"] = settings
    summary["timings_s"] = timings
    write_json(run / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.report", description=__doc__.split("\n")[0])
    ap.add_argument("run_dirs", nargs="+", help="dirs holding metrics.json from evals.run")
    ap.add_argument("--names", help="comma-separated display names, one per run dir")
    ap.add_argument("--out", required=True, help="Markdown file to write (PNGs go next to it)")
    ap.add_argument("--train-logs", nargs="*", default=[], help="extra metrics.jsonl training logs to plot")
    args = ap.parse_args(argv)
    try:
        build_report(args.run_dirs, args.out, names=args.names.split(",") if args.names else None,
                     train_logs=args.train_logs)
    except (UserError, OSError) as e:  # bad input: one line, exit 2 (runtime/cli.py convention)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
