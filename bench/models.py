"""What a GRPO step costs per model: the demo's GRPO stage (configs/demo_grpo.yaml: 8 prompts x G=4, 40 new
tokens, colocated vLLM with merged sync, LoRA r16 on every projection, float32) for a few steps on each
model, each in its own process so peak memory is that model's alone. A benchmark: figures are printed,
never asserted.

    .venv/bin/python bench/models.py                                   # the three embedded models, 3 steps
    .venv/bin/python bench/models.py --models smollm2-135m,/path/to/hf-dir --steps 5

Prints per model: parameters, s/step (mean over the steps after the first, which includes engine warm-up
effects), completion tokens/s over the whole step, generation tokens/s, the train phase in s, and the
process's peak RSS in GiB. A fresh LoRA (no SFT adapter), KL off, so only the model differs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipes.scaling import grpo_cost  # noqa: E402


def run_one(model: str, steps: int, out: Path) -> dict:
    """`steps` GRPO steps of the demo config on `model` into out (= <dir>/grpo); the cost figures."""
    cmd = [sys.executable, str(ROOT / "grpo" / "train.py"), "--config", str(ROOT / "configs" / "demo_grpo.yaml"),
           f"out_dir={out}", f"model.name={model}", f"steps={steps}", "policy.init_adapter=null", "kl.beta=0",
           "eval_every=0", "data.eval=null", "log.wandb=false",
           f"data.train={ROOT / 'configs' / 'data' / 'smoke_train.jsonl'}", "data.malicious_fraction=0.5",
           "data.prefill_fraction=0"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return grpo_cost(out.parent, skip_first=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--steps", type=int, default=3, help="GRPO steps per model (the first is not timed)")
    args = ap.parse_args()
    from runtime.models import model_facts

    print(f"{'model':<24} {'params':>8} {'s/step':>8} {'tok/s':>8} {'gen tok/s':>10} {'train s':>8} {'peak GiB':>9}")
    for model in args.models.split(","):
        params = model_facts(model)["params"]
        with tempfile.TemporaryDirectory() as tmp:
            r = run_one(model, args.steps, Path(tmp) / "grpo")
        print(f"{model:<24} {params / 1e6:>7.0f}M {r['s_per_step']:>8.1f} {r['tokens_per_s']:>8.1f} "
              f"{r['gen_tokens_per_s']:>10.1f} {r['train_s']:>8.1f} {r['peak_rss_gib']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
