"""Atomic checkpoints: PEFT adapter + optimizer + scheduler + RNG states + step + data cursor.

A checkpoint is written into `<dir>.tmp-<pid>` and renamed to `<dir>` only when complete, so a
crash mid-write never leaves a half-written checkpoint that `resume=` could pick up.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from data.manifest import write_manifest

TRAINER_STATE = "trainer_state.pt"
META = "safety_grpo.json"


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_adapter(model, out_dir: str | Path, *, base_model: str, train_texts=None, parent_adapter=None,
                 extra_meta: dict | None = None, adapter_name: str = "default") -> Path:
    """Save the trainable adapter in PEFT format (what `vllm serve --lora-modules` loads), atomically.

    Writes adapter_config.json + adapter_model.safetensors, our metadata (base model alias) and the
    training manifest (hashes of the normalized prompt texts; inherited from `parent_adapter`).
    """
    out = Path(out_dir)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_adapter_files(model, tmp, base_model, train_texts, parent_adapter, extra_meta, adapter_name)
    _replace_dir(tmp, out)
    return out


def _write_adapter_files(model, d: Path, base_model, train_texts, parent_adapter, extra_meta, adapter_name):
    model.save_pretrained(str(d), selected_adapters=[adapter_name], safe_serialization=True)
    if adapter_name != "default":  # PEFT puts non-default adapters in a subdir
        sub = d / adapter_name
        for f in sub.iterdir():
            os.replace(f, d / f.name)
        sub.rmdir()
    (d / META).write_text(json.dumps({"base_model": base_model, **(extra_meta or {})}, indent=2))
    write_manifest(d, train_texts or [], parent=parent_adapter)


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(final.name + f".old-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def save_checkpoint(ckpt_dir: str | Path, *, model, optimizer, scheduler, step: int, cursor: dict,
                    base_model: str, train_texts=None, parent_adapter=None, extra: dict | None = None,
                    keep_last: int = 2) -> Path:
    """Write ckpt_dir/step_<N>/ (adapter/ + trainer_state.pt) atomically, then prune old ones."""
    root = Path(ckpt_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".step_{step:06d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "adapter").mkdir(parents=True)
    _write_adapter_files(model, tmp / "adapter", base_model, train_texts, parent_adapter, None, "default")
    torch.save({
        "step": step,
        "cursor": cursor,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "extra": extra or {},
    }, tmp / TRAINER_STATE)
    _replace_dir(tmp, final)
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(path: str | Path) -> Path:
    """`path` is a checkpoint (has trainer_state.pt) or a dir of step_* checkpoints -> the newest."""
    p = Path(path)
    if (p / TRAINER_STATE).is_file():
        return p
    steps = sorted(q for q in p.glob("step_*") if (q / TRAINER_STATE).is_file())
    if not steps:
        raise FileNotFoundError(f"no checkpoint in '{p}' (expected step_*/{TRAINER_STATE})")
    return steps[-1]


def load_trainer_state(ckpt: str | Path) -> dict:
    return torch.load(Path(ckpt) / TRAINER_STATE, weights_only=False)


def load_adapter_weights(model, adapter_dir: str | Path, adapter_name: str = "default") -> None:
    """Load saved LoRA weights into the live PEFT model's adapter (in place)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    sd = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    res = set_peft_model_state_dict(model, sd, adapter_name=adapter_name)
    unexpected = getattr(res, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"adapter '{adapter_dir}' has keys the model lacks: {unexpected[:3]}")
