"""Peak memory of one merged weight sync: the merged tensors built as a list first, or streamed one at a time
(rollout.sync.merged_lora_weights is a generator). Each mode runs in a fresh process (freed memory is not always
handed back to the OS, so two modes in one process would measure each other); the engine is stood in for by
preallocated destination tensors that every merged tensor is copied into (what vLLM's in-place reload does), so
the figure is the sync's own extra memory: peak RSS during the sync minus RSS before it, sampled every 1 ms.
A benchmark: figures are printed, never asserted.

    .venv/bin/python bench/sync_memory.py                      # SmolLM2-135M, float32, r 16 on every linear
    .venv/bin/python bench/sync_memory.py --dtype bfloat16

Last line: `sync_peak_mib list=<...> stream=<...> merged_tensors_mib=<...>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Peak RSS over a block, sampled every `interval` seconds on a thread."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self.start = rss_bytes()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def one_mode(mode: str, model: str, dtype_name: str, r: int) -> dict:
    import torch

    from rollout.sync import merged_lora_weights
    from runtime.models import DTYPES, LoraConfig, ModelConfig, add_lora, load_model

    torch.manual_seed(0)
    dtype = DTYPES[dtype_name]
    policy = add_lora(load_model(ModelConfig(name=model, dtype=dtype_name)), LoraConfig(r=r, alpha=2 * r))
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.01)
    # the engine's weights: allocated (and touched) before the measurement, as a running engine's are
    dest = {name: torch.zeros_like(w) for name, w in merged_lora_weights(policy, dtype)}
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        weights = merged_lora_weights(policy, dtype)
        if mode == "list":
            weights = list(weights)
        for name, w in weights:
            dest[name].copy_(w)
        del weights
    return {"mode": mode, "peak_mib": (peak.peak - peak.start) / 2**20, "seconds": time.perf_counter() - t0,
            "tensors": len(dest), "merged_mib": sum(t.numel() * t.element_size() for t in dest.values()) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--r", type=int, default=16, help="LoRA rank (every linear but the LM head)")
    ap.add_argument("--mode", choices=["list", "stream"], help="(internal) measure one mode in this process")
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(one_mode(args.mode, args.model, args.dtype, args.r)))
        return
    out = {}
    for mode in ("list", "stream"):
        cmd = [sys.executable, __file__, "--mode", mode, "--model", args.model, "--dtype", args.dtype, "--r", str(args.r)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
        m = out[mode]
        print(f"{mode:>6}: peak +{m['peak_mib']:.0f} MiB over the sync, {m['seconds']:.2f} s, "
              f"{m['tensors']} tensors ({m['merged_mib']:.0f} MiB merged in {args.dtype})", flush=True)
    print(f"sync_peak_mib list={out['list']['peak_mib']:.0f} stream={out['stream']['peak_mib']:.0f} "
          f"merged_tensors_mib={out['list']['merged_mib']:.0f}")


if __name__ == "__main__":
    main()
