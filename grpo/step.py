"""One GRPO step's two halves: collect a batch (sample -> generate -> score, with dynamic sampling)
and train on it (micro-batched forward/backward, optimizer step, the post-sync log-prob check).

Shapes: N = completions of the step (B prompts x G), per micro-batch n rows, T completion tokens.

What the options here do to the numbers (all off by default, so a config without them is unchanged):
- loss.skip_zero_advantage: a completion whose advantage is exactly 0 has a per-token policy loss of
  exactly 0 (-0 * ratio, and the clip, dual clip and IS weight multiply that 0), so with kl.beta = 0
  it adds nothing to the gradient at any num_iterations. Its forward/backward is skipped; the
  aggregation keeps its denominators (global_token: the step's completion tokens including skipped
  ones; the per-micro-batch counts through policy_loss's agg_count; the mean over micro-batches
  counts fully skipped ones). The gradient is the full one up to float summation order (fewer rows
  in each matmul). The entropy / clip metrics are then over the trained completions only.
  With kl.beta > 0 the KL term of those completions is not 0: loss.skip_zero_advantage_with_kl
  skips them anyway and drops it; loss.zero_advantage_kl_sample = q > 0 keeps a seeded share q of them
  (per step) with their KL term weighted by 1/q, so the loss and its gradient equal the full
  computation's in expectation (an unbiased estimate of the KL part, at a share q of its cost).
- loss.overlong=filter: truncated completions leave the loss and every token / sequence count.
- micro_batch_order / micro_batch_tokens: which rows share a micro-batch (grpo.batch.plan_micro_batches).
  With global_token (and dr_grpo at equal micro-batch sizes) the gradient does not depend on it;
  token_mean and seq_mean_token_mean divide per micro-batch, so there it does.
- policy.dropout > 0: the training forward drops (LoRA dropout), the sampling engine
  does not; the first pass then computes the old log-probs in an extra no-grad eval-mode forward (with
  dropout 0 the training forward's own detached log-probs are used, as before). The reference forward is
  always in eval mode.
- rollout.max_logp_gap: after every weight sync the first pass compares the engine's log-probs of the
  batch with the trainer's (mean |old - rollout| over tokens, = train/rollout_logp_diff_mean) and
  raises RolloutError before the optimizer step when the gap is too large (a sync that did nothing).
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm import tqdm

from grpo.advantages import combine_rewards, overlong_penalty, zero_std_mask
from grpo.batch import (
    PromptSampler,
    encode_prompts,
    pack,
    pad_rows,
    plan_micro_batches,
    prefill_prefixes,
    select_groups,
)
from grpo.config import MAX_LOGP_GAP_16BIT_FACTOR, GRPOConfig
from grpo.loss import aggregation_count, policy_loss
from grpo.metrics import StepMetrics
from reward.functions import score
from rollout.base import RolloutBatch, RolloutError, SamplingConfig
from runtime.logprobs import token_logprobs
from runtime.optim import clip_and_reduce_grads
from runtime.world import World

REF_ADAPTER = "ref"


# ----------------------------------------------------------------------------- collect


@dataclass
class StepBatch:
    """What a step trains on: B prompts (rows, ids) and their B*G completions, grouped."""

    rows: list[dict]
    prompts: list[list[int]]
    prompt_cut: list[bool]
    rollout: RolloutBatch
    rewards: torch.Tensor  # (B*G,) weighted sum of the reward functions (+ the overlong penalty)
    metrics: dict  # reward function metrics (over every sampled completion) and dynamic-sampling figures
    generate_s: float
    score_s: float


def step_sampling(cfg: GRPOConfig, step: int, world: World, rnd: int = 0) -> SamplingConfig:
    """One generate call's sampling: the config's, seeded by (sampling.seed or seed, step, rank, round)."""
    s = cfg.sampling
    base = cfg.seed if s.seed is None else s.seed
    return SamplingConfig(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, max_tokens=s.max_tokens,
                          seed=base * 100_003 + step * 101 + world.rank + rnd * 7_919_000)


def score_rollout(rows: list[dict], rollout: RolloutBatch, tok, cfg: GRPOConfig) -> tuple[torch.Tensor, dict]:
    """(B*G,) rewards of a rollout batch and the reward metrics."""
    texts = tok.batch_decode(rollout.completion_ids, skip_special_tokens=True)
    labels = [rows[i]["label"] for i in rollout.prompt_index]
    R, _, weights, metrics = score(cfg.reward, [rows[i]["text"] for i in rollout.prompt_index], texts, labels,
                                   rollout.lengths(), rollout.truncated)
    rewards = combine_rewards(R, weights)  # (B*G,)
    if cfg.loss.overlong == "soft":
        pen = overlong_penalty(rollout.lengths(), cfg.sampling.max_tokens, cfg.loss.overlong_buffer,
                               cfg.loss.overlong_penalty)  # (B*G,)
        rewards = rewards + pen
        metrics["reward/overlong_penalty_mean"] = pen.mean().item()
    return rewards, metrics


def collect_batch(backend, sampler: PromptSampler, tok, cfg: GRPOConfig, step: int, world: World) -> StepBatch:
    """Sample B prompts, generate G completions each, score them. sampling.dynamic: repeat with B more
    prompts per round until B groups have non-zero reward std or max_rounds is reached; a short step is
    filled with zero-std groups (no gradient) so it still holds B groups."""
    B, G = cfg.prompts_per_step, cfg.group_size
    rounds = cfg.sampling.max_rounds if cfg.sampling.dynamic else 1
    parts, part_metrics, informative, gen_s, score_s = [], [], [], 0.0, 0.0
    for rnd in range(rounds):
        t0 = time.perf_counter()
        rows = sampler.sample(step, rnd)
        prefixes = prefill_prefixes(rows, tok, cfg.data.prefill_fraction, cfg.data.prefill_max_tokens,
                                    f"{cfg.seed}/{step}/{world.rank}/{rnd}") if cfg.data.prefill_fraction else None
        prompts, cut = encode_prompts(rows, tok, cfg.data, prefixes)
        rollout = backend.generate(prompts, G, step_sampling(cfg, step, world, rnd))  # B*G
        t1 = time.perf_counter()
        rewards, rmetrics = score_rollout(rows, rollout, tok, cfg)
        if prefixes is not None:
            rmetrics.update(prefill_metrics(prefixes, rollout, tok))
        score_s, gen_s = score_s + time.perf_counter() - t1, gen_s + t1 - t0
        if not cfg.sampling.dynamic:
            return StepBatch(rows, prompts, cut, rollout, rewards, rmetrics, gen_s, score_s)
        parts.append((rows, prompts, cut, rollout, rewards))
        part_metrics.append(rmetrics)
        zero = zero_std_mask(rewards, G)  # (B,)
        informative += [(rnd, g) for g in range(len(rows)) if not zero[g]]
        if len(informative) >= B:
            break
    fill = [(p, g) for p in range(len(parts)) for g in range(len(parts[p][0])) if (p, g) not in informative]
    keep = sorted(informative[:B] + fill[: max(0, B - len(informative))])
    rows, prompts, cut, rollout, rewards = select_groups(parts, keep, G)
    n_groups = sum(len(p[0]) for p in parts)
    metrics = {**_mean_metrics(part_metrics, [len(p[0]) for p in parts]),
               "rollout/dynamic_rounds": len(parts), "rollout/dynamic_prompts": n_groups,
               "rollout/frac_reward_zero_std_raw": 1.0 - len(informative) / n_groups}
    return StepBatch(rows, prompts, cut, rollout, rewards, metrics, gen_s, score_s)


def prefill_metrics(prefixes: list[list[int]], rollout: RolloutBatch, tok) -> dict:
    """rollout/prefilled_frac (prompts that got a harmful prefix) and the markers' refusal rate of the
    completions that continue one (NaN when none did): does the policy turn around mid-answer?"""
    from reward.refusal import refusal_probability

    idx = [j for j, i in enumerate(rollout.prompt_index) if prefixes[i]]
    texts = tok.batch_decode([rollout.completion_ids[j] for j in idx], skip_special_tokens=True)
    refused = [p >= 0.5 for p in refusal_probability(texts, method="markers")] if texts else []
    return {"rollout/prefilled_frac": sum(bool(p) for p in prefixes) / max(len(prefixes), 1),
            "rollout/prefilled_refusal_rate": sum(refused) / len(refused) if refused else float("nan")}


def _mean_metrics(dicts: list[dict], weights: list[int]) -> dict:
    """Weighted mean of each key over the rounds that report it (NaN values left out)."""
    out = {}
    for k in dict.fromkeys(k for d in dicts for k in d):
        vals = [(d[k], w) for d, w in zip(dicts, weights) if k in d and d[k] == d[k]]
        out[k] = sum(v * w for v, w in vals) / sum(w for _, w in vals) if vals else float("nan")
    return out


# ----------------------------------------------------------------------------- train


@contextmanager
def eval_mode(model):
    """The model in eval mode (no dropout) inside the block, its previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def dropout_in_training(policy) -> bool:
    """Whether the policy's training forward is stochastic: a dropout with p > 0 that runs in it (the frozen
    reference adapter's LoRA dropout does not), or attention dropout in the model config."""
    for name, m in policy.named_modules():
        if isinstance(m, torch.nn.Dropout) and m.p > 0 and not name.endswith(f"lora_dropout.{REF_ADAPTER}"):
            return True
    return getattr(getattr(policy, "config", None), "attention_dropout", 0.0) > 0


