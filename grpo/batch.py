"""What one GRPO step trains on: the prompts it samples, their token ids, and the padded tensors.

The prompt order is a pure function of (seed, step, rank) (and the round, for dynamic sampling's
extra rounds), so the data cursor is the step number and a resumed run sees exactly the prompts an
uninterrupted one would.
"""

from __future__ import annotations

import random

import torch

from data.builtin.compliance import opening_ids
from data.chat import PromptSettings, format_prompt
from rollout.base import RolloutBatch
from runtime.world import World


class PromptSampler:
    """Each step: B prompts per rank with a fixed malicious/benign mix, without replacement per epoch.

    Round 0 is the step's batch. Rounds 1 .. extra_rounds (dynamic sampling) read a second stream,
    its own shuffles of the same pool, at positions set by (step, round, rank): the main stream does
    not move when a step uses extra rounds, and a resumed run draws the same extra prompts.
    """

    def __init__(self, rows: list[dict], batch_size: int, malicious_fraction: float, seed: int, world: World,
                 extra_rounds: int = 0):
        self.by_label = {lab: [r for r in rows if r["label"] == lab] for lab in ("malicious", "benign")}
        n_mal = round(batch_size * malicious_fraction)
        self.take = {"malicious": n_mal, "benign": batch_size - n_mal}
        for lab, k in self.take.items():
            if k and not self.by_label[lab]:
                raise ValueError(f"the training data has no {lab} rows but the batch mix needs {k} per step")
        self.seed, self.world, self.extra_rounds = seed, world, extra_rounds

    def _slice(self, label: str, step: int, rnd: int) -> list[dict]:
        pool, k = self.by_label[label], self.take[label]
        if k == 0:
            return []
        out = []
        W, rank = self.world.world_size, self.world.rank
        if rnd == 0:
            start = (step * W + rank) * k  # global position of this rank's slice
        else:
            start = ((step * self.extra_rounds + rnd - 1) * W + rank) * k
        for pos in range(start, start + k):
            epoch, idx = divmod(pos, len(pool))
            order = list(range(len(pool)))
            rng = random.Random(self.seed * 1_000_003 + epoch if rnd == 0 else f"extra-{self.seed}-{epoch}")
            rng.shuffle(order)
            out.append(pool[order[idx]])
        return out

    def sample(self, step: int, rnd: int = 0) -> list[dict]:
        if not 0 <= rnd <= self.extra_rounds:
            raise ValueError(f"round must be in [0, {self.extra_rounds}], got {rnd}")
        return self._slice("malicious", step, rnd) + self._slice("benign", step, rnd)


def encode_prompts(rows: list[dict], tok, settings: PromptSettings,
                   prefixes: list[list[int]] | None = None) -> tuple[list[list[int]], list[bool]]:
    """Chat-formatted, truncated prompt ids of each row (with its assistant prefix, if any), and whether it was cut."""
    prefixes = prefixes or [[] for _ in rows]
    out = [
        format_prompt(tok, r["text"], system_prompt=settings.system_prompt,
                      max_prompt_tokens=settings.max_prompt_tokens, truncation_side=settings.truncation_side,
                      assistant_prefix=pre)
        for r, pre in zip(rows, prefixes)
    ]
    return [p.input_ids for p in out], [p.truncated for p in out]


def prefill_prefixes(rows: list[dict], tok, fraction: float, max_tokens: int, key: str) -> list[list[int]]:
    """Harmful prefixes for course-correction rollouts: each malicious row, with probability `fraction`, gets the
    first k tokens (k uniform in 1..max_tokens) of its compliant opening; others get []. A pure function of
    (key, position, text): `key` names the seed, step, rank and round, so a resumed run draws the same ones."""
    out = []
    for i, r in enumerate(rows):
        rng = random.Random(f"{key}/{i}/{r['text']}")
        take = r["label"] == "malicious" and fraction > 0 and rng.random() < fraction
        out.append(opening_ids(tok, r["text"], rng.randint(1, max_tokens)) if take else [])
    return out


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


def plan_micro_batches(prompt_lens: list[int], completion_lens: list[int], size: int, order: str = "rollout",
                       token_budget: int = 0) -> list[list[int]]:
    """Row indices of each micro-batch.

    order "rollout" keeps the sampling order. "length" sorts rows so that similar lengths share a
    micro-batch: `pack` pads every row to the micro-batch's longest prompt plus its longest completion,
    so the grid is n * (P + T). Sorting by total length (prompt + completion) is the usual key, but with
    this layout a group's G rows (one prompt length) can be split apart by it; so "length" takes, of
    the rollout order and the orders by total, by (prompt, completion) and by (completion, prompt)
    length, the one whose micro-batches have the smallest grid (never more than rollout order's).
    token_budget > 0: instead of `size` rows, as many rows as keep n * (P + T) within the budget
    (at least one).
    """
    if order not in ("rollout", "length"):
        raise ValueError(f"micro-batch order must be rollout or length, got {order!r}")
    P, C = prompt_lens, completion_lens
    rollout = list(range(len(C)))
    if order == "rollout":
        return _chunk(rollout, P, C, size, token_budget)
    keys = (lambda i: P[i] + C[i], lambda i: (P[i], C[i]), lambda i: (C[i], P[i]))
    plans = [_chunk(idx, P, C, size, token_budget) for idx in [rollout, *(sorted(rollout, key=k) for k in keys)]]
    return min(plans, key=lambda mbs: sum(_grid(mb, P, C) for mb in mbs))  # the first of equal grids


def _grid(mb: list[int], P: list[int], C: list[int]) -> int:
    """Cells of pack()'s (n, P + T) tensor for these rows."""
    return len(mb) * (max(P[i] for i in mb) + max(1, max(C[i] for i in mb)))


def _chunk(idx: list[int], P: list[int], C: list[int], size: int, token_budget: int) -> list[list[int]]:
    if token_budget <= 0:
        return [idx[i: i + size] for i in range(0, len(idx), size)]
    mbs: list[list[int]] = []
    for i in idx:
        if mbs and _grid(mbs[-1] + [i], P, C) <= token_budget:
            mbs[-1].append(i)
        else:
            mbs.append([i])
    return mbs


def select_groups(parts: list[tuple[list[dict], list[list[int]], list[bool], RolloutBatch, torch.Tensor]],
                  keep: list[tuple[int, int]], group_size: int):
    """Concatenate groups (part, prompt) of several rollout rounds into one step batch.

    parts: per round (rows, prompt ids, prompt cut, rollout, rewards (B*G,)). Returns the same five
    for the kept groups, in `keep` order, with prompt_index renumbered 0..len(keep)-1.
    """
    rows, prompts, cut, rewards = [], [], [], []
    fields: dict[str, list] = {"completion_ids": [], "logprobs": [], "finish_reason": [], "truncated": []}
    index: list[int] = []
    for new, (p, g) in enumerate(keep):
        p_rows, p_prompts, p_cut, roll, rew = parts[p]
        rows.append(p_rows[g])
        prompts.append(p_prompts[g])
        cut.append(p_cut[g])
        members = [i for i, pi in enumerate(roll.prompt_index) if pi == g]
        if len(members) != group_size:
            raise ValueError(f"round {p} prompt {g} has {len(members)} completions, expected {group_size}")
        for name, out in fields.items():
            out.extend(getattr(roll, name)[i] for i in members)
        index.extend([new] * group_size)
        rewards.append(rew[members])
    batch = RolloutBatch(**fields, prompt_index=index)
    return rows, prompts, cut, batch, torch.cat(rewards)  # rewards (K*G,)
