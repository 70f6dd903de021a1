"""The GRPO run config: one small dataclass per concern, composed into GRPOConfig.

Every choice is a Literal and every number carries its allowed range in its type, so a bad value
stops the run when the config is read (one line naming the key, the value and the range), before
any model loads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated, Literal

from data.chat import PromptSettings
from reward.functions import RewardConfig
from rollout.base import RolloutConfig, SamplingConfig
from runtime.config import ConfigError, NonNegFloat, NonNegInt, PosFloat, PosInt, Range, UnitFloat
from runtime.metrics import LogConfig
from runtime.models import LoraConfig, ModelConfig
from runtime.optim import OptimConfig

AtLeast2 = Annotated[int, Range(lo=2)]


@dataclass
class DataConfig(PromptSettings):
    train: str = "runs/data/train_balanced.jsonl"
    """JSONL of training prompts (rows with text and label), e.g. data.prepare's train_balanced.jsonl."""
    eval: str | None = "runs/data/eval.jsonl"
    """JSONL of held-out prompts for periodic evaluation (None: no eval)."""
    malicious_fraction: UnitFloat = 0.5
    """Share of malicious prompts in each step's batch (the rest benign)."""
    eval_rows: PosInt = 32
    """Held-out rows scored at each eval (label-balanced, fixed across evals)."""
    prefill_fraction: UnitFloat = 0.0
    """Course-correction GRPO: this share of the malicious prompts get the first k tokens of a harmful-compliant
    answer (data/builtin/compliance.py) after the assistant header; rollouts continue from it, rewards score the
    continuation, the prefix is prompt (no gradient; counted against max_prompt_tokens)."""
    prefill_max_tokens: PosInt = 16
    """Longest prefill, in tokens (k is uniform in 1..prefill_max_tokens)."""


@dataclass
class LossConfig:
    eps_low: UnitFloat = 0.2
    """PPO clip: ratio below 1 - eps_low stops the gradient for A < 0."""
    eps_high: NonNegFloat = 0.28
    """PPO clip: ratio above 1 + eps_high stops the gradient for A > 0 (DAPO clip-higher)."""
    dual_clip: Annotated[float, Range(lo=1, lo_open=True)] | None = None
    """Dual-clip constant c > 1 bounding the loss for A < 0 (None: off)."""
    agg: Literal["token_mean", "seq_mean_token_mean", "dr_grpo", "global_token"] = "global_token"
    """Loss aggregation; global_token is DAPO's: over all completion tokens of the step, all ranks."""
    advantage_scale: Literal["group", "batch", "none"] = "group"
    """group (z-score in the group) | batch (divide by the batch std) | none (Dr. GRPO)."""
    advantage_eps: PosFloat = 1e-4
    """Added to the std before dividing."""
    is_correction: bool = True
    """Weight tokens by min(exp(old_logp - rollout_logp), is_cap): the rollout/trainer mismatch correction."""
    is_cap: PosFloat = 2.0
    """Truncation cap of the importance weight."""
    is_level: Literal["token", "geometric", "sequence"] = "token"
    """token (one weight per token) | geometric (one weight per completion: exp of the masked mean of
    old - rollout log-probs, the geometric mean of the token ratios; verl's name) | sequence (deprecated
    alias of geometric)."""
    skip_zero_advantage: bool = False
    """Skip the forward/backward of completions with advantage exactly 0 (same gradient up to float rounding; kl.beta > 0: see below)."""
    skip_zero_advantage_with_kl: bool = False
    """With kl.beta > 0, skip them anyway and drop their KL term from the loss (changes the gradient)."""
    zero_advantage_kl_sample: UnitFloat = 0.0
    """With skip_zero_advantage_with_kl: this share of the zero-advantage completions (seeded per step) is
    still trained, its KL term weighted by 1/share: the KL gradient is kept in expectation (0: dropped)."""
    overlong: Literal["none", "filter", "soft"] = "none"
    """Truncated completions: none | filter (out of the loss and its token counts) | soft (DAPO's length penalty added to the reward)."""
    overlong_buffer: PosInt = 16
    """soft: the penalty ramps linearly over the last this many tokens of sampling.max_tokens."""
    overlong_penalty: PosFloat = 1.0
    """soft: the penalty at sampling.max_tokens (DAPO: 1)."""

    def validate(self) -> None:
        if self.is_level == "sequence":
            print("warning: loss.is_level=sequence is deprecated: it is the geometric mean of the token ratios, "
                  "now called geometric (same numbers)", file=sys.stderr, flush=True)
            self.is_level = "geometric"


@dataclass
class GRPOSamplingConfig(SamplingConfig):
    seed: int | None = None
    """Base of every step's sampling seed (seed * 100003 + step * 101 + rank + ...); None: the run's `seed`."""
    dynamic: bool = False
    """DAPO dynamic sampling: drop zero-std groups and sample more prompts until the step has B informative ones."""
    max_rounds: PosInt = 3
    """dynamic: generation rounds per step at most (each samples B more prompts); short steps are filled with zero-std groups."""


MAX_LOGP_GAP_16BIT_FACTOR = 10.0
"""rollout.max_logp_gap is for a float32 engine; a bfloat16 / float16 one gets this many times more."""


@dataclass
class GRPORolloutConfig(RolloutConfig):
    max_logp_gap: PosFloat | None = 1e-2
    """Stop when the batch after a weight sync has mean |rollout - trainer log-prob| above this (x10 at 16 bits; hf: unchecked; None: off)."""


