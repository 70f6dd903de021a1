"""Adapters and resumable checkpoints: atomic writes, a content manifest, verified resume.

An adapter dir is PEFT's (adapter_config.json + adapter_model.safetensors, what `vllm serve
--lora-modules` loads) plus `safety_grpo.json` (base model and the settings the adapter must be used
with: system prompt, prompt budget, truncation side, chat-template hash, the trainer's config) and
the training manifest (hashes of the prompts it was trained on).

A checkpoint is `step_<N>/` = adapter/ + trainer_state.pt (optimizer, scheduler, RNG, step, data
cursor, the run's config) + contents.json, the size and sha256 of every file, written last. It is
built in `step_<N>.tmp-<pid>` and renamed only when complete. Resume verifies contents.json, skips a
damaged checkpoint with a one-line warning naming the file, falls back to the newest valid one,
removes the temp dirs a killed writer left behind, and compares the run's config with the saved one:
keys that change what the weights mean must match; the others are applied and logged as overrides.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from runtime.errors import UserError
from runtime.io import atomic_dir, orphan_tmp_dirs, read_json, write_json
from runtime.manifest import write_manifest

TRAINER_STATE = "trainer_state.pt"
META = "safety_grpo.json"
CONTENTS = "contents.json"
STEP_DIR = re.compile(r"^step_(\d+)$")
# Config keys that change what the saved weights mean: a resumed run must use the same values.
WEIGHT_KEYS = ("model.name", "model.quantization", "model.dtype", "policy.r", "policy.alpha",
               "policy.target_modules", "policy.init_adapter")


class CheckpointError(UserError):
    """No usable checkpoint, or a resume whose config contradicts the checkpoint (message says which)."""


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


# ----------------------------------------------------------------------------- content manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_contents(d: Path) -> None:
    """d/contents.json: {relative path: {size, sha256}} of every file under d (written last)."""
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.name != CONTENTS)
    write_json(d / CONTENTS, {p.relative_to(d).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
                              for p in files})


def verify_contents(d: Path) -> str | None:
    """None when every file listed in d/contents.json is there with its size and hash; else why not."""
    if not (d / CONTENTS).is_file():
        return f"{d / CONTENTS}: missing (an incomplete or pre-manifest checkpoint)"
    try:
        listed = read_json(d / CONTENTS)
    except UserError as e:
        return str(e)
    for rel, want in listed.items():
        p = d / rel
        if not p.is_file():
            return f"{p}: missing"
        if p.stat().st_size != want["size"]:
            return f"{p}: {p.stat().st_size} bytes, expected {want['size']} (truncated?)"
        if _sha256(p) != want["sha256"]:
            return f"{p}: content hash differs from {CONTENTS} (corrupted)"
    return None


# ----------------------------------------------------------------------------- saving


def save_adapter(model, out_dir: str | Path, *, meta: dict, train_texts=None, parent_adapter=None,
                 adapter_name: str = "default") -> Path:
    """Save the trainable adapter in PEFT format, atomically, with `meta` (must hold base_model) in
    safety_grpo.json and the training manifest (inherited from `parent_adapter`)."""
    with atomic_dir(out_dir) as tmp:
        _write_adapter_files(model, tmp, meta, train_texts, parent_adapter, adapter_name)
        write_contents(tmp)
    return Path(out_dir)


def _write_adapter_files(model, d: Path, meta: dict, train_texts, parent_adapter, adapter_name):
    if "base_model" not in meta:
        raise ValueError("adapter metadata needs base_model")
    model.save_pretrained(str(d), selected_adapters=[adapter_name], safe_serialization=True)
    if adapter_name != "default":  # PEFT puts non-default adapters in a subdir
        sub = d / adapter_name
        for f in sub.iterdir():
            os.replace(f, d / f.name)
        sub.rmdir()
    write_json(d / META, meta)
    write_manifest(d, train_texts or [], parent=parent_adapter)


def save_checkpoint(ckpt_dir: str | Path, *, model, optimizer, scheduler, step: int, cursor: dict, meta: dict,
                    config: dict, train_texts=None, parent_adapter=None, extra: dict | None = None,
                    keep_last: int = 2) -> Path:
    """Write ckpt_dir/step_<N>/ (adapter/ + trainer_state.pt + contents.json) atomically, then prune."""
    root = Path(ckpt_dir)
    final = root / f"step_{step:06d}"
    with atomic_dir(final) as tmp:
        (tmp / "adapter").mkdir()
        _write_adapter_files(model, tmp / "adapter", meta, train_texts, parent_adapter, "default")
        torch.save({
            "step": step,
            "cursor": cursor,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "config": config,
            "extra": extra or {},
        }, tmp / TRAINER_STATE)
        write_contents(tmp)
    done = step_dirs(root)
    for old in done[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- resuming


def step_dirs(root: Path) -> list[Path]:
    """Finished step_<N> dirs under root, oldest first (temp dirs are not checkpoints)."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name)),
                  key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def clean_orphans(root: Path) -> list[Path]:
    """Remove the temp dirs a killed checkpoint write left under `root` (one warning line each)."""
    removed = []
    for d in orphan_tmp_dirs(root):
        shutil.rmtree(d, ignore_errors=True)
        _warn(f"removed {d}: an unfinished checkpoint write (its process is gone)")
        removed.append(d)
    return removed


