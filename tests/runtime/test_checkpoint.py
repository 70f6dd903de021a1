"""runtime.checkpoint on real checkpoints of a tiny PEFT model: a truncated or corrupted file makes resume
fall back to the previous step with a one-line warning naming the file; nothing valid is a CheckpointError;
a killed writer's temp dir is removed; a resume whose config changes what the weights mean is refused
(every difference listed), other changed keys (the LR) are applied and printed as overrides."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from runtime.checkpoint import CheckpointError, latest_checkpoint, resume_from, save_checkpoint
from runtime.cli import run
from runtime.models import LoraConfig, ModelConfig, add_lora, load_model
from runtime.optim import OptimConfig, build_optimizer

LORA = LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
OPTIM = OptimConfig(lr=1e-3)


def run_config(model_dir: str, lora: LoraConfig = LORA, optim: OptimConfig = OPTIM) -> dict:
    """The slice of a trainer's asdict(cfg) that resume compares."""
    return {"model": asdict(ModelConfig(name=model_dir)), "policy": asdict(lora), "optim": asdict(optim),
            "resume": None}


def make_policy(model_dir: str):
    torch.manual_seed(0)
    model = add_lora(load_model(ModelConfig(name=model_dir)), LORA)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, OPTIM, total_steps=10)
    return model, params, optimizer, scheduler


def train_step(params, optimizer, scheduler) -> None:
    """One AdamW step on a stand-in loss (moves every LoRA tensor and fills the optimizer state)."""
    loss = sum(((p - 0.1) ** 2).sum() for p in params)
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


@pytest.fixture
def run_dir(tiny_model_dir, tmp_path):
    """(checkpoints root with step_000001 and step_000002, the live policy, its optimizer and scheduler,
    the LoRA weights as saved at step 2)."""
    model, params, optimizer, scheduler = make_policy(tiny_model_dir)
    root = tmp_path / "checkpoints"
    for step in (1, 2):
        train_step(params, optimizer, scheduler)
        save_checkpoint(root, model=model, optimizer=optimizer, scheduler=scheduler, step=step,
                        cursor={"step": step}, meta={"base_model": tiny_model_dir},
                        config=run_config(tiny_model_dir), extra={"best": 0.5 * step})
    saved = [p.detach().clone() for p in params]
    return root, model, params, optimizer, scheduler, saved


def _truncate(path: Path) -> int:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return len(data)


@pytest.mark.parametrize("name", ["trainer_state.pt", "adapter/adapter_model.safetensors"])
def test_truncated_file_falls_back_to_previous_step(run_dir, name, capsys):
    root = run_dir[0]
    damaged = root / "step_000002" / name
    full = _truncate(damaged)
    assert latest_checkpoint(root) == root / "step_000001"
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipping damaged checkpoint step_000002: {damaged}: {full // 2} bytes, expected {full} (truncated?)"]


def test_corrupted_file_of_the_right_size_falls_back(run_dir, capsys):
    root = run_dir[0]
    damaged = root / "step_000002" / "trainer_state.pt"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert latest_checkpoint(root) == root / "step_000001"
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipping damaged checkpoint step_000002: {damaged}: content hash differs from contents.json "
        "(corrupted)"]


def test_no_valid_checkpoint_is_one_line_error(run_dir, capsys):
    root = run_dir[0]
    sizes = {step: _truncate(root / f"step_00000{step}" / "trainer_state.pt") for step in (1, 2)}
    why = {step: f"{root / f'step_00000{step}' / 'trainer_state.pt'}: {n // 2} bytes, expected {n} (truncated?)"
           for step, n in sizes.items()}
    with pytest.raises(SystemExit) as e:
        run(lambda: latest_checkpoint(root))
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipping damaged checkpoint step_000002: {why[2]}",
        f"warning: skipping damaged checkpoint step_000001: {why[1]}",
        f"error: resume: no valid checkpoint in '{root}' ({why[2]})",
    ]
    with pytest.raises(CheckpointError, match="^resume: '.*nothing' does not exist$"):
        latest_checkpoint(root / "nothing")


def test_resume_removes_an_orphan_temp_dir_and_restores_the_run(run_dir, tiny_model_dir, capsys):
    root, model, params, optimizer, scheduler, saved = run_dir
    orphan = root / "step_000003.tmp-999999"  # a writer (pid 999999) killed mid-save
    try:
        os.kill(999999, 0)
        pytest.skip("pid 999999 is alive on this machine")
    except ProcessLookupError:
        pass
    except PermissionError:
        pytest.skip("pid 999999 is alive on this machine")
    (orphan / "adapter").mkdir(parents=True)
    (orphan / "trainer_state.pt").write_bytes(b"partial")
    train_step(params, optimizer, scheduler)  # the live run moved on past step 2
    assert not torch.equal(params[0], saved[0])

    state = resume_from(root, model=model, optimizer=optimizer, scheduler=scheduler,
                        config=run_config(tiny_model_dir), lr=OPTIM.lr)
    assert not orphan.exists()
    assert capsys.readouterr().err.splitlines() == [
        f"warning: removed {orphan}: an unfinished checkpoint write (its process is gone)",
        f"resumed from {root / 'step_000002'} at step 2",
    ]
    assert state["step"] == 2 and state["cursor"] == {"step": 2} and state["extra"] == {"best": 1.0}
    assert all(torch.equal(p, s) for p, s in zip(params, saved))  # the step-2 LoRA weights are back
    assert scheduler.last_epoch == 2


def test_resume_with_other_lora_shape_lists_every_difference(run_dir, tiny_model_dir, capsys):
    root, model, _, optimizer, scheduler, _ = run_dir
    changed = run_config(tiny_model_dir, lora=LoraConfig(r=8, alpha=16, target_modules=LORA.target_modules))
    with pytest.raises(SystemExit) as e:
        run(lambda: resume_from(root, model=model, optimizer=optimizer, scheduler=scheduler, config=changed,
                                lr=OPTIM.lr))
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: resume: {root / 'step_000002'} was trained with another setup: "
        "policy.alpha: checkpoint 8, now 16; policy.r: checkpoint 4, now 8"]


def test_resume_with_a_new_lr_applies_it_and_prints_the_override(run_dir, tiny_model_dir, capsys):
    root, model, params, optimizer, scheduler, _ = run_dir
    new = OptimConfig(lr=5e-4)
    resume_from(root, model=model, optimizer=optimizer, scheduler=scheduler,
                config=run_config(tiny_model_dir, optim=new), lr=new.lr)
    err = capsys.readouterr().err.splitlines()
    assert err == ["resume: override optim.lr: 0.001 -> 0.0005", f"resumed from {root / 'step_000002'} at step 2"]
    # Constant schedule, no warmup: the group LR is the new base LR, now and after the next step.
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4] and scheduler.base_lrs == [5e-4]
    train_step(params, optimizer, scheduler)
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4]
