"""TRL's GRPOTrainer vs grpo/train.py on identical work, for hf and vllm generation.

Workload (both trainers): SmolLM2-135M float32, LoRA r16 alpha 32 all-linear, 8 prompts x G=4,
64 new tokens at temperature 1 (top_p 1, top_k off), mu = 1, beta = 0, one micro-batch of 32, DAPO
token normalization (TRL loss_type="dapo" = our global_token), clip 0.2 / 0.28, IS correction on for
vllm, the same 8 prompts every step (4 malicious + 4 benign rows of configs/data/smoke_train.jsonl,
chat-formatted by data.chat.format_prompt and fed to TRL as the formatted text) and the same reward
(refusal markers + length bonus, through reward.functions.score).
Each (trainer, backend) runs in its own subprocess. Step time: the median interval between successive
step ends (the first step is a warm-up), so both include generation, scoring, the update and the
weight sync. Completion tokens/s: completion tokens of the timed steps over their time. Peak RSS: the
subprocess's ru_maxrss. A benchmark: figures are printed, never asserted.

    .venv/bin/python bench/vs_trl.py --quick        # 1 timed step per run (~25 min on 2 CPU cores)
    .venv/bin/python bench/vs_trl.py                # 3 timed steps per run

Needs the `bench` extra (pip install -e ".[bench]": trl). TRL's colocated vLLM sync calls
model.load_weights on the engine's model, which fails on vLLM's CPU backend; this script replaces
it with the reload_weights push that rollout/sync.py uses and prints that it did.
Ours runs twice per backend: as configured by default, and with this project's exact-gradient savings
(`ours+`: loss.skip_zero_advantage, which with beta = 0 skips the forward/backward of zero-advantage
groups and gives the same gradient; micro-batches packed by length and capped at --micro-batch-tokens
tokens, accumulated with unchanged denominators: the same update in less peak memory). Both do the same
work as TRL's run: the same prompts, samples per step, reward and loss.
The last line: ratio_step_time_vs_trl=<ours / TRL> ratio_peak_rss_vs_trl=<ours / TRL>, best mode vs
best mode: each trainer's fastest (backend, options) run, and the peak RSS of those two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("WANDB_MODE", "disabled")

PROMPTS_FILE = ROOT / "configs" / "data" / "smoke_train.jsonl"
REWARD_TERMS = [{"name": "refusal", "options": {"detector": "markers"}}, {"name": "length_bonus"}]
"""The label-conditioned refusal reward (marker detector) plus the benign length bonus: cheap, and it
varies within groups through the bonus."""


def bench_rows(n: int) -> list[dict]:
    """The first n/2 malicious and n/2 benign rows of the smoke prompts (the order they appear in)."""
    rows = [json.loads(x) for x in PROMPTS_FILE.read_text().splitlines() if x.strip()]
    mal = [r for r in rows if r["label"] == "malicious"][: n // 2]
    ben = [r for r in rows if r["label"] == "benign"][: n - n // 2]
    return mal + ben


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def summary(step_ends: list[float], tokens: list[float], zero_std: list[float]) -> dict:
    """Median step time and tokens/s over the steps after the first (a warm-up), and the mean share of groups
    with equal rewards over those steps (what the skip leaves out: ours+ is only as fast as that share allows)."""
    dts = [b - a for a, b in zip(step_ends, step_ends[1:])]
    toks = tokens[1: len(step_ends)]
    zstd = zero_std[1: len(step_ends)]
    return {"step_s": statistics.median(dts), "tokens_per_s": sum(toks) / sum(dts), "steps": len(dts),
            "peak_rss_gib": peak_rss_gib(), "zero_std_frac": statistics.fmean(zstd) if zstd else float("nan")}


# ----------------------------------------------------------------------------- ours


def run_ours(args, rows_file: str) -> dict:
    import grpo.train
    from runtime.metrics import MetricsLogger

    ends: list[float] = []
    tokens: list[float] = []
    zero_std: list[float] = []
    log = MetricsLogger.log

    def timed_log(self, metrics, step):  # the step's end: after the update and the weight sync
        ends.append(time.perf_counter())
        tokens.append(metrics["perf/completion_tokens"])
        zero_std.append(metrics["rollout/frac_reward_zero_std"])
        return log(self, metrics, step)

    MetricsLogger.log = timed_log
    with tempfile.TemporaryDirectory() as d:
        grpo.train.main([
            "--config", str(ROOT / "configs" / "smoke_grpo_cpu.yaml"), f"out_dir={d}", f"model.name={args.model}",
            f"rollout.backend={args.backend}", f"steps={args.steps + 1}", f"prompts_per_step={args.prompts}",
            f"group_size={args.group}", f"sampling.max_tokens={args.max_tokens}", "num_iterations=1", "kl.beta=0",
            f"micro_batch_size={args.prompts * args.group}", "policy.r=16", "policy.alpha=32", "loss.agg=global_token",
            f"loss.is_correction={args.backend == 'vllm'}", f"data.train={rows_file}", "data.eval=null",
            "data.malicious_fraction=0.5", "optim.lr_schedule=constant", "rollout.kv_cache_gib=1",
            "reward.terms=" + json.dumps(REWARD_TERMS),
            "log.wandb=false",
            *(["loss.skip_zero_advantage=true", "micro_batch_order=length",
               f"micro_batch_tokens={args.micro_batch_tokens}"] if args.worker == "ours+" else []),
        ])
    return summary(ends, tokens, zero_std)


# ----------------------------------------------------------------------------- TRL


def patch_trl_vllm_sync() -> None:
    """TRL's colocate sync -> merged weights pushed with reload_weights (rollout.sync.push_weights_vllm);
    its engine in float32 like ours (TRL passes no dtype, so vLLM takes the checkpoint's bfloat16)."""
    import functools

    from trl.generation import vllm_generation

    from rollout.sync import push_weights_vllm

    def sync_weights(self):
        if self.mode != "colocate":
            raise RuntimeError("bench/vs_trl.py patches only TRL's colocate mode")
        # TRL merges the adapter, yields every tensor under vLLM's names, then unmerges in place: copy them.
        weights = [(name, p.detach().clone()) for name, p in self._iter_named_params()]
        push_weights_vllm(self.llm, weights)

    vllm_generation.VLLMGeneration.sync_weights = sync_weights
    vllm_generation.LLM = functools.partial(vllm_generation.LLM, dtype="float32")
    print("patched TRL's colocated vLLM weight sync: reload_weights (as rollout/sync.py does) instead of "
          "model.load_weights, which fails on vLLM's CPU backend; and its engine dtype: float32", flush=True)


def run_trl(args, rows: list[dict]) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from data.chat import format_prompt
    from reward.functions import RewardConfig, RewardTerm, score
    from runtime.models import ModelConfig, load_model, load_tokenizer

    tok = load_tokenizer(args.model)
    texts = [tok.decode(format_prompt(tok, r["text"], max_prompt_tokens=128).input_ids) for r in rows]
    data = Dataset.from_dict({"prompt": texts, "text": [r["text"] for r in rows], "label": [r["label"] for r in rows]})
    reward_cfg = RewardConfig(terms=[RewardTerm(**t) for t in REWARD_TERMS])
    ends: list[float] = []
    tokens: list[float] = []
    zero_std: list[float] = []

    def same_reward(prompts, completions, completion_ids, text, label, **kw):
        lengths = [len(c) for c in completion_ids]
        truncated = [n >= args.max_tokens for n in lengths]
        R, _, weights, _ = score(reward_cfg, text, completions, label, lengths, truncated)
        return (R * torch.tensor(weights)).nansum(dim=1).tolist()

    class Timer(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            ends.append(time.perf_counter())

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                tokens.append(logs["completions/mean_length"] * args.prompts * args.group)
                zero_std.append(logs["frac_reward_zero_std"])

    if args.backend == "vllm":
        patch_trl_vllm_sync()
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with tempfile.TemporaryDirectory() as d:
        cfg = GRPOConfig(
            output_dir=d, per_device_train_batch_size=args.prompts * args.group, gradient_accumulation_steps=1,
            num_generations=args.group, max_completion_length=args.max_tokens, num_iterations=1, beta=0.0,
            loss_type="dapo", epsilon=0.2, epsilon_high=0.28, scale_rewards="group", temperature=1.0, top_p=1.0,
            top_k=0, learning_rate=2e-4, lr_scheduler_type="constant", max_grad_norm=1.0, max_steps=args.steps + 1,
            logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False, seed=0,
            gradient_checkpointing=False,  # ours does not checkpoint either
            use_vllm=args.backend == "vllm", vllm_mode="colocate", vllm_max_model_length=512,
            vllm_importance_sampling_correction=args.backend == "vllm", dataloader_num_workers=0,
        )
        model = load_model(ModelConfig(name=args.model, dtype="float32"), torch.device("cpu"))
        peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
        trainer = GRPOTrainer(model=model, reward_funcs=same_reward, args=cfg, train_dataset=data,
                              processing_class=tok, peft_config=peft, callbacks=[Timer()])
        trainer.train()
    return summary(ends, tokens, zero_std)


# ----------------------------------------------------------------------------- driver


WHO = ("trl", "ours", "ours+")


def best_vs_best(results: dict[tuple[str, str], dict]) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """(TRL's fastest run, our fastest run) as (who, backend) keys; None when either trainer has none."""
    trl = [k for k in results if k[0] == "trl"]
    ours = [k for k in results if k[0] != "trl"]
    if not trl or not ours:
        return None
    fastest = lambda keys: min(keys, key=lambda k: results[k]["step_s"])  # noqa: E731
    return fastest(trl), fastest(ours)


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    rows = bench_rows(args.prompts)
    if args.worker == "trl":
        res = run_trl(args, rows)
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        try:
            res = run_ours(args, f.name)
        finally:
            os.unlink(f.name)
    print("RESULT " + json.dumps(res), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 timed step per run (default 3)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--backends", default="hf,vllm", help="comma list: hf, vllm")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per run (a warm-up step comes first)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--micro-batch-tokens", type=int, default=1024, help="ours+: token budget per micro-batch")
    ap.add_argument("--worker", choices=WHO, help=argparse.SUPPRESS)
    ap.add_argument("--backend", choices=["hf", "vllm"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.steps = args.steps or (1 if args.quick else 3)
    if args.worker:
        worker(args)
        return 0
    try:
        import trl
    except ImportError:
        print("bench/vs_trl.py needs TRL: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    print(f"workload: {args.model} fp32, LoRA r16 all-linear, {args.prompts} prompts x G={args.group} x "
          f"{args.max_tokens} new tokens, mu=1, beta=0, {args.steps} timed steps (+1 warm-up); trl {trl.__version__}; "
          f"torch threads {args.threads}", flush=True)
    results: dict[tuple[str, str], dict] = {}
    for backend in args.backends.split(","):
        for who in WHO:
            cmd = [sys.executable, __file__, "--worker", who, "--backend", backend, "--model", args.model,
                   "--prompts", str(args.prompts), "--group", str(args.group), "--max-tokens", str(args.max_tokens),
                   "--steps", str(args.steps), "--threads", str(args.threads),
                   "--micro-batch-tokens", str(args.micro_batch_tokens)]
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            for line in r.stdout.splitlines():
                if line.startswith("patched"):
                    print(f"[{who} {backend}] {line}", flush=True)
            found = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if r.returncode != 0 or not found:
                lines = [x for x in r.stderr.splitlines() if x.strip() and "it/s]" not in x and "s/it]" not in x]
                errors = [x for x in lines if "Error" in x or "Exception" in x]
                last = (errors or lines or ["(no output)"])[-1].strip()
                print(f"{who:4} {backend:4}: failed: {last}", flush=True)
                continue
            res = results[who, backend] = json.loads(found[-1][len("RESULT "):])
            print(f"{who:4} {backend:4}: median step {res['step_s']:6.2f} s  {res['tokens_per_s']:7.1f} completion "
                  f"tok/s  peak RSS {res['peak_rss_gib']:.2f} GiB  equal-reward groups {res['zero_std_frac']:.2f}  "
                  f"({res['steps']} timed steps)", flush=True)
    for b in args.backends.split(","):
        for who in ("ours", "ours+"):
            if ("trl", b) in results and (who, b) in results:
                t, o = results["trl", b], results[who, b]
                print(f"{who} / TRL, {b}: step time {o['step_s'] / t['step_s']:.3f}, "
                      f"peak RSS {o['peak_rss_gib'] / t['peak_rss_gib']:.3f}")
    best = best_vs_best(results)
    if best is None:
        print("no run finished for both trainers: no ratio", file=sys.stderr)
        return 1
    (tw, tb), (ow, ob) = best
    t, o = results[tw, tb], results[ow, ob]
    print(f"best mode: TRL {tb} ({t['step_s']:.2f} s, {t['peak_rss_gib']:.2f} GiB), "
          f"{ow} {ob} ({o['step_s']:.2f} s, {o['peak_rss_gib']:.2f} GiB); equal-reward groups "
          f"{t['zero_std_frac']:.2f} / {o['zero_std_frac']:.2f}" + (" (ours+ skips their training: its ratio "
          "depends on that share)" if ow == "ours+" else ""))
    print(f"ratio_step_time_vs_trl={o['step_s'] / t['step_s']:.3f} "
          f"ratio_peak_rss_vs_trl={o['peak_rss_gib'] / t['peak_rss_gib']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