def latest_checkpoint(path: str | Path) -> Path:
    """`path` is a checkpoint (has trainer_state.pt) or a dir of step_* checkpoints -> the newest
    checkpoint whose contents verify. Damaged ones are skipped with a warning naming the file."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"resume: '{p}' does not exist")
    if (p / TRAINER_STATE).is_file() or (p / CONTENTS).is_file():
        candidates = [p]
    else:
        clean_orphans(p)
        candidates = step_dirs(p)[::-1]
        if not candidates:
            raise CheckpointError(f"resume: no checkpoint in '{p}' (expected step_*/{TRAINER_STATE})")
    problems = []
    for c in candidates:
        why = verify_contents(c)
        if why is None:
            return c
        problems.append(why)
        if len(candidates) > 1:
            _warn(f"skipping damaged checkpoint {c.name}: {why}")
    raise CheckpointError(f"resume: no valid checkpoint in '{p}' ({problems[0]})")


def load_trainer_state(ckpt: str | Path) -> dict:
    path = Path(ckpt) / TRAINER_STATE
    try:
        return torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001 (verified above; anything torch raises here means a bad file)
        raise CheckpointError(f"{path}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def load_adapter_weights(model, adapter_dir: str | Path, adapter_name: str = "default") -> None:
    """Load saved LoRA weights into the live PEFT model's adapter (in place), shapes checked first."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from runtime.models import check_adapter_weights

    path = check_adapter_weights(adapter_dir)
    sd = load_file(str(path))
    live = {k: v.shape for k, v in model.state_dict().items()}
    for k, v in sd.items():
        want = live.get(k.replace(".weight", f".{adapter_name}.weight"))
        if want is not None and tuple(want) != tuple(v.shape):
            raise CheckpointError(f"{path}: tensor {k} has shape {tuple(v.shape)}, the model expects {tuple(want)}")
    res = set_peft_model_state_dict(model, sd, adapter_name=adapter_name)
    unexpected = getattr(res, "unexpected_keys", [])
    if unexpected:
        raise CheckpointError(f"{path}: keys the model lacks: {unexpected[:3]}")


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(saved: dict, current: dict) -> tuple[list[str], list[str]]:
    """(mismatches of WEIGHT_KEYS, other changed keys) between a checkpoint's config and this run's."""
    a, b = flatten(saved), flatten(current)
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k != "resume")
    bad = [f"{k}: checkpoint {a.get(k)!r}, now {b.get(k)!r}" for k in changed if k in WEIGHT_KEYS]
    other = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed if k not in WEIGHT_KEYS]
    return bad, other


def resume_from(path: str | Path, *, model, optimizer, scheduler, config: dict, lr: float) -> dict:
    """Restore a run from the newest valid checkpoint under `path`: adapter weights, optimizer,
    scheduler (with `lr` as the base LR from here on) and RNG. Returns the trainer state (step, cursor,
    extra). A config that changes what the weights mean is an error listing every difference."""
    ckpt = latest_checkpoint(path)
    state = load_trainer_state(ckpt)
    saved = state.get("config")
    if saved is not None:
        bad, other = config_changes(saved, config)
        if bad:
            raise CheckpointError(f"resume: {ckpt} was trained with another setup: " + "; ".join(bad))
        for line in other:
            print(f"resume: override {line}", file=sys.stderr, flush=True)
    load_adapter_weights(model, ckpt / "adapter")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    from runtime.optim import set_base_lr

    set_base_lr(optimizer, scheduler, lr)
    set_rng_state(state["rng"])
    print(f"resumed from {ckpt} at step {state['step']}", file=sys.stderr, flush=True)
    return state
