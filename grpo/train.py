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
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __name__ == "__main__" and __package__ is None:  # `torchrun grpo/train.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tqdm import tqdm

from data.chat import format_prompt
from data.io import load_rows
from grpo.advantages import combine_rewards, group_advantages, zero_std_mask
from grpo.config import GRPOConfig
from grpo.logprobs import token_logprobs
from grpo.loss import policy_loss
from reward.functions import score
from rollout.base import SamplingConfig, make_backend
from runtime.checkpoint import (
    latest_checkpoint,
    load_adapter_weights,
    load_trainer_state,
    save_adapter,
    save_checkpoint,
    set_rng_state,
)
from runtime.config import parse_cli
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


class PromptSampler:
    """Each step: B prompts per rank with a fixed malicious/benign mix, without replacement per epoch.

    The order is a pure function of (seed, step, rank), so the data cursor is the step number and a
    resumed run sees exactly the prompts an uninterrupted one would.
    """

    def __init__(self, rows: list[dict], batch_size: int, malicious_fraction: float, seed: int, world: World):
        self.by_label = {lab: [r for r in rows if r["label"] == lab] for lab in ("malicious", "benign")}
        n_mal = round(batch_size * malicious_fraction)
        self.take = {"malicious": n_mal, "benign": batch_size - n_mal}
        for lab, k in self.take.items():
            if k and not self.by_label[lab]:
                raise ValueError(f"the training data has no {lab} rows but the batch mix needs {k} per step")
        self.seed, self.world = seed, world

    def _slice(self, label: str, step: int) -> list[dict]:
        pool, k = self.by_label[label], self.take[label]
        if k == 0:
            return []
        out = []
        start = (step * self.world.world_size + self.world.rank) * k  # global position of this rank's slice
        for pos in range(start, start + k):
            epoch, idx = divmod(pos, len(pool))
            order = list(range(len(pool)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(pool[order[idx]])
        return out

    def sample(self, step: int) -> list[dict]:
        return self._slice("malicious", step) + self._slice("benign", step)


def encode_prompts(rows: list[dict], tok, cfg: GRPOConfig) -> tuple[list[list[int]], list[bool]]:
    out = [
        format_prompt(tok, r["text"], system_prompt=cfg.data.system_prompt,
                      max_prompt_tokens=cfg.data.max_prompt_tokens, truncation_side=cfg.data.truncation_side)
        for r in rows
    ]
    return [p.input_ids for p in out], [p.truncated for p in out]


# ----------------------------------------------------------------------------- one step's pieces


def pack(prompts: list[list[int]], completions: list[list[int]], pad_id: int):
    """[left-padded prompt | right-padded completion]: every completion starts at column P."""
    P = max(len(p) for p in prompts)
    T = max(1, max(len(c) for c in completions))
    N = len(prompts)
    ids = torch.full((N, P + T), pad_id, dtype=torch.long)  # (N, P+T)
    attn = torch.zeros((N, P + T), dtype=torch.long)  # (N, P+T)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ids[i, P - len(p): P] = torch.tensor(p)
        ids[i, P: P + len(c)] = torch.tensor(c, dtype=torch.long)
        attn[i, P - len(p): P + len(c)] = 1
    return ids, attn, P


def pad_rows(rows: list[list[float]], T: int) -> torch.Tensor:
    out = torch.zeros((len(rows), T), dtype=torch.float32)  # (N, T)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r[:T], dtype=torch.float32)
    return out


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
        grad_norm = clip_and_reduce_grads(params, cfg.max_grad_norm, world, sum_ranks=cfg.loss.agg == "global_token")
        optimizer.step()
        scheduler.step()
        sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm / cfg.num_iterations
    return sums


@torch.no_grad()
def evaluate(backend, policy, rows, tok, cfg: GRPOConfig) -> dict:
    """Greedy completions on the fixed held-out rows, scored by the training reward."""
    prompts, _ = encode_prompts(rows, tok, cfg)
    greedy = SamplingConfig(temperature=0.0, max_tokens=cfg.sampling.max_tokens, seed=cfg.seed)
    out = backend.generate(prompts, 1, greedy)
    texts = tok.batch_decode(out.completion_ids, skip_special_tokens=True)
    labels = [r["label"] for r in rows]
    R, names, weights, _ = score(cfg.reward, [r["text"] for r in rows], texts, labels,
                                 [len(c) for c in out.completion_ids], out.truncated)
    total = combine_rewards(R, weights)  # (N,)
    refused = torch.tensor(_refusals(texts, cfg))
    mal = torch.tensor([lab == "malicious" for lab in labels])
    return {
        "eval/reward": total.mean().item(),
        "eval/malicious_refusal_rate": refused[mal].float().mean().item() if mal.any() else float("nan"),
        "eval/benign_helpfulness": (~refused[~mal]).float().mean().item() if (~mal).any() else float("nan"),
    }


def _refusals(texts, cfg: GRPOConfig) -> list[bool]:
    from reward.refusal import refusal_probability

    return [p >= 0.5 for p in refusal_probability(texts, method="markers")]


# ----------------------------------------------------------------------------- the loop


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_cli(GRPOConfig, argv, prog="grpo/train.py")
    world = init_world(cfg.device)
    torch.manual_seed(cfg.seed)  # identical LoRA init on every rank
    out = Path(cfg.out_dir)
    policy, tok = setup_policy(cfg, world)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, cfg, total_steps=cfg.steps * cfg.num_iterations)
    rows = load_rows(cfg.data.train)
    sampler = PromptSampler(rows, cfg.prompts_per_step, cfg.data.malicious_fraction, cfg.seed, world)
    eval_rows = _eval_subset(load_rows(cfg.data.eval), cfg.data.eval_rows) if cfg.data.eval else []
    start, best = 0, -math.inf
    if cfg.resume:
        start, best = _resume(cfg.resume, policy, optimizer, scheduler)
    backend = make_backend(cfg.rollout, model_name=cfg.model.name, tokenizer=tok, policy=policy,
                           dtype=cfg.model.dtype, device=str(world.device))
    backend.update_weights(policy)  # the engine starts from the checkpoint's base weights (QLoRA: not nf4's)
    logger = MetricsLogger(out, cfg.log, asdict(cfg), enabled=world.is_main, resume=bool(cfg.resume))
    if cfg.resume:
        logger.truncate_after(start)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="grpo", disable=not world.is_main)
    dying, evals_since_best, metrics = 0, 0, {}
    for step in bar:
        t0 = time.perf_counter()
        batch = sampler.sample(step)                                                       # B rows
        prompts, prompt_cut = encode_prompts(batch, tok, cfg)
        rollout = backend.generate(prompts, cfg.group_size, _step_sampling(cfg, step, world))  # B*G
        t1 = time.perf_counter()
        texts = tok.batch_decode(rollout.completion_ids, skip_special_tokens=True)
        labels = [batch[i]["label"] for i in rollout.prompt_index]
        R, names, weights, rmetrics = score(cfg.reward, [batch[i]["text"] for i in rollout.prompt_index], texts,
                                            labels, [len(c) for c in rollout.completion_ids], rollout.truncated)
        rewards = combine_rewards(R, weights)                                               # (B*G,)
        adv = group_advantages(rewards, cfg.group_size, scale=cfg.loss.advantage_scale, eps=cfg.loss.advantage_eps)
        t2 = time.perf_counter()
        backend.sleep()
        tm = train_on_batch(policy, optimizer, scheduler, params, prompts, rollout, adv, tok.pad_token_id, cfg, world)
        t3 = time.perf_counter()
        backend.wake()
        sync = backend.update_weights(policy)
        t4 = time.perf_counter()
        metrics = {
            **_rollout_metrics(rollout, rewards, cfg, prompt_cut), **rmetrics,
            **{f"train/{k}": v for k, v in tm.items()}, "train/lr": scheduler.get_last_lr()[0],
            **_perf_metrics(rollout, t0, t1, t2, t3, t4, sync),
        }
        dying = _warn_if_dying(metrics["rollout/frac_reward_zero_std"], dying, cfg, step, world)
        if eval_rows and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or step + 1 == cfg.steps):
            metrics.update(evaluate(backend, policy, eval_rows, tok, cfg))
            if metrics["eval/reward"] > best:
                best, evals_since_best = metrics["eval/reward"], 0
                if world.is_main:
                    save_adapter(policy, out / "best", base_model=cfg.model.name, train_texts=[r["text"] for r in rows],
                                 parent_adapter=cfg.policy.init_adapter, extra_meta={"step": step + 1})
            else:
                evals_since_best += 1
        logger.log(metrics, step + 1)
        bar.set_postfix(_postfix(metrics))
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and world.is_main:
            save_checkpoint(out / "checkpoints", model=policy, optimizer=optimizer, scheduler=scheduler,
                            step=step + 1, cursor={"step": step + 1}, base_model=cfg.model.name,
                            parent_adapter=cfg.policy.init_adapter, extra={"best": best})
        if cfg.patience and evals_since_best >= cfg.patience:
            tqdm.write(f"early stop at step {step + 1}: no better eval reward in {cfg.patience} evals")
            break
    prints = world.gather_objects(lora_fingerprint(params))  # ranks must hold identical LoRA weights
    if world.is_main:
        save_adapter(policy, out / "adapter", base_model=cfg.model.name, train_texts=[r["text"] for r in rows],
                     parent_adapter=cfg.policy.init_adapter, extra_meta={"steps": cfg.steps, "rank_fingerprints": prints})
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


