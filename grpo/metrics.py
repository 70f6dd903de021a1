"""The GRPO step's logged metrics (rollout/, reward/, perf/), the dying-run warning, the held-out eval."""

from __future__ import annotations

import math
import resource

import torch
from tqdm import tqdm

from grpo.advantages import combine_rewards, zero_std_mask
from grpo.batch import encode_prompts
from grpo.loss import METRIC_REDUCE, metric_count
from reward.functions import score
from reward.refusal import refusal_probability
from rollout.base import SamplingConfig


class StepMetrics:
    """The train/* metrics of a step, each reduced over micro-batches, passes and ranks the way its name says
    (grpo.loss.METRIC_REDUCE): sums (loss parts, token counts) per pass, true maxima / minima, and means
    weighted by what they are means over (tokens; completions for the geometric IS weight). The values do
    not depend on how the step is cut into micro-batches or ranks."""

    def __init__(self, is_level: str = "token") -> None:
        self.is_level = is_level
        self.kind: dict[str, str] = {}  # name -> sum | max | min | mean
        self.total: dict[str, float] = {}  # sums; for means the weighted sum
        self.weight: dict[str, float] = {}  # means: the summed weights
        self.extreme: dict[str, float] = {}  # max / min so far (absent: no data yet)

    def add(self, name: str, kind: str, value: float, weight: float = 1.0) -> None:
        self.kind[name] = kind
        if kind == "sum":
            self.total[name] = self.total.get(name, 0.0) + value
        elif kind == "mean":
            self.total[name] = self.total.get(name, 0.0) + value * weight
            self.weight[name] = self.weight.get(name, 0.0) + weight
        elif weight > 0:  # a max / min over no data (an empty micro-batch) says nothing
            pick = max if kind == "max" else min
            self.extreme[name] = pick(self.extreme[name], value) if name in self.extreme else value

    def add_loss_metrics(self, m: dict[str, float], loss_scale: float = 1.0) -> None:
        """One micro-batch's policy_loss metrics (plus any extra token means, e.g. entropy). loss_scale: what
        the loop multiplies this micro-batch's loss by before backward (its share of the step's objective)."""
        for k, v in m.items():
            kind = METRIC_REDUCE.get(k, "mean")
            scale = loss_scale if k in ("loss", "pg_loss", "kl_loss") else 1.0
            self.add(k, kind, v * scale, m.get(metric_count(k, self.is_level), 0.0))

    def result(self, world, passes: int = 1) -> dict[str, float]:
        """Reduce over ranks (a collective: every rank calls it) -> {name: value}; sums are per pass."""
        names = sorted(self.kind)
        if world.distributed:  # every rank must reduce the same keys in the same order
            kinds = {}
            for d in world.gather_objects(self.kind):
                kinds.update(d)
            self.kind, names = kinds, sorted(kinds)
        plain = [n for n in names if self.kind[n] in ("sum", "mean")]
        sums = torch.tensor([self.total.get(n, 0.0) for n in plain] + [self.weight.get(n, 0.0) for n in plain],
                            dtype=torch.float64)
        world.all_reduce_sum(sums)
        out = {}
        for i, n in enumerate(plain):
            total, weight = sums[i].item(), sums[len(plain) + i].item()
            out[n] = total / passes if self.kind[n] == "sum" else (total / weight if weight > 0 else 0.0)
        for kind, reduce, none in (("max", world.all_reduce_max, -math.inf), ("min", world.all_reduce_min, math.inf)):
            keys = [n for n in names if self.kind[n] == kind]
            vals = reduce(torch.tensor([self.extreme.get(n, none) for n in keys], dtype=torch.float64)).tolist()
            out.update({n: v if math.isfinite(v) else 0.0 for n, v in zip(keys, vals)})  # no data anywhere: 0
        return {n: out[n] for n in names}


def rollout_metrics(rollout, rewards: torch.Tensor, group_size: int, prompt_cut: list[bool]) -> dict:
    lens = torch.tensor([len(c) for c in rollout.completion_ids], dtype=torch.float32)
    return {
        "reward/mean": rewards.mean().item(),
        "reward/std": rewards.std().item() if rewards.numel() > 1 else 0.0,
        "rollout/frac_reward_zero_std": zero_std_mask(rewards, group_size).float().mean().item(),
        "rollout/clipped_ratio": sum(rollout.truncated) / len(rollout.truncated),
        "rollout/completion_len_mean": lens.mean().item(),
        "rollout/completion_len_min": lens.min().item(),
        "rollout/completion_len_max": lens.max().item(),
        "rollout/truncated_prompt_ratio": sum(prompt_cut) / len(prompt_cut),
    }


def perf_metrics(rollout, seconds: dict[str, float], sync: dict) -> dict:
    """seconds: the step's phases (generate, score, train, sync); peak memory so far."""
    n_tok = sum(len(c) for c in rollout.completion_ids)
    step_s = sum(seconds.values())
    out = {
        "perf/step_s": step_s, **{f"perf/{k}_s": v for k, v in seconds.items()},
        "perf/completion_tokens": n_tok, "perf/gen_tokens_per_s": n_tok / max(seconds["generate"], 1e-9),
        "perf/tokens_per_s": n_tok / max(step_s, 1e-9),
        "perf/peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # Linux: KiB
        **{f"perf/{k}": v for k, v in sync.items() if isinstance(v, int | float)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["perf/cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def warn_if_dying(frac: float, dying: int, warn_steps: int, step: int, is_main: bool) -> int:
    """Count consecutive steps with frac_reward_zero_std > 0.5 and warn once it lasts `warn_steps`."""
    dying = dying + 1 if frac > 0.5 else 0
    if is_main and dying >= warn_steps:
        state = "dead" if frac > 0.8 else "dying"
        tqdm.write(f"warning: step {step + 1}: frac_reward_zero_std={frac:.2f} for {dying} steps: the run is "
                   f"{state} (most groups give no gradient; raise temperature/group size or start from SFT)")
    return dying


def postfix(m: dict) -> dict:
    keys = {"reward/mean": "R", "rollout/frac_reward_zero_std": "zstd", "rollout/clipped_ratio": "clip",
            "train/entropy": "H", "train/kl_mean": "kl", "perf/step_s": "s"}
    return {short: f"{m[k]:.3g}" for k, short in keys.items() if k in m and m[k] is not None}


@torch.no_grad()
def evaluate(backend, rows: list[dict], tok, cfg) -> dict:
    """Greedy completions on the fixed held-out rows, scored by the training reward (cfg: GRPOConfig)."""
    prompts, _ = encode_prompts(rows, tok, cfg.data)
    greedy = SamplingConfig(temperature=0.0, max_tokens=cfg.sampling.max_tokens, seed=cfg.seed)
    out = backend.generate(prompts, 1, greedy)
    texts = tok.batch_decode(out.completion_ids, skip_special_tokens=True)
    labels = [r["label"] for r in rows]
    R, _, weights, _ = score(cfg.reward, [r["text"] for r in rows], texts, labels,
                             [len(c) for c in out.completion_ids], out.truncated)
    total = combine_rewards(R, weights)  # (N,)
    refused = torch.tensor([p >= 0.5 for p in refusal_probability(texts, method="markers")])
    mal = torch.tensor([lab == "malicious" for lab in labels])
    return {
        "eval/reward": total.mean().item(),
        "eval/malicious_refusal_rate": refused[mal].float().mean().item() if mal.any() else float("nan"),
        "eval/benign_helpfulness": (~refused[~mal]).float().mean().item() if (~mal).any() else float("nan"),
    }