def reference_logprobs(policy, ids, attn, P, cfg: GRPOConfig) -> torch.Tensor:
    """Log-probs under the KL reference: the adapter disabled (base) or the frozen SFT adapter; always
    without dropout (eval mode), whatever the adapter saved."""
    with torch.no_grad(), eval_mode(policy):
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


def max_logp_gap(cfg: GRPOConfig) -> float | None:
    """The post-sync gap limit in force: None with hf (the policy samples itself, nothing to sync)."""
    limit = cfg.rollout.max_logp_gap
    if limit is None or cfg.rollout.backend == "hf":
        return None
    return limit * (MAX_LOGP_GAP_16BIT_FACTOR if cfg.model.dtype in ("bfloat16", "float16") else 1.0)


def check_sync(gap: float, limit: float | None, cfg: GRPOConfig, world: World) -> None:
    """Raise RolloutError on every rank when any rank's post-sync log-prob gap exceeds the limit."""
    if limit is None:
        return
    over = world.all_reduce_sum(torch.tensor(float(gap > limit))).item()
    if over > 0:
        r = cfg.rollout
        raise RolloutError(
            f"rollout/trainer log-prob gap {gap:.3g} > rollout.max_logp_gap {limit:g} on the batch after a "
            f"weight sync (backend {r.backend}, sync {r.sync}, dtype {cfg.model.dtype}): the engine is not "
            "sampling from the trained weights; stopping instead of training on stale samples")


