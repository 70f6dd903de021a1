"""Metric logging: a JSONL file always, wandb when enabled (offline by default).

Keys are the logged names grouped by prefix: train/, rollout/, reward/, eval/, perf/.
Only the main rank writes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runtime.io import read_jsonl, write_jsonl


@dataclass
class LogConfig:
    wandb: bool = False
    """Also log to Weights & Biases."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """offline (default, no network), online or disabled."""
    wandb_project: str = "safety-grpo"
    """W&B project name."""
    run_name: str | None = None
    """Run name (defaults to the output dir name)."""


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN; null says "not measured this step"
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


class MetricsLogger:
    def __init__(self, out_dir: str | Path, cfg: LogConfig, config_dict: dict, enabled: bool = True,
                 resume: bool = False):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a", buffering=1)  # noqa: SIM115 (held open for the run)
        if cfg.wandb and cfg.wandb_mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self._wandb = wandb.init(
                project=cfg.wandb_project, name=cfg.run_name or Path(out_dir).name, mode=cfg.wandb_mode,
                dir=str(out_dir), config=config_dict, resume="allow" if resume else None,
            )

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint's step (they will be logged again)."""
        if not self.enabled or not self.path.exists():
            return
        self._fh.close()
        write_jsonl(self.path, [r for r in read_metrics(self.path) if r.get("step", 0) <= step])
        self._fh = open(self.path, "a", buffering=1)  # noqa: SIM115 (held open for the run)

    def log(self, metrics: dict, step: int) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        self._fh.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if v is not None and k != "step"}, step=step)

    def close(self) -> None:
        if not self.enabled:
            return
        self._fh.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(path: str | Path) -> list[dict]:
    return read_jsonl(path)
