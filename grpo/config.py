"""The GRPO run config: one small dataclass per concern, composed into GRPOConfig."""

from __future__ import annotations

from dataclasses import dataclass, field

from reward.functions import RewardConfig
from rollout.base import RolloutConfig, SamplingConfig
from runtime.config import ConfigError
from runtime.metrics import LogConfig
from runtime.models import LoraConfig, ModelConfig


@dataclass
class DataConfig:
    train: str = "runs/data/train_balanced.jsonl"
    """JSONL of training prompts (rows with text and label), e.g. data.prepare's train_balanced.jsonl."""
    eval: str | None = "runs/data/eval.jsonl"
    """JSONL of held-out prompts for periodic evaluation (None: no eval)."""
    system_prompt: str | None = None
    """System prompt for every prompt (None: the model's chat-template default)."""
    max_prompt_tokens: int = 256
    """Prompts are cut to this many tokens at tokenization (the user text is cut, never the template)."""
    truncation_side: str = "left"
    """left: keep the end of the user text (where long jailbreaks put the request); right: keep the start."""
    malicious_fraction: float = 0.5
    """Share of malicious prompts in each step's batch (the rest benign)."""
    eval_rows: int = 32
    """Held-out rows scored at each eval (label-balanced, fixed across evals)."""


@dataclass
class LossConfig:
    eps_low: float = 0.2
    """PPO clip: ratio below 1 - eps_low stops the gradient for A < 0."""
    eps_high: float = 0.28
    """PPO clip: ratio above 1 + eps_high stops the gradient for A > 0 (DAPO clip-higher)."""
    dual_clip: float | None = None
    """Dual-clip constant c > 1 bounding the loss for A < 0 (None: off)."""
    agg: str = "global_token"
    """token_mean | seq_mean_token_mean | dr_grpo | global_token (DAPO: over all tokens of the step, all ranks)."""
    advantage_scale: str = "group"
    """group (z-score in the group) | batch (divide by the batch std) | none (Dr. GRPO)."""
    advantage_eps: float = 1e-4
    """Added to the std before dividing."""
    is_correction: bool = True
    """Weight tokens by min(exp(old_logp - rollout_logp), is_cap): the rollout/trainer mismatch correction."""
    is_cap: float = 2.0
    """Truncation cap of the importance weight."""
    is_level: str = "token"
    """token, or sequence (geometric mean over the completion)."""


@dataclass
class KLConfig:
    beta: float = 0.0
    """Weight of the KL penalty (0: no reference forward at all)."""
    estimator: str = "k3"
    """k3 (exp(r) - r - 1, r = ref - logp) or k1 (logp - ref)."""
    reference: str = "base"
    """base (the adapter disabled) or sft (a frozen copy of policy.init_adapter)."""


@dataclass
class GRPOConfig:
    out_dir: str = "runs/grpo"
    """Where metrics.jsonl, checkpoints/, best/ and adapter/ go."""
    seed: int = 0
    """Seeds data order, sampling and initialisation."""
    device: str = "auto"
    """auto, cpu or cuda."""
    steps: int = 20
    """GRPO steps (one rollout batch each)."""
    prompts_per_step: int = 8
    """Prompts per step per rank (B); each gets group_size completions."""
    group_size: int = 4
    """Completions per prompt (G), 4 or 8 in practice; >= 2."""
    num_iterations: int = 1
    """Optimizer passes per rollout batch (mu); > 1 is where the ratio moves off 1 and clipping acts."""
    micro_batch_size: int = 8
    """Sequences per forward/backward (gradient accumulation over the batch)."""
    lr: float = 1e-5
    """AdamW learning rate of the LoRA parameters."""
    lr_schedule: str = "constant"
    """constant or cosine (both after a linear warmup)."""
    warmup_steps: int = 0
    """Linear warmup, in optimizer steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global norm)."""
    eval_every: int = 0
    """Evaluate on the held-out rows every N steps (0: only at the end when data.eval is set)."""
    patience: int = 0
    """Stop after this many evals without a better eval reward (0: never)."""
    save_every: int = 0
    """Write a resumable checkpoint every N steps (0: only at the end)."""
    resume: str | None = None
    """A checkpoint dir (or a dir of step_* checkpoints) to continue from."""
    dying_warn_steps: int = 3
    """Warn when frac_reward_zero_std stays over 0.5 for this many steps (dead over 0.8)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The base model."""
    policy: LoraConfig = field(default_factory=LoraConfig)
    """The trainable LoRA (policy.init_adapter continues an existing adapter, e.g. the SFT one)."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """The generation engine (rollout.backend=hf|vllm|openai)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampling for training rollouts (top_p 1 / top_k off keep the IS ratio unbiased)."""
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
        if self.group_size < 2:
            raise ConfigError("config key 'group_size': must be >= 2 (a group of 1 has no relative advantage)")
        if self.num_iterations < 1:
            raise ConfigError("config key 'num_iterations': must be >= 1")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"config key 'lr_schedule': expected constant or cosine, got {self.lr_schedule!r}")
        if self.kl.reference not in ("base", "sft"):
            raise ConfigError(f"config key 'kl.reference': expected base or sft, got {self.kl.reference!r}")
        if self.kl.reference == "sft" and self.kl.beta > 0 and not self.policy.init_adapter:
            raise ConfigError("config key 'kl.reference': sft needs policy.init_adapter (the SFT adapter dir)")
        if self.loss.agg not in ("token_mean", "seq_mean_token_mean", "dr_grpo", "global_token"):
            raise ConfigError(f"config key 'loss.agg': unknown aggregation {self.loss.agg!r}")
        if self.loss.advantage_scale not in ("group", "batch", "none"):
            raise ConfigError(f"config key 'loss.advantage_scale': unknown {self.loss.advantage_scale!r}")
        if self.data.truncation_side not in ("left", "right"):
            raise ConfigError("config key 'data.truncation_side': expected left or right")
        if not 0.0 <= self.data.malicious_fraction <= 1.0:
            raise ConfigError("config key 'data.malicious_fraction': must be in [0, 1]")