def kl_sample(zero: list[bool], share: float, seed: int, step: int) -> list[bool]:
    """Which zero-advantage completions keep their KL term: each with probability `share`, a pure function
    of (seed, step), so resume replays it."""
    if share <= 0:
        return [False] * len(zero)
    rng = random.Random(f"kl-sample\n{seed}\n{step}")
    return [z and rng.random() < share for z in zero]


def train_on_batch(policy, optimizer, scheduler, params, prompts, rollout, adv, pad_id: int, cfg: GRPOConfig,
                   world: World, step: int = 0):
    """num_iterations optimizer passes over the rollout batch, micro-batched -> (train metrics of the step, reduced
    over micro-batches, passes and ranks as their names say: grpo.metrics.StepMetrics; perf metrics)."""
    lens = rollout.lengths()
    mbs = plan_micro_batches([len(prompts[i]) for i in rollout.prompt_index], lens, cfg.micro_batch_size,
                             cfg.micro_batch_order, cfg.micro_batch_tokens)
    counted = [not (cfg.loss.overlong == "filter" and t) for t in rollout.truncated]  # in the loss and its counts
    skip = cfg.skip_zero_advantage
    zero = [c and skip and float(a) == 0.0 for c, a in zip(counted, adv.tolist())]
    share = cfg.loss.zero_advantage_kl_sample if cfg.kl.beta > 0 else 0.0  # beta 0: no KL term to keep
    sampled = kl_sample(zero, share, cfg.seed * 1_000_003 + world.rank, step)  # zero rows trained for their KL
    trained = [c and (not z or k) for c, z, k in zip(counted, zero, sampled)]  # get a forward
    kl_w = torch.tensor([1.0 / share if k else 1.0 for k in sampled])  # (N,)
    n_tokens = torch.tensor(float(sum(n for n, c in zip(lens, counted) if c)))
    global_tokens = world.all_reduce_sum(n_tokens.clone()).item()
    n_mbs = max(1, sum(any(counted[i] for i in mb) for mb in mbs))  # the loss is a mean over these
    runs = [[i for i in mb if trained[i]] for mb in mbs]
    limit = max_logp_gap(cfg)
    noisy = dropout_in_training(policy)  # then "old" needs its own forward without dropout
    old, ref = {}, {}
    stats = StepMetrics(cfg.loss.is_level)
    # the share of the step's objective one micro-batch's loss is: global_token sums over micro-batches and
    # ranks (the gradient is summed over ranks), the other aggregations average over both
    loss_scale = 1.0 if cfg.loss.agg == "global_token" else 1.0 / (n_mbs * world.world_size)
    grid, real, gap_sum, gap_tokens = 0, 0, 0.0, 0.0
    policy.train()
    for it in range(cfg.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        for j, idx in enumerate(runs):
            if not idx:
                continue
            comps = [rollout.completion_ids[i] for i in idx]
            ids, attn, P = pack([prompts[rollout.prompt_index[i]] for i in idx], comps, pad_id)
            ids, attn = ids.to(world.device), attn.to(world.device)
            mask = attn[:, P:].float()  # (n, T)
            if it == 0 and noisy:  # the sampling policy has no dropout: neither may old, IS weights, sync check
                with torch.no_grad(), eval_mode(policy):
                    old[j], _ = token_logprobs(policy, ids, attn, prompt_len=P,
                                               temperature=cfg.sampling.temperature)  # (n, T)
            logp, ent = token_logprobs(policy, ids, attn, prompt_len=P,
                                       temperature=cfg.sampling.temperature, with_entropy=True)  # (n, T)
            roll = pad_rows([rollout.logprobs[i] for i in idx], mask.shape[1]).to(world.device)  # (n, T)
            if it == 0:
                if not noisy:
                    old[j] = logp.detach()
                if cfg.kl.beta > 0:
                    ref[j] = reference_logprobs(policy, ids, attn, P, cfg)
                grid, real = grid + attn.numel(), real + int(attn.sum())
                if limit is not None:  # this rank's train/rollout_logp_diff_mean: a mean over its tokens
                    gap_sum += ((old[j] - roll).abs() * mask).sum().item()
                    gap_tokens += mask.sum().item()
            full = [i for i in mbs[j] if counted[i]]
            loss, m = policy_loss(
                logp, old[j], adv[idx].to(world.device), mask,
                eps_low=cfg.loss.eps_low, eps_high=cfg.loss.eps_high, dual_clip=cfg.loss.dual_clip,
                ref_logp=ref.get(j), beta=cfg.kl.beta, kl_estimator=cfg.kl.estimator,
                rollout_logp=roll if cfg.loss.is_correction else None,
                is_cap=cfg.loss.is_cap, is_level=cfg.loss.is_level, agg=cfg.loss.agg,
                max_tokens=cfg.sampling.max_tokens, num_global_tokens=global_tokens,
                agg_count=None if idx == mbs[j] else aggregation_count([lens[i] for i in full], cfg.loss.agg),
                kl_weight=kl_w[idx].to(world.device) if any(sampled) else None,
            )
            if cfg.loss.agg != "global_token":
                loss = loss / n_mbs  # mean over micro-batches; ranks are averaged below
            loss.backward()
            m["entropy"] = (ent * mask).sum().item() / max(mask.sum().item(), 1.0)
            stats.add_loss_metrics(m, loss_scale)
        if it == 0:
            check_sync(gap_sum / max(gap_tokens, 1.0), limit, cfg, world)
        for p in params:  # nothing trained (every row skipped): a zero gradient, so AdamW still steps as usual
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grad_norm = clip_and_reduce_grads(params, cfg.optim.max_grad_norm, world,
                                          sum_ranks=cfg.loss.agg == "global_token")
        optimizer.step()
        scheduler.step()
        stats.add("grad_norm", "mean", grad_norm)  # the same on every rank (after the reduction)
    stats.add("skipped_seqs_frac", "mean", sum(c and not t for c, t in zip(counted, trained)) / max(1, len(lens)),
              len(lens))
    if share > 0:
        stats.add("kl_sampled_seqs_frac", "mean", sum(sampled) / max(1, len(lens)), len(lens))
    sums = stats.result(world, passes=cfg.num_iterations)
    perf = {"perf/pad_frac": 1.0 - real / grid if grid else 0.0}
    if cfg.loss.overlong == "filter":
        perf["rollout/overlong_filtered_frac"] = sum(not c for c in counted) / max(1, len(lens))
    return sums, perf


def note_options(cfg: GRPOConfig, is_main: bool) -> None:
    """One line at start for an option that changes the objective, so a log says so."""
    q = cfg.loss.zero_advantage_kl_sample
    if is_main and cfg.loss.skip_zero_advantage_with_kl and cfg.kl.beta > 0 and q > 0:
        tqdm.write(f"note: loss.zero_advantage_kl_sample={q:g}: a share {q:g} of the zero-advantage completions "
                   f"is trained for its KL term (kl.beta={cfg.kl.beta:g}), weighted by {1 / q:g}")
    elif is_main and cfg.loss.skip_zero_advantage_with_kl and cfg.kl.beta > 0:
        tqdm.write(f"note: loss.skip_zero_advantage_with_kl: zero-advantage completions are not trained, so "
                   f"their KL term (kl.beta={cfg.kl.beta:g}) is dropped from the loss")
