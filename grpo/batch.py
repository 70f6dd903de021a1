"""What one GRPO step trains on: the prompts it samples, their token ids, and the padded tensors.

The prompt order is a pure function of (seed, step, rank), so the data cursor is the step number
and a resumed run sees exactly the prompts an uninterrupted one would.
"""

from __future__ import annotations

import random

import torch

from data.chat import PromptSettings, format_prompt
from runtime.world import World


class PromptSampler:
    """Each step: B prompts per rank with a fixed malicious/benign mix, without replacement per epoch."""

    def __init__(self, rows: list[dict], batch_size: int, malicious_fraction: float, seed: int, world: World):
        self.by_label = {lab: [r for r in rows if r["label"] == lab] for lab in ("malicious", "benign")}
        n_mal = round(batch_size * malicious_fraction)
        self.take = {"malicious": n_mal, "benign": batch_size - n_mal}
        for lab, k in self.take.items():
            if k and not self.by_label[lab]:
                raise ValueError(f"the training data has no {lab} rows but the batch mix needs {k} per step")
        self.seed, self.world = seed, world

    def _slice(self, label: str, step: int) -> list[dict]:
        pool, k = self.by_label[label], self.take[label]
        if k == 0:
            return []
        out = []
        start = (step * self.world.world_size + self.world.rank) * k  # global position of this rank's slice
        for pos in range(start, start + k):
            epoch, idx = divmod(pos, len(pool))
            order = list(range(len(pool)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(pool[order[idx]])
        return out

    def sample(self, step: int) -> list[dict]:
        return self._slice("malicious", step) + self._slice("benign", step)


def encode_prompts(rows: list[dict], tok, settings: PromptSettings) -> tuple[list[list[int]], list[bool]]:
    """Chat-formatted, truncated prompt ids of each row, and whether it was cut."""
    out = [
        format_prompt(tok, r["text"], system_prompt=settings.system_prompt,
                      max_prompt_tokens=settings.max_prompt_tokens, truncation_side=settings.truncation_side)
        for r in rows
    ]
    return [p.input_ids for p in out], [p.truncated for p in out]


def eval_subset(rows: list[dict], n: int) -> list[dict]:
    """The first n/2 malicious and the rest benign held-out rows (fixed across evals)."""
    mal = [r for r in rows if r["label"] == "malicious"][: n // 2]
    ben = [r for r in rows if r["label"] == "benign"][: n - len(mal)]
    return mal + ben


def pack(prompts: list[list[int]], completions: list[list[int]], pad_id: int):
    """[left-padded prompt | right-padded completion]: every completion starts at column P."""
    P = max(len(p) for p in prompts)
    T = max(1, max(len(c) for c in completions))
    N = len(prompts)
    ids = torch.full((N, P + T), pad_id, dtype=torch.long)  # (N, P+T)
    attn = torch.zeros((N, P + T), dtype=torch.long)  # (N, P+T)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ids[i, P - len(p): P] = torch.tensor(p)
        ids[i, P: P + len(c)] = torch.tensor(c, dtype=torch.long)
        attn[i, P - len(p): P + len(c)] = 1
    return ids, attn, P


def pad_rows(rows: list[list[float]], T: int) -> torch.Tensor:
    out = torch.zeros((len(rows), T), dtype=torch.float32)  # (N, T)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r[:T], dtype=torch.float32)
    return out
