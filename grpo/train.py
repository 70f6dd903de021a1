"""GRPO for safety fine-tuning, hand-written: rollout -> reward -> advantages -> PPO-clip loss -> sync.

    torchrun --nproc_per_node 1 grpo/train.py --config configs/smoke_grpo_cpu.yaml [key=value ...]
    python grpo/train.py --config configs/smoke_grpo_cpu.yaml          # same thing, one process

The variant: group-relative advantages (z-score in the group by default; `loss.advantage_scale`
picks batch-std or Dr. GRPO's mean-only), PPO-clip with clip-higher (eps_low 0.2, eps_high 0.28),
optional dual clip, a truncated importance weight min(exp(old - rollout), cap) that corrects for
the rollout engine's log-probs differing from the trainer's, an optional KL (k3) to the base model
or to a frozen SFT adapter, and DAPO's global-token normalization by default (the loss is divided
by the completion-token count of the whole step across ranks, so micro-batching and world size do
not change the gradient). With num_iterations == 1 the "old" log-probs are the detached log-probs
of the training forward itself (ratio == 1, no extra forward); with mu > 1 they are recorded on
the first pass and reused.

Every step logs reward statistics per function, frac_reward_zero_std (groups whose rewards are
all equal, which give no gradient), the clipped-completion ratio, entropy, KL, clip fractions,
IS statistics and the step time split into generate / score / train / sync.
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
from grpo.advantages import combine_rewards, group_advantages
from grpo.batch import PromptSampler, encode_prompts, eval_subset, pack, pad_rows
from grpo.config import GRPOConfig
from grpo.loss import policy_loss
from grpo.metrics import evaluate, perf_metrics, postfix, rollout_metrics, warn_if_dying
from reward.functions import score
from rollout.base import SamplingConfig, make_backend
from runtime.checkpoint import resume_from, save_adapter, save_checkpoint
from runtime.config import parse_cli
from runtime.logprobs import token_logprobs
from runtime.metrics import MetricsLogger
from runtime.models import add_lora, load_model, load_tokenizer
from runtime.optim import build_optimizer, clip_and_reduce_grads
from runtime.world import World, init_world

REF_ADAPTER = "ref"


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


# ----------------------------------------------------------------------------- one step's pieces


def reference_logprobs(policy, ids, attn, P, cfg: GRPOConfig) -> torch.Tensor:
    """Log-probs under the KL reference: the adapter disabled (base) or the frozen SFT adapter."""
    with torch.no_grad():
        if cfg.kl.reference == "base":
            with policy.disable_adapter():
                ref, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
        else:
            policy.set_adapter(REF_ADAPTER)
            try:
                ref, _ = token_logprobs(policy, ids, attn, prompt_len=P, temperature=cfg.sampling.temperature)
            finally:
                policy.set_adapter("default")
                for name, p in policy.named_parameters():
                    if f".{REF_ADAPTER}." in name:
                        p.requires_grad_(False)
    return ref


def train_on_batch(policy, optimizer, scheduler, params, prompts, rollout, adv, pad_id: int, cfg: GRPOConfig,
                   world: World):
    """num_iterations optimizer passes over the rollout batch, micro-batched; returns mean metrics."""
    N = len(rollout.completion_ids)
    mbs = [list(range(i, min(i + cfg.micro_batch_size, N))) for i in range(0, N, cfg.micro_batch_size)]
    n_tokens = torch.tensor(float(sum(len(c) for c in rollout.completion_ids)))
    global_tokens = world.all_reduce_sum(n_tokens.clone()).item()
    old, ref = {}, {}
    sums: dict[str, float] = {}
    policy.train()
    for it in range(cfg.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        for j, idx in enumerate(mbs):
            comps = [rollout.completion_ids[i] for i in idx]
            ids, attn, P = pack([prompts[rollout.prompt_index[i]] for i in idx], comps, pad_id)
            ids, attn = ids.to(world.device), attn.to(world.device)
            mask = attn[:, P:].float()  # (n, T)
            logp, ent = token_logprobs(policy, ids, attn, prompt_len=P,
                                       temperature=cfg.sampling.temperature, with_entropy=True)  # (n, T)
            if it == 0:
                old[j] = logp.detach()
                if cfg.kl.beta > 0:
                    ref[j] = reference_logprobs(policy, ids, attn, P, cfg)
            loss, m = policy_loss(
                logp, old[j], adv[idx].to(world.device), mask,
                eps_low=cfg.loss.eps_low, eps_high=cfg.loss.eps_high, dual_clip=cfg.loss.dual_clip,
                ref_logp=ref.get(j), beta=cfg.kl.beta, kl_estimator=cfg.kl.estimator,
                rollout_logp=pad_rows([rollout.logprobs[i] for i in idx], mask.shape[1]).to(world.device)
                if cfg.loss.is_correction else None,
                is_cap=cfg.loss.is_cap, is_level=cfg.loss.is_level, agg=cfg.loss.agg,
                max_tokens=cfg.sampling.max_tokens, num_global_tokens=global_tokens,
            )
            if cfg.loss.agg != "global_token":
                loss = loss / len(mbs)  # mean over micro-batches; ranks are averaged below
            loss.backward()
            m["entropy"] = (ent * mask).sum().item() / max(mask.sum().item(), 1.0)
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + float(v) / (len(mbs) * cfg.num_iterations)
        grad_norm = clip_and_reduce_grads(params, cfg.optim.max_grad_norm, world,
                                          sum_ranks=cfg.loss.agg == "global_token")
        optimizer.step()
        scheduler.step()
        sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm / cfg.num_iterations
    return sums


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
    sampler = PromptSampler(rows, cfg.prompts_per_step, cfg.data.malicious_fraction, cfg.seed, world)
    eval_rows = eval_subset(load_split(cfg.data.eval), cfg.data.eval_rows) if cfg.data.eval else []
    meta = {"base_model": cfg.model.name, "trainer": "grpo", **prompt_settings_meta(cfg.data, tok),
            "config": asdict(cfg)}
    save = {"meta": meta, "train_texts": [r["text"] for r in rows], "parent_adapter": cfg.policy.init_adapter}
    start, best = 0, -math.inf
    if cfg.resume:
        state = resume_from(cfg.resume, model=policy, optimizer=optimizer, scheduler=scheduler,
                            config=asdict(cfg), lr=cfg.optim.lr)
        start, best = state["cursor"]["step"], state["extra"].get("best", -math.inf)
    backend = make_backend(cfg.rollout, model_name=cfg.model.name, tokenizer=tok, policy=policy,
                           dtype=cfg.model.dtype, device=str(world.device))
    backend.update_weights(policy)  # the engine starts from the checkpoint's base weights (QLoRA: not nf4's)
    logger = MetricsLogger(out, cfg.log, asdict(cfg), enabled=world.is_main, resume=bool(cfg.resume))
    if cfg.resume:
        logger.truncate_after(start)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="grpo", disable=not world.is_main)
    dying, evals_since_best, metrics = 0, 0, {}
    for step in bar:
        t = [time.perf_counter()]
        batch = sampler.sample(step)                                                       # B rows
        prompts, prompt_cut = encode_prompts(batch, tok, cfg.data)
        rollout = backend.generate(prompts, cfg.group_size, _step_sampling(cfg, step, world))  # B*G
        t.append(time.perf_counter())
        texts = tok.batch_decode(rollout.completion_ids, skip_special_tokens=True)
        labels = [batch[i]["label"] for i in rollout.prompt_index]
        R, _, weights, rmetrics = score(cfg.reward, [batch[i]["text"] for i in rollout.prompt_index], texts,
                                        labels, [len(c) for c in rollout.completion_ids], rollout.truncated)
        rewards = combine_rewards(R, weights)                                               # (B*G,)
        adv = group_advantages(rewards, cfg.group_size, scale=cfg.loss.advantage_scale, eps=cfg.loss.advantage_eps)
        t.append(time.perf_counter())
        backend.sleep()
        tm = train_on_batch(policy, optimizer, scheduler, params, prompts, rollout, adv, tok.pad_token_id, cfg, world)
        t.append(time.perf_counter())
        backend.wake()
        sync = backend.update_weights(policy)
        t.append(time.perf_counter())
        metrics = {**rollout_metrics(rollout, rewards, cfg.group_size, prompt_cut), **rmetrics,
                   **{f"train/{k}": v for k, v in tm.items()}, "train/lr": scheduler.get_last_lr()[0],
                   **perf_metrics(rollout, t, sync)}
        dying = warn_if_dying(metrics["rollout/frac_reward_zero_std"], dying, cfg.dying_warn_steps, step,
                              world.is_main)
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


def _step_sampling(cfg: GRPOConfig, step: int, world: World) -> SamplingConfig:
    s = cfg.sampling
    return SamplingConfig(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, max_tokens=s.max_tokens,
                          seed=cfg.seed * 100_003 + step * 101 + world.rank)


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
