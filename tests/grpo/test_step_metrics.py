"""grpo.metrics.StepMetrics: train/* reduced as their names say, by hand, and across two ranks (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo.metrics import StepMetrics
from runtime.world import init_world

ROOT = Path(__file__).resolve().parents[2]

# Three micro-batches' policy_loss metrics (global_token: each loss is already its share of the objective).
# The third is empty: its max / min say nothing, its means weigh 0.
MBS = [
    {"loss": 0.5, "pg_loss": 0.4, "kl_loss": 0.1, "num_tokens": 3.0, "num_seqs": 1.0, "clip_frac": 1 / 3,
     "ratio_max": 1.5, "ratio_min": 0.9, "is_ratio_mean": 1.0, "is_ratio_max": 1.2, "entropy": 2.0},
    {"loss": -0.2, "pg_loss": -0.3, "kl_loss": 0.1, "num_tokens": 1.0, "num_seqs": 1.0, "clip_frac": 1.0,
     "ratio_max": 1.1, "ratio_min": 0.7, "is_ratio_mean": 0.5, "is_ratio_max": 0.5, "entropy": 6.0},
    {"loss": 0.0, "pg_loss": 0.0, "kl_loss": 0.0, "num_tokens": 0.0, "num_seqs": 0.0, "clip_frac": 0.0,
     "ratio_max": 0.0, "ratio_min": 0.0, "is_ratio_mean": 0.0, "is_ratio_max": 0.0, "entropy": 0.0},
]


def reduced(mbs, is_level="token"):
    s = StepMetrics(is_level)
    for m in mbs:
        s.add_loss_metrics(m)
    return s.result(init_world("cpu"))


def test_each_metric_reduces_as_its_name_says():
    r = reduced(MBS)
    assert r["loss"] == pytest.approx(0.3) and r["pg_loss"] == pytest.approx(0.1)  # the objective: a sum
    assert r["kl_loss"] == pytest.approx(0.2) and r["num_tokens"] == 4.0 and r["num_seqs"] == 2.0
    assert r["clip_frac"] == pytest.approx((1 / 3 * 3 + 1.0 * 1) / 4)  # 2 of 4 tokens clipped, not (1/3 + 1) / 2
    assert r["entropy"] == pytest.approx((2.0 * 3 + 6.0) / 4)
    assert (r["ratio_max"], r["ratio_min"]) == (1.5, 0.7)  # true extremes; the empty micro-batch's 0.0 ignored
    assert r["is_ratio_mean"] == pytest.approx(0.875) and r["is_ratio_max"] == 1.2
    # the geometric IS weight is one per completion: its mean is over completions (1 and 1), not tokens
    assert reduced(MBS, "geometric")["is_ratio_mean"] == pytest.approx(0.75)
    # two passes: sums are per pass, means and extremes over both
    s = StepMetrics()
    for m in MBS + MBS:
        s.add_loss_metrics(m)
    assert s.result(init_world("cpu"), passes=2) == pytest.approx(r)
    assert reduced([MBS[2]])["ratio_max"] == 0.0  # no data at all: 0, as policy_loss reports it


def test_loss_scale_makes_the_loss_the_objective():
    """token_mean over 2 micro-batches: the loop backwards loss / 2, so the objective is the mean of the two."""
    s = StepMetrics()
    for m in MBS[:2]:
        s.add_loss_metrics(m, loss_scale=0.5)
    r = s.result(init_world("cpu"))
    assert r["loss"] == pytest.approx(0.15) and r["clip_frac"] == pytest.approx(0.5)


WORKER = """
import json, os, sys
sys.path.insert(0, {root!r})
from grpo.metrics import StepMetrics
from runtime.world import init_world
mbs = json.loads({mbs!r})
world = init_world("cpu")
s = StepMetrics()
for m in mbs[world.rank::2]:  # rank 0: micro-batches 0 and 2 (empty), rank 1: micro-batch 1
    s.add_loss_metrics(m)
if world.rank == 1:
    s.add("only_on_rank_1", "max", 3.0)  # a key one rank lacks still reduces (no hang, no mismatch)
out = s.result(world)
if world.is_main:
    print("RESULT " + json.dumps(out))
world.close()
"""


@pytest.mark.slow
def test_two_ranks_reduce_like_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), mbs=json.dumps(MBS)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert got.pop("only_on_rank_1") == 3.0
    assert got == pytest.approx(reduced(MBS))