@dataclass
class KLConfig:
    beta: NonNegFloat = 0.0
    """Weight of the KL penalty (0: no reference forward at all)."""
    estimator: Literal["k3", "k2", "k1"] = "k3"
    """k3 (exp(r) - r - 1, r = ref - logp), k2 ((logp - ref)^2 / 2) or k1 (logp - ref). As a loss term on
    tokens sampled from the policy, the expected gradient is: k3, that of the forward KL(ref || pi) (the
    usual GRPO / TRL choice); k2, that of the reverse KL(pi || ref); k1, zero (its value estimates
    KL(pi || ref) but its gradient does not: useful as a metric only)."""
    reference: Literal["base", "sft"] = "base"
    """base (the adapter disabled) or sft (a frozen copy of policy.init_adapter)."""


@dataclass
class GRPOConfig:
    out_dir: str = "runs/grpo"
    """Where metrics.jsonl, checkpoints/, best/ and adapter/ go."""
    seed: int = 0
    """Seeds data order, sampling and initialisation."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto, cpu or cuda."""
    steps: PosInt = 20
    """GRPO steps (one rollout batch each)."""
    prompts_per_step: PosInt = 8
    """Prompts per step per rank (B); each gets group_size completions."""
    group_size: AtLeast2 = 4
    """Completions per prompt (G), 4 or 8 in practice; >= 2 (a group of 1 has no relative advantage)."""
    num_iterations: PosInt = 1
    """Optimizer passes per rollout batch (mu); > 1 is where the ratio moves off 1 and clipping acts. Every
    shipped config but smoke_grpo_cpu_mu2.yaml is on-policy (1: one update per batch)."""
    micro_batch_size: PosInt = 8
    """Sequences per forward/backward (gradient accumulation over the batch)."""
    micro_batch_tokens: NonNegInt = 0
    """Token budget of a micro-batch's padded (prompt + completion) grid instead of micro_batch_size (0: use micro_batch_size)."""
    micro_batch_order: Literal["rollout", "length"] = "rollout"
    """rollout (sampling order) | length (rows of similar prompt / completion length together: less padding)."""
    eval_every: NonNegInt = 0
    """Evaluate on the held-out rows every N steps (0: only at the end when data.eval is set)."""
    patience: NonNegInt = 0
    """Stop after this many evals without a better eval reward (0: never)."""
    save_every: NonNegInt = 0
    """Write a resumable checkpoint every N steps (0: only at the end)."""
    resume: str | None = None
    """A checkpoint dir (or a dir of step_* checkpoints) to continue from."""
    dying_warn_steps: PosInt = 3
    """Warn when frac_reward_zero_std stays over 0.5 for this many steps (dead over 0.8)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW and its LR schedule."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The base model."""
    policy: LoraConfig = field(default_factory=LoraConfig)
    """The trainable LoRA (policy.init_adapter continues an existing adapter, e.g. the SFT one)."""
    rollout: GRPORolloutConfig = field(default_factory=GRPORolloutConfig)
    """The generation engine (rollout.backend=hf|vllm|openai)."""
    sampling: GRPOSamplingConfig = field(default_factory=GRPOSamplingConfig)
    """Sampling for training rollouts: temperature > 0, top_p 1 and top_k 0 (checked: the trainer's log-probs
    are those of logits / temperature, so a truncated distribution would bias the IS ratio)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward functions and their weights."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Policy loss settings."""
    kl: KLConfig = field(default_factory=KLConfig)
    """KL penalty to a reference."""
    data: DataConfig = field(default_factory=DataConfig)
    """Prompts."""
    log: LogConfig = field(default_factory=LogConfig)
    """Metric logging."""

    def validate(self) -> None:
        s = self.sampling
        if s.temperature == 0:
            raise ConfigError("config key 'sampling.temperature': GRPO samples, so it must be > 0, got 0 "
                              "(greedy has no sampling distribution to compute the ratio against)")
        if s.top_p < 1 or s.top_k > 0:
            raise ConfigError(f"config keys 'sampling.top_p' / 'sampling.top_k': GRPO needs top_p 1 and top_k 0, got "
                              f"{s.top_p:g} / {s.top_k}: a truncated distribution makes the engine's log-probs differ "
                              "from the trainer's logits / temperature and biases the IS ratio")
        if self.kl.reference == "sft" and self.kl.beta > 0 and not self.policy.init_adapter:
            raise ConfigError("config key 'kl.reference': sft needs policy.init_adapter (the SFT adapter dir)")
        if self.loss.skip_zero_advantage_with_kl and not self.loss.skip_zero_advantage:
            raise ConfigError("config key 'loss.skip_zero_advantage_with_kl': needs loss.skip_zero_advantage=true")
        if self.loss.zero_advantage_kl_sample > 0 and not self.loss.skip_zero_advantage_with_kl:
            raise ConfigError("config key 'loss.zero_advantage_kl_sample': needs loss.skip_zero_advantage_with_kl=true")
        if self.loss.overlong == "soft" and self.loss.overlong_buffer > self.sampling.max_tokens:
            raise ConfigError(f"config key 'loss.overlong_buffer': must be <= sampling.max_tokens "
                              f"({self.sampling.max_tokens}), got {self.loss.overlong_buffer}")

    @property
    def skip_zero_advantage(self) -> bool:
        """Whether zero-advantage completions skip the forward (with a KL term only when asked to)."""
        return self.loss.skip_zero_advantage and (self.kl.beta == 0 or self.loss.skip_zero_advantage_with_kl)

