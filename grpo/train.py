"""GRPO for safety fine-tuning, hand-written: rollout -> reward -> advantages -> PPO-clip loss -> sync.

    torchrun --nproc_per_node 1 grpo/train.py --config configs/smoke_grpo_cpu.yaml [key=value ...]
    python grpo/train.py --config configs/smoke_grpo_cpu.yaml          # same thing, one process

The variant: group-relative advantages (z-score in the group by default; `loss.advantage_scale`
picks batch-std or Dr. GRPO's mean-only), PPO-clip with clip-higher (eps_low 0.2, eps_high 0.28),
optional dual clip, a truncated importance weight min(exp(old - rollout), cap) that corrects for
the rollout engine's log-probs differing from the trainer's, an optional KL (k3) to the base model
or to a frozen SFT adapter, and DAPO's global-token normalization by default (the loss is divided
by the completion-token count of the whole step across ranks, so micro-batching and world size do
not change the gradient). Without policy.init_adapter the run starts from the base model itself: a fresh
LoRA (B = 0, so step 0's policy is the base model and its KL to kl.reference=base is exactly 0).
With num_iterations == 1 the "old" log-probs are the detached log-probs
of the training forward itself (ratio == 1, no extra forward); with mu > 1 they are recorded on
the first pass and reused. When the training forward has dropout (policy.dropout > 0), the old
log-probs come from an extra no-grad forward in eval mode instead, since the engine samples without
dropout (the IS weights and the post-sync check compare like with like); the reference is always
evaluated without dropout. The shipped configs are on-policy: num_iterations 1, one optimizer step
per rollout batch, so the ratio is 1 and the PPO clip never fires; configs/smoke_grpo_cpu_mu2.yaml
runs mu = 2, where clip-higher and dual clip act.

Every step logs reward statistics per function, frac_reward_zero_std (groups whose rewards are
all equal, which give no gradient), the clipped-completion ratio, entropy, KL, clip fractions,
IS statistics, the step time split into generate / score / train / sync, the padded share of the
token grid (perf/pad_frac) and peak memory (perf/peak_rss_gib, and CUDA's max allocated on a GPU).

Options, all off by default (grpo/step.py says what each does to the numbers): loss.skip_zero_advantage
(no forward/backward for completions whose loss is exactly 0), loss.overlong (DAPO's overlong filter or
soft length penalty), micro_batch_order=length and micro_batch_tokens (less padding, bounded memory),
sampling.dynamic (DAPO's dynamic sampling: extra rounds until B groups carry a signal). On by default:
rollout.max_logp_gap, which stops the run when the engine's log-probs after a weight sync do not match
the trainer's (a sync that silently did nothing); it never fires on a working sync.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __name__ == "__main__" and __package__ is None:  # `torchrun grpo/train.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tqdm import tqdm

from data.chat import prompt_settings_meta
from data.prepare import load_split
from grpo.advantages import group_advantages
from grpo.batch import PromptSampler, eval_subset
from grpo.config import GRPOConfig
from grpo.metrics import evaluate, perf_metrics, postfix, rollout_metrics, warn_if_dying
from grpo.step import REF_ADAPTER, collect_batch, note_options, reference_logprobs, train_on_batch
from rollout.base import make_backend
from runtime.checkpoint import resume_from, save_adapter, save_checkpoint
from runtime.config import parse_cli
from runtime.metrics import MetricsLogger
from runtime.models import add_lora, load_model, load_tokenizer
from runtime.optim import build_optimizer
from runtime.world import World, init_world

__all__ = ["main", "reference_logprobs", "setup_policy"]


# ----------------------------------------------------------------------------- setup


def setup_policy(cfg: GRPOConfig, world: World):
    """Base model + trainable LoRA; with kl.reference=sft, a frozen second copy of the SFT adapter."""
    tok = load_tokenizer(cfg.model.name)
    base = load_model(cfg.model, world.device)
    policy = add_lora(base, cfg.policy, quantized=cfg.model.quantization == "nf4")
    if cfg.kl.beta > 0 and cfg.kl.reference == "sft":
        policy.load_adapter(cfg.policy.init_adapter, adapter_name=REF_ADAPTER, is_trainable=False)
        policy.set_adapter("default")  # also marks only the policy adapter trainable
    for name, p in policy.named_parameters():
        if f".{REF_ADAPTER}." in name:
            p.requires_grad_(False)
    return policy, tok


# ----------------------------------------------------------------------------- the loop


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_cli(GRPOConfig, argv, prog="grpo/train.py")
    world = init_world(cfg.device)
    torch.manual_seed(cfg.seed)  # identical LoRA init on every rank
    out = Path(cfg.out_dir)
    policy, tok = setup_policy(cfg, world)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, cfg.optim, total_steps=cfg.steps * cfg.num_iterations)
    rows = load_split(cfg.data.train)
    sampler = PromptSampler(rows, cfg.prompts_per_step, cfg.data.malicious_fraction, cfg.seed, world,
                            extra_rounds=cfg.sampling.max_rounds - 1 if cfg.sampling.dynamic else 0)
    eval_rows = eval_subset(load_split(cfg.data.eval), cfg.data.eval_rows) if cfg.data.eval else []
    meta = {"base_model": cfg.model.name, "trainer": "grpo", **prompt_settings_meta(cfg.data, tok),
            "config": asdict(cfg)}
    save = {"meta": meta, "train_texts": [r["text"] for r in rows], "parent_adapter": cfg.policy.init_adapter}
    start, best = 0, -math.inf
    if cfg.resume:
        state = resume_from(cfg.resume, model=policy, optimizer=optimizer, scheduler=scheduler,
                            config=asdict(cfg), lr=cfg.optim.lr)
        start, best = state["cursor"]["step"], state["extra"].get("best", -math.inf)
    kv_batch = (max(cfg.prompts_per_step * cfg.group_size, len(eval_rows)),  # one generate call's sequences
                cfg.data.max_prompt_tokens + cfg.sampling.max_tokens)
    backend = make_backend(cfg.rollout, model_name=cfg.model.name, tokenizer=tok, policy=policy,
                           dtype=cfg.model.dtype, device=str(world.device), kv_batch=kv_batch)
    if world.is_main and getattr(backend, "kv_cache_bytes", None):
        tqdm.write(f"note: rollout.kv_cache_gib=auto: {backend.kv_cache_bytes / 2**30:.3f} GiB of KV cache "
                   f"({kv_batch[0]} sequences x {kv_batch[1]} tokens)")
    backend.update_weights(policy)  # the engine starts from the checkpoint's base weights (QLoRA: not nf4's)
    logger = MetricsLogger(out, cfg.log, asdict(cfg), enabled=world.is_main, resume=bool(cfg.resume))
    if cfg.resume:
        logger.truncate_after(start)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="grpo", disable=not world.is_main)
    dying, evals_since_best, metrics = 0, 0, {}
    note_options(cfg, world.is_main)
    for step in bar:
        sb = collect_batch(backend, sampler, tok, cfg, step, world)                    # B prompts, B*G completions
        adv = group_advantages(sb.rewards, cfg.group_size, scale=cfg.loss.advantage_scale,
                               eps=cfg.loss.advantage_eps)                             # (B*G,)
        t = time.perf_counter()
        backend.sleep()
        tm, tperf = train_on_batch(policy, optimizer, scheduler, params, sb.prompts, sb.rollout, adv,
                                   tok.pad_token_id, cfg, world, step)
        t_sync = time.perf_counter()
        backend.wake()
        sync = backend.update_weights(policy)
        seconds = {"generate": sb.generate_s, "score": sb.score_s, "train": t_sync - t,
                   "sync": time.perf_counter() - t_sync}
        metrics = {**rollout_metrics(sb.rollout, sb.rewards, cfg.group_size, sb.prompt_cut), **sb.metrics,
                   **{f"train/{k}": v for k, v in tm.items()}, "train/lr": scheduler.get_last_lr()[0],
                   **perf_metrics(sb.rollout, seconds, sync), **tperf}
        zstd = metrics.get("rollout/frac_reward_zero_std_raw", metrics["rollout/frac_reward_zero_std"])
        dying = warn_if_dying(zstd, dying, cfg.dying_warn_steps, step, world.is_main)
        if eval_rows and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or step + 1 == cfg.steps):
            metrics.update(evaluate(backend, eval_rows, tok, cfg))
            if metrics["eval/reward"] > best:
                best, evals_since_best = metrics["eval/reward"], 0
                if world.is_main:
                    save_adapter(policy, out / "best", **{**save, "meta": {**meta, "step": step + 1}})
            else:
                evals_since_best += 1
        logger.log(metrics, step + 1)
        bar.set_postfix(postfix(metrics))
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and world.is_main:
            save_checkpoint(out / "checkpoints", model=policy, optimizer=optimizer, scheduler=scheduler,
                            step=step + 1, cursor={"step": step + 1}, config=asdict(cfg), extra={"best": best},
                            meta=meta, parent_adapter=cfg.policy.init_adapter)
        if cfg.patience and evals_since_best >= cfg.patience:
            tqdm.write(f"early stop at step {step + 1}: no better eval reward in {cfg.patience} evals")
            break
    prints = world.gather_objects(lora_fingerprint(params))  # ranks must hold identical LoRA weights
    if world.is_main:
        save_adapter(policy, out / "adapter", **{**save, "meta": {**meta, "steps": cfg.steps,
                                                                  "rank_fingerprints": prints}})
        if len(set(prints)) > 1:
            tqdm.write(f"warning: ranks hold different LoRA weights: {prints}")
    logger.close()
    backend.close()
    world.barrier()
    world.close()
    return metrics


def lora_fingerprint(params) -> str:
    """A hash of the trainable weights' bytes (equal across ranks iff the weights are identical)."""
    import hashlib

    h = hashlib.sha1()
    for p in params:
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
