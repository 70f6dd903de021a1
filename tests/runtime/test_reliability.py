"""Reliability probes: a bad value or a damaged file is one line `error: ...` naming the key or file,
exit 2, no traceback, and it stops the run before any model loads.

Config probes run each trainer's real `main` under runtime.cli.run in this process (a subprocess per
value would cost a torch import each), with init_world replaced by a tripwire: it is the first thing
main does after parsing, so reaching it means the bad value got past the config. One probe per trainer
runs the real command line in a subprocess. Adapter probes use a real adapter saved from the tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import run
from runtime.errors import DataError
from runtime.models import AdapterError, adapter_base_model, check_adapter_weights

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _exit_of(main, argv: list[str], capsys) -> tuple[int, list[str]]:
    """(exit code, stderr lines) of `main(argv)` run as the command-line entry point runs it."""
    with pytest.raises(SystemExit) as e:
        run(lambda: main(argv))
    return e.value.code, capsys.readouterr().err.splitlines()


def _tripwire(*_a, **_k):
    raise AssertionError("the config was accepted: main went on to set up devices and load the model")


# One bad value per range kind (PosInt, NonNegInt, PosFloat, NonNegFloat, UnitFloat, OpenUnitFloat,
# group_size's >= 2, dual_clip's > 1, sampling's [0, 2] and (0, 1]); floats are printed as parsed (-1 -> -1.0).
GRPO_PROBES = [
    ("optim.lr=-1", "optim.lr", "> 0", "-1.0"),
    ("policy.r=0", "policy.r", ">= 1", "0"),
    ("policy.alpha=0", "policy.alpha", ">= 1", "0"),
    ("prompts_per_step=0", "prompts_per_step", ">= 1", "0"),
    ("micro_batch_size=0", "micro_batch_size", ">= 1", "0"),
    ("steps=0", "steps", ">= 1", "0"),
    ("save_every=-1", "save_every", ">= 0", "-1"),
    ("data.malicious_fraction=1.5", "data.malicious_fraction", "in [0, 1]", "1.5"),
    ("group_size=1", "group_size", ">= 2", "1"),
    ("kl.beta=-0.1", "kl.beta", ">= 0", "-0.1"),
    ("loss.is_cap=0", "loss.is_cap", "> 0", "0.0"),
    ("loss.dual_clip=1", "loss.dual_clip", "> 1", "1.0"),  # X | None: X's own message
    ("optim.warmup_ratio=2", "optim.warmup_ratio", "in [0, 1]", "2.0"),
    ("rollout.gpu_memory_utilization=1", "rollout.gpu_memory_utilization", "in (0, 1)", "1.0"),
    ("sampling.temperature=3", "sampling.temperature", "in [0, 2]", "3.0"),
    ("sampling.top_p=0", "sampling.top_p", "in (0, 1]", "0.0"),
    ("sampling.max_tokens=0", "sampling.max_tokens", ">= 1", "0"),
]


@pytest.mark.parametrize(("override", "key", "allowed", "got"), GRPO_PROBES, ids=[p[0] for p in GRPO_PROBES])
def test_grpo_bad_number_is_one_line_before_any_model_loads(override, key, allowed, got, capsys, monkeypatch):
    import grpo.train

    monkeypatch.setattr(grpo.train, "init_world", _tripwire)
    code, err = _exit_of(grpo.train.main, ["--config", "configs/smoke_grpo_cpu.yaml", override], capsys)
    assert code == 2
    assert err == [f"error: config key '{key}': must be {allowed}, got {got}"]


SFT_PROBES = [
    ("optim.lr=0", "optim.lr", "> 0", "0.0"),
    ("batch_size=0", "batch_size", ">= 1", "0"),
    ("max_steps=-1", "max_steps", ">= 0", "-1"),
    ("policy.dropout=1.5", "policy.dropout", "in [0, 1]", "1.5"),
    ("data.max_completion_tokens=0", "data.max_completion_tokens", ">= 1", "0"),
]


@pytest.mark.parametrize(("override", "key", "allowed", "got"), SFT_PROBES, ids=[p[0] for p in SFT_PROBES])
def test_sft_bad_number_is_one_line_before_any_model_loads(override, key, allowed, got, capsys, monkeypatch):
    import sft.train

    monkeypatch.setattr(sft.train, "init_world", _tripwire)
    code, err = _exit_of(sft.train.main, ["--config", "configs/sft_refusal_cpu.yaml", override], capsys)
    assert code == 2
    assert err == [f"error: config key '{key}': must be {allowed}, got {got}"]


@pytest.mark.parametrize(("script", "override", "line"), [
    ("grpo/train.py", "optim.lr=-1", "error: config key 'optim.lr': must be > 0, got -1.0"),
    ("sft/train.py", "policy.r=0", "error: config key 'policy.r': must be >= 1, got 0"),
])
def test_trainer_command_line_exits_2_with_one_line(script, override, line):
    p = _cli(script, override)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [line] and p.stdout == ""


def test_code_built_sampling_and_rollout_configs_are_range_checked():
    """Configs built in code (evals, grpo.metrics) get the same check and message as a read one."""
    from rollout.base import RolloutConfig, SamplingConfig
    from runtime.config import ConfigError

    with pytest.raises(ConfigError) as e:
        SamplingConfig(top_p=1.5).validate()
    assert str(e.value) == "config key 'sampling.top_p': must be in (0, 1], got 1.5"
    with pytest.raises(ConfigError) as e:
        RolloutConfig(timeout_s=0).validate()
    assert str(e.value) == "config key 'rollout.timeout_s': must be > 0, got 0"
    SamplingConfig(temperature=0.0, seed=None).validate()  # greedy, no seed: fine


# --- adapter dirs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A real PEFT adapter (r=4 on q_proj, v_proj) of the tiny model, saved by runtime.checkpoint."""
    import torch

    from runtime.checkpoint import save_adapter
    from runtime.models import LoraConfig, ModelConfig, add_lora, load_model

    torch.manual_seed(0)
    model = add_lora(load_model(ModelConfig(name=tiny_model_dir)),
                     LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    return save_adapter(model, tmp_path_factory.mktemp("adapters") / "good", meta={"base_model": tiny_model_dir})


@pytest.fixture
def adapter(saved_adapter, tmp_path) -> Path:
    """A fresh copy of the saved adapter for one test to damage."""
    import shutil

    return Path(shutil.copytree(saved_adapter, tmp_path / "adapter"))


@pytest.fixture
def eval_rows(tmp_path) -> Path:
    f = tmp_path / "rows.jsonl"
    f.write_text('{"text": "How do I pick a lock?", "label": "malicious"}\n'
                 '{"text": "What is a good cat name?", "label": "benign"}\n')
    return f


def _eval_cli(adapter: Path, rows: Path, out: Path) -> subprocess.CompletedProcess:
    return _cli("-m", "evals.run", "--model", str(adapter), "--data", str(rows), "--out", str(out),
                "--backend", "hf", "--detector", "markers")


def _error_lines(p: subprocess.CompletedProcess) -> list[str]:
    """The stderr lines of a failed run; exactly one error line, the last one, and no traceback."""
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert [x for x in lines if x.startswith("error:")] == lines[-1:]
    return lines


def test_garbled_metadata_names_the_file(adapter, eval_rows, tmp_path):
    meta = adapter / "safety_grpo.json"
    meta.write_text('{base_model: "smollm2-135m"}')
    with pytest.raises(DataError) as e:
        adapter_base_model(adapter)
    assert str(e.value) == f"{meta}: line 1: invalid JSON: Expecting property name enclosed in double quotes"
    p = _eval_cli(adapter, eval_rows, tmp_path / "out")
    assert _error_lines(p) == [f"error: {e.value}"]  # read first: the eval's prompt settings come from it
    assert not (tmp_path / "out").exists()


def test_garbled_adapter_config_names_the_file(adapter):
    cfg = adapter / "adapter_config.json"
    cfg.write_text(cfg.read_text()[:40])
    with pytest.raises(DataError, match=f"^{cfg}: line \\d+: invalid JSON: "):
        check_adapter_weights(adapter)


def test_metadata_without_base_model_names_the_file(adapter):
    meta = adapter / "safety_grpo.json"
    meta.write_text('{"trainer": "grpo"}')
    with pytest.raises(AdapterError) as e:
        adapter_base_model(adapter)
    assert str(e.value) == f"{meta}: no 'base_model' string"
    # Without our metadata, PEFT's own field is the fallback, and its absence is named the same way.
    meta.unlink()
    cfg = adapter / "adapter_config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "base_model_name_or_path": None}))
    with pytest.raises(AdapterError) as e:
        adapter_base_model(adapter)
    assert str(e.value) == f"{cfg}: no 'base_model_name_or_path'"


def test_adapter_rank_mismatch_is_one_line_naming_the_tensor(adapter, eval_rows, tmp_path):
    from safetensors import safe_open

    cfg = adapter / "adapter_config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "r": 8}))  # the weights have rank 4
    weights = adapter / "adapter_model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        first = next(k for k in f.keys() if ".lora_A." in k or ".lora_B." in k)  # noqa: SIM118
    line = f"{weights}: tensor {first} has rank 4, but adapter_config.json says r=8"
    with pytest.raises(AdapterError) as e:
        check_adapter_weights(adapter)
    assert str(e.value) == line
    p = _eval_cli(adapter, eval_rows, tmp_path / "out")
    assert _error_lines(p)[-1] == f"error: {line}"
