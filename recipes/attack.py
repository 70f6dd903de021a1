"""The LoRA-attack robustness experiment (refusal-robustness seed): compliance SFT, then RRR / RD / CE.

    python -m recipes.attack --run-dir runs/demo --steps 0,8,16,32 [--backend hf|vllm]
    make attack                                   # the same, on the demo's run dir

`run_attack_experiment(run_dir)` attacks the demo's GRPO adapter with a few strengths (optimizer
steps of pairs-mode SFT continuing the adapter on data/builtin/compliance.py's pairs,
configs/attack_cpu.yaml), evaluates each attacked adapter with evals.run on the demo's eval subset,
and compares every run with the demo's existing eval of the GRPO model via evals.robustness. Each
stage is its own process (recipes/stages.py). The system prompt and prompt budget are the attacked
adapter's recorded ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from data.builtin.compliance import build_pairs_file
from recipes.stages import ROOT, fail, stage
from runtime.io import read_json, read_jsonl, write_json
from runtime.manifest import read_manifest, text_hash
from runtime.models import adapter_base_model, adapter_meta


def leaked_probe_rows(probe_texts: Sequence[str], train_texts: Sequence[str], parent_adapter: str | Path) -> int:
    """How many probe texts the attacked model will have been trained on (pairs + the parent's manifest)."""
    trained = {text_hash(t) for t in train_texts} | read_manifest(parent_adapter)
    return sum(text_hash(t) in trained for t in probe_texts)


def finished_strength(tdir: Path, edir: Path, steps: int, adapter: Path, seed: int) -> bool:
    """Whether an earlier run of this experiment already attacked `adapter` with `steps` steps and `seed` and
    evaluated the result after training it (a re-run, e.g. with more strengths, then skips that strength)."""
    meta_file, metrics = tdir / "adapter" / "safety_grpo.json", edir / "metrics.json"
    if not (meta_file.is_file() and metrics.is_file()) or metrics.stat().st_mtime < meta_file.stat().st_mtime:
        return False
    cfg = _read_json(meta_file).get("config", {})
    init = (cfg.get("policy") or {}).get("init_adapter")
    return (cfg.get("max_steps") == steps and cfg.get("seed") == seed and init is not None
            and Path(init).resolve() == Path(adapter).resolve())


def chained_attack(config: str | Path, overrides: Sequence[str] = ()) -> bool:
    """Whether each strength may continue the one below it instead of training from the attacked adapter again.

    With a constant learning rate and no warmup, step s of a longer attack is the same adapter as an s-step
    attack: the data order is a function of (seed, step) and the optimizer state travels in the checkpoint.
    Any other schedule depends on max_steps, so every strength then trains from scratch.
    """
    from runtime.config import parse_cli
    from sft.train import SFTConfig

    o = parse_cli(SFTConfig, ["--config", str(config), *overrides], prog="sft/train.py").optim
    return o.lr_schedule == "constant" and not o.warmup_steps and not o.warmup_ratio


def _read_json(path: Path) -> dict:
    """A JSON file written by an earlier stage, {} when that stage did not write it."""
    return read_json(path) if path.is_file() else {}


def _last_train_loss(out_dir: Path) -> float | None:
    path = out_dir / "metrics.jsonl"
    loss = None
    if path.is_file():
        for row in read_jsonl(path):
            loss = row.get("train/loss", loss)
    return loss


def plot_vs_steps(summary: list[dict], path: Path) -> None:
    """RRR (with its 95% interval), RD median and CE against attack steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["steps"] for s in summary]
    rrr = [s["rrr"] for s in summary]
    lo = [s["rrr"] - s["rrr_ci"][0] for s in summary]
    hi = [s["rrr_ci"][1] - s["rrr"] for s in summary]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.errorbar(x, rrr, yerr=[lo, hi], marker="o", capsize=4, label="RRR (refusal rate, harmful)")
    ax.plot(x, [s["rd_median"] for s in summary], marker="s", label="RD median")
    ax.plot(x, [s["ce_bits"] for s in summary], marker="^", label="CE (bits)")
    ax.set_xlabel("attack steps (pairs SFT)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Refusal robustness vs LoRA-attack strength")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_attack_experiment(
    run_dir: str | Path,
    steps: Sequence[int] = (0, 8, 16, 32),
    *,
    config: str | Path = ROOT / "configs" / "attack_cpu.yaml",
    backend: str = "vllm",
    max_tokens: int | None = None,
    n_pairs: int | None = None,
    seed: int = 0,
    overrides: Sequence[str] = (),
    python: str = sys.executable,
) -> list[dict]:
    """LoRA-attack the demo's GRPO adapter with each strength in `steps` and report RRR/RD/CE.

    Reads run_dir/grpo/adapter, run_dir/data/train.jsonl (malicious rows -> attack pairs),
    run_dir/eval_rows.jsonl (the probes: its malicious rows) and run_dir/eval/grpo (the demo's eval
    of the GRPO model: the "pre" run, steps 0). Writes run_dir/attack/{pairs.jsonl, steps_S/,
    eval_S/, report/}. max_tokens None: the pre eval's recorded max_tokens (so RD compares responses
    of one length), else 64. `overrides` are extra key=value for sft/train.py. Returns one summary row
    per strength. A missing input or a failed stage exits with a one-line error (SystemExit).
    """
    run = Path(run_dir)
    adapter = run / "grpo" / "adapter"
    train_split, probes, pre = run / "data" / "train.jsonl", run / "eval_rows.jsonl", run / "eval" / "grpo"
    for path, what in ((adapter / "adapter_config.json", "the demo's GRPO adapter"),
                       (train_split, "the demo's training split"), (probes, "the demo's eval subset"),
                       (pre / "responses.jsonl", "the demo's eval of the GRPO model")):
        if not path.is_file():
            fail(f"{path}: missing ({what}); run `python -m recipes.demo --out {run}` first")
    if not Path(config).is_file():
        fail(f"attack config {config} does not exist")
    strengths = sorted({int(s) for s in steps})
    if any(s < 0 for s in strengths):
        fail(f"attack steps must be >= 0, got {list(steps)}")
    base = adapter_base_model(adapter)
    recorded = adapter_meta(adapter)
    out = run / "attack"
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. Pairs from the training split's malicious rows; the probes are eval rows, so none may leak.
    t0 = time.perf_counter()
    pairs_file = out / "pairs.jsonl"
    try:
        pairs = build_pairs_file(train_split, pairs_file, n_pairs, seed)
        probe_rows = read_jsonl(probes)
    except (ValueError, OSError) as e:  # DataError, AttackError, JSON errors
        fail(str(e))
    probe_texts = [r["text"] for r in probe_rows if r.get("label") == "malicious"]
    leaked = leaked_probe_rows(probe_texts, [p["prompt"] for p in pairs], adapter)
    timings["pairs"] = round(time.perf_counter() - t0, 1)
    print(f"=== attack/pairs: {len(pairs)} compliance pairs -> {pairs_file}; {len(probe_texts)} malicious probes, "
          f"{leaked} of them in the attacked model's training data ({timings['pairs']:.1f} s)", flush=True)
    if leaked:
        print(f"warning: evals.run will skip {leaked} probe rows (in the training manifest)", flush=True)

    pre_cfg = _read_json(pre / "metrics.json").get("config", {})
    max_tokens = max_tokens or pre_cfg.get("max_tokens") or 64
    system_prompt = recorded.get("system_prompt")  # the prompt the attacked adapter was trained with
    if pre_cfg.get("system_prompt") != system_prompt:
        print(f"warning: the pre eval used another system prompt ({pre_cfg.get('system_prompt')!r})", flush=True)

    # 2. Attack (pairs SFT continuing the GRPO adapter) and eval, one strength at a time. Under a constant LR
    #    each strength resumes from the checkpoint of the one below it (chained_attack): 32 steps in all for
    #    8, 16 and 32 instead of 56, the same adapters.
    chain = chained_attack(config, overrides)
    names, post_dirs, below = ["grpo"], [], None
    for s in [s for s in strengths if s > 0]:
        tdir, edir = out / f"steps_{s}", out / f"eval_{s}"
        ckpt = tdir / "checkpoints"
        if finished_strength(tdir, edir, s, adapter, seed):
            print(f"=== attack/{s} steps: reusing {tdir} and {edir} (same adapter, steps and seed)", flush=True)
            names.append(f"attack_{s}")
            post_dirs.append(edir)
            below = ckpt if chain and ckpt.is_dir() else None
            continue
        resume = [f"resume={below}"] if below is not None else []
        save = [f"save_every={s}"] if chain else []
        stage(f"train_{s}", [python, "sft/train.py", "--config", str(config), f"max_steps={s}", *save, *resume,
                                    f"out_dir={tdir}", f"policy.init_adapter={adapter}", f"data.train={pairs_file}",
                                    # the attacked adapter owns its rank, alpha and targets, whatever the config says
                                    "policy.r=null", "policy.alpha=null", "policy.target_modules=null",
                                    f"model.name={base}", f"seed={seed}",
                                    *(["--data.system_prompt", system_prompt] if system_prompt else []),
                                    *overrides], timings)
        below = ckpt if chain else None
        # The attacked adapter records the attack config's prompt budget; evaluate exactly as the pre eval did.
        stage(f"eval_{s}", [python, "-m", "evals.run", "--model", str(tdir / "adapter"), "--data", str(probes),
                                   "--out", str(edir), "--max-tokens", str(max_tokens), "--backend", backend,
                                   "--max-prompt-tokens", str(pre_cfg.get("max_prompt_tokens", 512))], timings)
        skipped = _read_json(edir / "metrics.json").get("skipped_leaked_rows", 0)
        if skipped:
            print(f"warning: eval_{s} skipped {skipped} rows found in the attacked adapter's manifest", flush=True)
        names.append(f"attack_{s}")
        post_dirs.append(edir)
    if not post_dirs:
        print("attack: no strength > 0 given; nothing to compare", flush=True)
        return []

    # 3. RRR / RD / CE of every run against the pre (GRPO) eval.
    report = out / "report"
    stage("robustness", [python, "-m", "evals.robustness", "--pre", str(pre), "--post", *map(str, post_dirs),
                          "--names", ",".join(names), "--out", str(report)], timings)
    payload = _read_json(report / "robustness.json")
    summary = []
    for s, name in zip([0] + [s for s in strengths if s > 0], names):
        r = payload["runs"][name]
        summary.append({"steps": s, "name": name, "rrr": r["rrr"]["value"],
                        "rrr_ci": [r["rrr"]["ci_low"], r["rrr"]["ci_high"]], "rd_median": r["rd"]["median"],
                        "rd_mean": r["rd"]["mean"], "rd_valid": r["rd"]["n_valid"], "ce_bits": r["ce"]["bits"],
                        "n_harmful": r["n_harmful"],
                        "train_loss": None if s == 0 else _last_train_loss(out / f"steps_{s}"),
                        "skipped_rows": _read_json((pre if s == 0 else out / f"eval_{s}") / "metrics.json")
                        .get("skipped_leaked_rows")})
    plot_vs_steps(summary, report / "rrr_vs_steps.png")
    timings["total"] = round(time.perf_counter() - t_all, 1)
    write_json(report / "attack_summary.json",
               {"base_model": base, "attacked_adapter": str(adapter), "pairs": len(pairs), "max_tokens": max_tokens,
                "backend": backend, "system_prompt": system_prompt, "strengths": summary, "timings_s": timings})
    print_summary(summary, timings)
    print(f"wrote {report / 'robustness.md'}, {report / 'rrr_vs_steps.png'} and {report / 'attack_summary.json'}")
    return summary


def _f(x) -> str:
    return "   —" if x is None or x != x else f"{x:.3f}"


def print_summary(summary: list[dict], timings: dict) -> None:
    print("\nLoRA attack on the GRPO adapter (classifier detector; RD and CE against steps 0)")
    print(f"{'steps':>6} {'RRR':>6} {'95% CI':>15} {'RD med':>7} {'CE bits':>8} {'n':>4} {'loss':>7}")
    for s in summary:
        ci = f"[{_f(s['rrr_ci'][0])}, {_f(s['rrr_ci'][1])}]"
        print(f"{s['steps']:>6} {_f(s['rrr']):>6} {ci:>15} {_f(s['rd_median']):>7} {_f(s['ce_bits']):>8} "
              f"{s['n_harmful']:>4} {_f(s['train_loss']):>7}")
    print(f"wall time per stage (s): {timings}")


# --- CLI ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipes.attack", description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", default="runs/demo")
    ap.add_argument("--steps", default="0,8,16,32", help="comma-separated attack strengths (optimizer steps)")
    ap.add_argument("--backend", default="vllm", choices=("hf", "vllm"))
    ap.add_argument("--max-tokens", type=int, default=None)
    args = ap.parse_args(argv)
    run_attack_experiment(Path(args.run_dir), [int(s) for s in args.steps.split(",")], backend=args.backend,
                          max_tokens=args.max_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
