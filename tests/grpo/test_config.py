"""grpo.config: the sampling checks, the KL estimators and IS levels it accepts, sampling.seed."""

import pytest
import torch

from grpo.config import GRPOConfig
from grpo.loss import policy_loss
from grpo.step import step_sampling
from runtime.config import ConfigError, load_config
from runtime.world import init_world


@pytest.mark.parametrize(("override", "words"), [
    ("sampling.temperature=0", "must be > 0, got 0"),
    ("sampling.top_p=0.9", "top_p 1 and top_k 0, got 0.9 / 0"),
    ("sampling.top_k=50", "top_p 1 and top_k 0, got 1 / 50"),
])
def test_sampling_that_breaks_the_ratio_is_a_config_error(override, words):
    with pytest.raises(ConfigError, match="sampling") as e:
        load_config(GRPOConfig, overrides=[override])
    msg = str(e.value)
    assert words in msg and "\n" not in msg
    if "top" in override:
        assert "biases the IS ratio" in msg


def test_generic_sampling_config_still_allows_greedy():
    from rollout.base import SamplingConfig

    SamplingConfig(temperature=0.0, top_p=0.9, top_k=5).validate()  # evals decode greedily through it


def test_sampling_seed_replaces_the_run_seed_in_every_step_seed():
    world = init_world("cpu")
    run = load_config(GRPOConfig, overrides=["seed=3"])
    assert run.sampling.seed is None
    assert step_sampling(run, 5, world).seed == 3 * 100_003 + 5 * 101  # unchanged without sampling.seed
    own = load_config(GRPOConfig, overrides=["seed=3", "sampling.seed=11"])
    seeds = [step_sampling(own, s, world, rnd).seed for s in range(3) for rnd in range(2)]
    assert seeds[0] == 11 * 100_003 and len(set(seeds)) == 6  # per step and round, from sampling.seed
    same_data = load_config(GRPOConfig, overrides=["seed=4", "sampling.seed=11"])
    assert step_sampling(same_data, 2, world, 1).seed == step_sampling(own, 2, world, 1).seed


def test_config_accepts_each_estimator_and_the_geometric_is_level(capsys):
    for est in ("k1", "k2", "k3"):
        assert load_config(GRPOConfig, overrides=[f"kl.estimator={est}"]).kl.estimator == est
    assert load_config(GRPOConfig, overrides=["loss.is_level=geometric"]).loss.is_level == "geometric"
    capsys.readouterr()
    # the old name still reads, as the geometric level it always was, with a one-line deprecation note
    assert load_config(GRPOConfig, overrides=["loss.is_level=sequence"]).loss.is_level == "geometric"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss.is_level=sequence is deprecated" in err[0] and "geometric" in err[0]
    with pytest.raises(ValueError, match="is_level"):  # the loss itself knows only the current names
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1),
                    rollout_logp=torch.zeros(1, 1), is_level="sequence")
