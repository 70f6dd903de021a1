"""grpo.advantages: hand-worked values for every mode, zero-std groups, reward combination, errors."""

import math

import pytest
import torch

from grpo.advantages import combine_rewards, frac_reward_zero_std, group_advantages, zero_std_mask

# Two groups of G=4: one with signal, one with identical rewards.
R = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])


def test_group_mode_hand_values():
    # Group 1: mean 0.25, centred [0.75, -0.25, -0.25, -0.25];
    # unbiased var = (0.75^2 + 3 * 0.25^2) / 3 = 0.75 / 3 = 0.25, std 0.5.
    # A = centred / (0.5 + 1e-4). Group 2 is all 2.0 -> exactly 0.
    a = group_advantages(R, 4, "group", eps=1e-4)
    d = 0.5 + 1e-4
    expected = [0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d, 0, 0, 0, 0]
    assert a.tolist() == pytest.approx(expected, rel=1e-6)
    assert a.dtype == torch.float32


def test_batch_mode_hand_values():
    # Centring is still per group; the scale is the unbiased std of all 8 rewards:
    # mean 9/8 = 1.125; squared deviations: (1-1.125)^2 = 0.015625, 3 * 1.125^2 = 3.796875,
    # 4 * 0.875^2 = 3.0625; sum 6.875; var = 6.875 / 7; std = sqrt(0.98214...) = 0.99103...
    std = math.sqrt(6.875 / 7)
    a = group_advantages(R, 4, "batch", eps=1e-4)
    d = std + 1e-4
    assert a.tolist() == pytest.approx([0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d, 0, 0, 0, 0], rel=1e-6)


def test_none_mode_is_dr_grpo_centring_only():
    a = group_advantages(R, 4, "none")
    assert a.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0], abs=1e-7)


def test_group_of_two_hand_values():
    # [3, 1]: mean 2, centred [1, -1], unbiased std = sqrt((1 + 1) / 1) = sqrt(2).
    a = group_advantages(torch.tensor([3.0, 1.0]), 2, "group", eps=0.0)
    assert a.tolist() == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)], rel=1e-6)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_identical_rewards_give_exactly_zero(scale):
    # In float32, 7 x 0.7 has a mean that rounds: r - mean is 5.96e-08, not 0, and the std is ~0,
    # so without the explicit zero-std mask "group" would give (6e-8 / 1e-4) = 6e-4, not 0.
    rewards = torch.tensor([0.7] * 7 + [0.9] * 7, dtype=torch.float32)
    r = rewards[:7]
    assert (r - r.mean()).abs().max() > 0  # the premise of this test
    a = group_advantages(rewards, 7, scale)
    assert torch.equal(a, torch.zeros(14))
    # Under "batch" a zero-std group in a batch with spread is still exactly 0.
    mixed = torch.tensor([0.7] * 7 + [0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 1.0])
    out = group_advantages(mixed, 7, scale)
    assert out[:7].eq(0).all() and out[7:].ne(0).all()


def test_zero_std_mask_and_fraction():
    assert zero_std_mask(R, 4).tolist() == [False, True]
    assert frac_reward_zero_std(R, 4) == 0.5
    # atol: a spread of 1e-7 counts as identical, 1e-3 does not.
    r = torch.tensor([1.0, 1.0 + 1e-7, 0.0, 1e-3])
    assert zero_std_mask(r, 2).tolist() == [True, False]
    assert group_advantages(r, 2)[:2].eq(0).all()


@pytest.mark.parametrize("g", [0, 1])
def test_group_size_below_two_is_an_error(g):
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(torch.tensor([1.0, 2.0]), g)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="not divisible by group_size=4"):
        group_advantages(torch.ones(6), 4)
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(torch.ones(2, 4), 4)
    with pytest.raises(ValueError, match="not finite"):
        group_advantages(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="scale must be one of"):
        group_advantages(R, 4, "std")


def test_combine_rewards_weighted_nansum():
    nan = float("nan")
    r = torch.tensor([[1.0, nan], [0.5, 1.0], [nan, nan], [-1.0, 0.25]])
    # weights [1, 2]: row 0 = 1*1 (NaN skipped) = 1; row 1 = 0.5 + 2 = 2.5;
    # row 2 = all NaN -> 0 (documented NaN-safe choice); row 3 = -1 + 0.5 = -0.5.
    out = combine_rewards(r, [1.0, 2.0])
    assert out.tolist() == [1.0, 2.5, 0.0, -0.5]
    assert torch.equal(combine_rewards(r, torch.tensor([1.0, 2.0])), out)


def test_combine_rewards_errors():
    with pytest.raises(ValueError, match="weights has 3 entries but rewards has 2"):
        combine_rewards(torch.zeros(4, 2), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        combine_rewards(torch.zeros(4), [1.0])
    with pytest.raises(ValueError, match="row 1 has an infinite value"):
        combine_rewards(torch.tensor([[0.0], [float("inf")]]), [1.0])