def _eval_subset(rows: list[dict], n: int) -> list[dict]:
    mal = [r for r in rows if r["label"] == "malicious"][: n // 2]
    ben = [r for r in rows if r["label"] == "benign"][: n - len(mal)]
    return mal + ben


def _resume(path: str, policy, optimizer, scheduler) -> tuple[int, float]:
    ckpt = latest_checkpoint(path)
    state = load_trainer_state(ckpt)
    load_adapter_weights(policy, ckpt / "adapter")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    tqdm.write(f"resumed from {ckpt} at step {state['step']}")
    return state["cursor"]["step"], state["extra"].get("best", -math.inf)


def _rollout_metrics(rollout, rewards: torch.Tensor, cfg: GRPOConfig, prompt_cut: list[bool]) -> dict:
    lens = torch.tensor([len(c) for c in rollout.completion_ids], dtype=torch.float32)
    return {
        "reward/mean": rewards.mean().item(),
        "reward/std": rewards.std().item() if rewards.numel() > 1 else 0.0,
        "rollout/frac_reward_zero_std": zero_std_mask(rewards, cfg.group_size).float().mean().item(),
        "rollout/clipped_ratio": sum(rollout.truncated) / len(rollout.truncated),
        "rollout/completion_len_mean": lens.mean().item(),
        "rollout/completion_len_min": lens.min().item(),
        "rollout/completion_len_max": lens.max().item(),
        "rollout/truncated_prompt_ratio": sum(prompt_cut) / len(prompt_cut),
    }


def _perf_metrics(rollout, t0, t1, t2, t3, t4, sync: dict) -> dict:
    n_tok = sum(len(c) for c in rollout.completion_ids)
    return {
        "perf/step_s": t4 - t0, "perf/generate_s": t1 - t0, "perf/score_s": t2 - t1,
        "perf/train_s": t3 - t2, "perf/sync_s": t4 - t3,
        "perf/completion_tokens": n_tok, "perf/gen_tokens_per_s": n_tok / max(t1 - t0, 1e-9),
        "perf/tokens_per_s": n_tok / max(t4 - t0, 1e-9),
        **{f"perf/{k}": v for k, v in sync.items() if isinstance(v, int | float)},
    }


def _warn_if_dying(frac: float, dying: int, cfg: GRPOConfig, step: int, world: World) -> int:
    dying = dying + 1 if frac > 0.5 else 0
    if world.is_main and dying >= cfg.dying_warn_steps:
        state = "dead" if frac > 0.8 else "dying"
        tqdm.write(f"warning: step {step + 1}: frac_reward_zero_std={frac:.2f} for {dying} steps: the run is "
                   f"{state} (most groups give no gradient; raise temperature/group size or start from SFT)")
    return dying


def _postfix(m: dict) -> dict:
    keys = {"reward/mean": "R", "rollout/frac_reward_zero_std": "zstd", "rollout/clipped_ratio": "clip",
            "train/entropy": "H", "train/kl_mean": "kl", "perf/step_s": "s"}
    return {short: f"{m[k]:.3g}" for k, short in keys.items() if k in m and m[k] is not None}


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
