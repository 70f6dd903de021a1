"""The one stage runner of the recipes: each stage is its own process, the command a user would type.

A process per stage returns each one's memory (the colocated vLLM engine included) before the next
starts, and a failed stage stops the recipe with one line naming it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TORCHRUN = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]


def fail(msg: str):
    """Stop the recipe with a one-line error."""
    raise SystemExit(f"error: {msg}")


def stage(name: str, cmd: list[str], timings: dict, env: dict | None = None) -> None:
    """Run `cmd` from the repository root; record its wall time under `name`; stop if it fails."""
    print(f"\n=== {name}: {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    timings[name] = round(time.perf_counter() - t0, 1)
    if r.returncode != 0:
        fail(f"stage '{name}' failed with exit code {r.returncode}")
    print(f"=== {name} done in {timings[name]:.0f} s", flush=True)
