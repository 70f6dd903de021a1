"""Every shipped YAML in configs/ parses into its stage's dataclass (no unknown keys, right types)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def stage_of(path: Path):
    from grpo.config import GRPOConfig
    from sft.train import SFTConfig

    name = path.stem
    if "grpo" in name:
        return GRPOConfig
    if "sft" in name or "attack" in name:
        return SFTConfig
    raise AssertionError(f"{path.name}: name it *grpo*, *sft* or *attack* so its stage is known")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path):
    cfg = load_config(stage_of(path), path)
    assert cfg.model.name


def test_recipes_mirror_the_seed_hyperparameters():
    from grpo.config import GRPOConfig
    from sft.train import SFTConfig

    root = CONFIGS[0].parent
    for model in ("qwen25_3b", "ministral_3b"):
        for variant, quant in (("bf16", "none"), ("qlora", "nf4")):
            s = load_config(SFTConfig, root / f"{model}_sft_{variant}.yaml")
            g = load_config(GRPOConfig, root / f"{model}_grpo_{variant}.yaml")
            assert (s.policy.r, s.policy.alpha, s.optim.lr) == (32, 64, 5e-5)
            assert (g.optim.lr, g.group_size) == (1.5e-6, 4)
            # GRPO continues the SFT adapter, which owns r / alpha / targets; the dropout is GRPO's own (none)
            assert g.policy.init_adapter == f"{s.out_dir}/adapter"
            assert (g.policy.r, g.policy.alpha, g.policy.target_modules) == (None, None, None)
            assert (s.policy.dropout, g.policy.dropout) == (0.05, 0.0)
            assert (g.data.max_prompt_tokens, g.sampling.max_tokens) == (512, 192)
            assert s.model.quantization == g.model.quantization == quant
            assert len(s.policy.target_modules) == 7
