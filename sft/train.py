"""Supervised fine-tuning with a completion-only loss, hand-written.

    torchrun --nproc_per_node 1 sft/train.py --config configs/sft_refusal_cpu.yaml [key=value ...]
    python sft/train.py --config configs/sft_refusal_cpu.yaml

Modes (`data.mode`):
- refusal_only: the malicious rows of a prepared split, each paired with its md5-assigned refusal
  template (data/templates.py); benign rows are excluded, as in the seed, so GRPO later restores
  helpfulness from a model that knows how to refuse.
- pairs: a JSONL of {prompt, completion} (e.g. data/builtin/reasoned_refusals.jsonl, reasoned refusals in
  the <PAUSE>/<SOLUTION> format, or the LoRA-attack compliance pairs of data/builtin/compliance.py).

`data.retain` (refusal_only mode) adds a retain set: {prompt, completion} answers to benign prompts
(data/builtin/benign_answers.jsonl: the base model's own greedy answers, recipes/benign_answers.py).
Only answers whose prompt is a benign row of `data.train` (or a wrapped row's inner `request`) are used,
so no held-out prompt is ever trained on. Refusals then come with counter-examples, and the SFT model learns *when* to refuse
instead of refusing everything (the seed's refusal-only SFT left GRPO a model that refused all).

`data.recovery` (refusal_only mode) turns a seeded share of the malicious rows into course-correction
examples (Qi et al. 2025, "Safety Alignment Should Be Made More Than Just a Few Tokens Deep"; DeRTa):
the assistant turn starts with the first k tokens of a harmful-compliant answer (k uniform in
1..recovery_max_prefix_tokens, data/builtin/compliance.py), then a recovery that stops and refuses
(data/templates.py, 25 wordings). The prefix is masked like the prompt: the loss covers only the
recovery, so the model learns to turn around mid-answer and never learns to produce the prefix.

`booster.weight` > 0 adds Booster's defence against harmful fine-tuning (sft/booster.py): each step also
simulates one normalized attack step on a batch of harmful-compliant pairs and penalizes how much it
lowers their loss, so a later LoRA attack makes slower progress.

Prompts go through data/'s one chat-formatting function, exactly as GRPO and the eval format them.
The loss is the exact token mean over every completion token of the optimizer step (summed over
micro-batches and ranks, then divided by the global token count), so gradient accumulation and the
number of ranks do not change it. The adapter is saved in PEFT format with a training manifest.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

if __name__ == "__main__" and __package__ is None:  # `torchrun sft/train.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tqdm import tqdm

from data.builtin.compliance import attack_pairs, opening_ids
from data.chat import PromptSettings, format_example, prompt_settings_meta
from data.prepare import load_split as load_rows
from data.templates import recovery_for, refusal_for
from runtime.checkpoint import resume_from, save_adapter, save_checkpoint
from runtime.config import NonNegInt, PosInt, UnitFloat, parse_cli
from runtime.errors import DataError
from runtime.io import iter_jsonl
from runtime.metrics import LogConfig, MetricsLogger
from runtime.models import LoraConfig, ModelConfig, load_policy
from runtime.optim import OptimConfig, build_optimizer, clip_and_reduce_grads
from runtime.world import World, init_world
from sft.booster import BoosterConfig, perturbation_term
from sft.loss import completion_loss

RECOVERY = "recovery"  # the third element of a course-correction example


@dataclass
class SFTDataConfig(PromptSettings):
    mode: Literal["refusal_only", "pairs"] = "refusal_only"
    """refusal_only (malicious rows + refusal templates) or pairs (a prompt/completion JSONL)."""
    train: str = "runs/data/train_balanced.jsonl"
    """refusal_only: a prepared split; pairs: a JSONL of {prompt, completion}."""
    eval: str | None = "runs/data/eval.jsonl"
    """Held-out rows (same format as train) for eval loss/accuracy (None: no eval)."""
    eval_rows: PosInt = 32
    """Held-out examples used per eval."""
    max_train_rows: NonNegInt = 0
    """Use at most this many training examples (0: all)."""
    max_completion_tokens: PosInt = 128
    """Completion token budget (EOS included)."""
    retain: str | None = None
    """refusal_only: a {prompt, completion} JSONL of benign answers; those whose prompt is a benign
    row of `train` are mixed in (None: refusals only, as in the seed)."""
    recovery: UnitFloat = 0.0
    """refusal_only: share of malicious rows trained as course correction: the first k tokens of a
    harmful-compliant answer (data/builtin/compliance.py, k uniform in 1..recovery_max_prefix_tokens)
    are put in the assistant turn, masked out of the loss, and the model learns the recovery after them."""
    recovery_max_prefix_tokens: PosInt = 24
    """Longest harmful prefix of a course-correction example, in tokens."""


@dataclass
class SFTConfig:
    out_dir: str = "runs/sft"
    """Where metrics.jsonl, checkpoints/ and adapter/ go."""
    seed: int = 0
    """Seeds data order and LoRA init."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto, cpu or cuda."""
    epochs: PosInt = 1
    """Passes over the training examples (ignored when max_steps > 0)."""
    max_steps: NonNegInt = 0
    """Optimizer steps (0: derived from epochs)."""
    batch_size: PosInt = 4
    """Examples per micro-batch per rank."""
    grad_accum: PosInt = 1
    """Micro-batches per optimizer step."""
    eval_every: NonNegInt = 0
    """Eval loss/accuracy every N steps (0: at the end only)."""
    save_every: NonNegInt = 0
    """Resumable checkpoint every N steps (0: none)."""
    resume: str | None = None
    """A checkpoint (or dir of step_* checkpoints) to continue from."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, lr_schedule="cosine", warmup_ratio=0.05))
    """AdamW and its LR schedule."""
    model: ModelConfig = field(default_factory=lambda: ModelConfig())
    """The base model."""
    policy: LoraConfig = field(default_factory=lambda: LoraConfig(r=32, alpha=64))
    """The LoRA to train."""
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    """Training examples."""
    booster: BoosterConfig = field(default_factory=BoosterConfig)
    """Booster's defence against harmful fine-tuning (sft/booster.py; weight 0: off)."""
    log: LogConfig = field(default_factory=LogConfig)
    """Metric logging."""


def is_recovery_row(text: str, share: float, seed: int) -> bool:
    """Whether a malicious row is trained as course correction: a seeded hash of the text below `share`."""
    h = int(hashlib.sha256(f"{seed}\n{text}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < share


def load_examples(path: str, mode: str, retain: str | None = None, recovery: float = 0.0,
                  seed: int = 0) -> list[tuple]:
    """(prompt, completion) pairs for the mode; refusal_only with `retain` adds the retain answers to
    the split's benign prompts, interleaved with the refusals. With `recovery` > 0 that share of the
    malicious rows becomes (prompt, recovery text, RECOVERY): encode() puts a harmful prefix before it."""
    if mode == "refusal_only":
        rows = load_rows(path)
        refusals = [(r["text"], recovery_for(r["text"]), RECOVERY) if recovery and is_recovery_row(r["text"], recovery, seed)
                    else (r["text"], refusal_for(r["text"])) for r in rows if r["label"] == "malicious"]
        if not retain:
            return refusals
        answers = dict(load_pairs(retain))
        kept = []
        for r in rows:
            # a wrapped benign row (data.importers.import_wrapped_benign) is answered as its inner request is
            answer = answers.get(r["text"], answers.get(r.get("request")))
            if r["label"] == "benign" and answer is not None:
                kept.append((r["text"], answer))
        if not kept:
            raise DataError(f"{retain}: no answer matches a benign prompt of {path}")
        mixed = refusals + kept
        random.Random(0).shuffle(mixed)
        return mixed
    return load_pairs(path)


def load_pairs(path: str) -> list[tuple[str, str]]:
    """The {prompt, completion} rows of a JSONL file."""
    out = []
    for n, row in iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) \
                or not isinstance(row.get("completion"), str):
            raise DataError(f"{path}: row {n}: a pairs row needs string 'prompt' and 'completion'")
        out.append((row["prompt"], row["completion"]))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def recovery_prefix(tok, prompt: str, max_tokens: int, seed: int) -> list[int]:
    """The harmful prefix of a course-correction example: the first k tokens of the prompt's compliant
    opening, k uniform in 1..max_tokens, a pure function of (seed, prompt)."""
    k = random.Random(f"{seed}\n{prompt}").randint(1, max_tokens)
    return opening_ids(tok, prompt, k, seed)


def encode(examples, tok, cfg: SFTConfig) -> list[tuple[list[int], list[int]]]:
    d = cfg.data
    out = []
    for prompt, completion, *kind in examples:
        prefix = recovery_prefix(tok, prompt, d.recovery_max_prefix_tokens, cfg.seed) if kind == [RECOVERY] else []
        ex = format_example(tok, prompt, completion, system_prompt=d.system_prompt,
                            max_prompt_tokens=d.max_prompt_tokens, max_completion_tokens=d.max_completion_tokens,
                            truncation_side=d.truncation_side, assistant_prefix=prefix)
        out.append((ex.input_ids, ex.completion_mask))
    return out


def collate(batch: list[tuple[list[int], list[int]]], pad_id: int, device):
    """Left-padded (input_ids, attention_mask, completion_mask, position_ids), each (B, L), and K: the
    completion tokens all sit in the last K - 1 columns, so the LM head only runs on the last K positions."""
    L = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)  # (B, L)
    attn = torch.zeros((len(batch), L), dtype=torch.long)  # (B, L)
    cmask = torch.zeros((len(batch), L), dtype=torch.long)  # (B, L)
    for i, (x, m) in enumerate(batch):
        ids[i, L - len(x):] = torch.tensor(x)
        attn[i, L - len(x):] = 1
        cmask[i, L - len(m):] = torch.tensor(m)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, L) positions as if unpadded
    K = min(L, max(sum(m) for _, m in batch) + 1)
    return ids.to(device), attn.to(device), cmask.to(device), pos.to(device), K


def forward_loss(model, ids, attn, cmask, pos, K, reduction="sum"):
    """Logits of the last K positions only (the completion and the token before it) -> completion loss."""
    logits = model(input_ids=ids, attention_mask=attn, position_ids=pos, logits_to_keep=K).logits  # (B, K, V)
    return completion_loss(logits, ids[:, -K:], cmask[:, -K:], reduction=reduction)


def micro_batches(n_examples: int, step: int, cfg: SFTConfig, world: World) -> list[list[int]]:
    """The example indices of this rank's micro-batches at optimizer step `step` (a pure function of
    (seed, step), so resume continues the exact data order)."""
    return batch_indices(n_examples, step, cfg.batch_size, cfg.grad_accum, cfg.seed, world)


def batch_indices(n_examples: int, step: int, batch_size: int, grad_accum: int, seed: int,
                  world: World) -> list[list[int]]:
    """This rank's micro-batches at `step`: consecutive slices of a seeded shuffle of the examples,
    reshuffled every epoch."""
    per_step = batch_size * grad_accum * world.world_size
    out = []
    for a in range(grad_accum):
        idx = []
        for b in range(batch_size):
            pos = step * per_step + (a * world.world_size + world.rank) * batch_size + b
            epoch, k = divmod(pos, n_examples)
            order = list(range(n_examples))
            random.Random(seed * 1_000_003 + epoch).shuffle(order)
            idx.append(order[k])
        out.append(idx)
    return out


def harmful_examples(cfg: SFTConfig) -> list[tuple[str, str]]:
    """Booster's harmful-compliant (prompt, answer) pairs: booster.pairs, or the compliance generator's
    pairs for the malicious rows of data.train (refusal_only mode)."""
    if cfg.booster.pairs:
        return load_pairs(cfg.booster.pairs)
    if cfg.data.mode != "refusal_only":
        raise DataError("booster.pairs: required when data.mode is not refusal_only (no malicious rows to use)")
    pairs = [(p["prompt"], p["completion"]) for p in attack_pairs(load_rows(cfg.data.train), cfg.seed)]
    if not pairs:
        raise DataError(f"{cfg.data.train}: no malicious row to build Booster's harmful pairs from")
    return pairs


def train_step(model, optimizer, scheduler, params, data, mbs, pad_id, cfg: SFTConfig, world: World,
               harmful_batch: list | None = None) -> dict:
    """One optimizer step; with `harmful_batch` (encoded examples) Booster's term is added to the gradient."""
    batches = [collate([data[i] for i in idx], pad_id, world.device) for idx in mbs]
    local = torch.tensor(float(sum(int(b[2][:, -b[4] + 1:].sum()) for b in batches)))
    n_global = max(world.all_reduce_sum(local.clone()).item(), 1.0)  # completion tokens of the step, all ranks
    optimizer.zero_grad(set_to_none=True)
    sums = {"loss": 0.0, "token_accuracy": 0.0, "entropy": 0.0}
    model.train()
    for batch in batches:
        loss, m = forward_loss(model, *batch)
        (loss / n_global).backward()
        w = m["num_tokens"]
        sums["loss"] += loss.item()
        sums["token_accuracy"] += m["token_accuracy"] * w
        sums["entropy"] += m["entropy"] * w
    extra = {}
    if harmful_batch:
        h_batch = collate(harmful_batch, pad_id, world.device)
        term, stats = perturbation_term(params, lambda: forward_loss(model, *h_batch, reduction="mean")[0],
                                        cfg.booster.step)
        scale = cfg.booster.weight / world.world_size  # the ranks' terms are summed with the token-mean loss
        for p, t in zip(params, term):
            p.grad.add_(t, alpha=scale)
        extra = {f"booster_{k}": v for k, v in stats.items()}
    grad_norm = clip_and_reduce_grads(params, cfg.optim.max_grad_norm, world, sum_ranks=True)
    optimizer.step()
    scheduler.step()
    stats = world.all_reduce_sum(torch.tensor([sums["loss"], sums["token_accuracy"], sums["entropy"]]))
    return {"loss": stats[0].item() / n_global, "token_accuracy": stats[1].item() / n_global,
            "entropy": stats[2].item() / n_global, "grad_norm": grad_norm, "tokens": n_global, **extra}


@torch.no_grad()
def evaluate(model, data, pad_id, cfg: SFTConfig, world: World) -> dict:
    model.eval()
    tot = {"loss": 0.0, "acc": 0.0, "n": 0.0}
    for i in range(0, len(data), cfg.batch_size):
        loss, m = forward_loss(model, *collate(data[i: i + cfg.batch_size], pad_id, world.device))
        tot["loss"] += loss.item()
        tot["acc"] += m["token_accuracy"] * m["num_tokens"]
        tot["n"] += m["num_tokens"]
    n = max(tot["n"], 1.0)
    return {"eval/loss": tot["loss"] / n, "eval/token_accuracy": tot["acc"] / n}


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_cli(SFTConfig, argv, prog="sft/train.py")
    world = init_world(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    model, tok = load_policy(cfg.model, cfg.policy, world.device)
    examples = load_examples(cfg.data.train, cfg.data.mode, cfg.data.retain, cfg.data.recovery, cfg.seed)
    if cfg.data.max_train_rows:
        examples = examples[: cfg.data.max_train_rows]
    train = encode(examples, tok, cfg)
    held = encode(load_examples(cfg.data.eval, cfg.data.mode, cfg.data.retain)[: cfg.data.eval_rows], tok, cfg) \
        if cfg.data.eval else []
    harmful = encode(harmful_examples(cfg), tok, cfg) if cfg.booster.weight > 0 else []
    per_step = cfg.batch_size * cfg.grad_accum * world.world_size
    steps = cfg.max_steps or math.ceil(cfg.epochs * len(train) / per_step)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, cfg.optim, total_steps=steps)
    start = 0
    if cfg.resume:
        state = resume_from(cfg.resume, model=model, optimizer=optimizer, scheduler=scheduler,
                            config=asdict(cfg), lr=cfg.optim.lr)
        start = state["cursor"]["step"]
    meta = {"base_model": cfg.model.name, "trainer": "sft", **prompt_settings_meta(cfg.data, tok),
            "config": asdict(cfg)}
    logger = MetricsLogger(out, cfg.log, asdict(cfg), enabled=world.is_main, resume=bool(cfg.resume))
    if cfg.resume:
        logger.truncate_after(start)
    train_texts = [p for p, *_ in examples]
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="sft", disable=not world.is_main)
    metrics: dict = {}
    for step in bar:
        t0 = time.perf_counter()
        h_batch = [harmful[i] for i in batch_indices(len(harmful), step, cfg.booster.batch_size, 1, cfg.seed + 1,
                                                     world)[0]] if harmful else None
        m = train_step(model, optimizer, scheduler, params, train, micro_batches(len(train), step, cfg, world),
                       tok.pad_token_id, cfg, world, h_batch)
        dt = time.perf_counter() - t0
        metrics = {**{f"train/{k}": v for k, v in m.items()}, "train/lr": scheduler.get_last_lr()[0],
                   "perf/step_s": dt, "perf/tokens_per_s": m["tokens"] / max(dt, 1e-9)}
        if held and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or step + 1 == steps):
            metrics.update(evaluate(model, held, tok.pad_token_id, cfg, world))
        logger.log(metrics, step + 1)
        bar.set_postfix(loss=f"{m['loss']:.3f}", acc=f"{m['token_accuracy']:.3f}", H=f"{m['entropy']:.2f}",
                        gn=f"{m['grad_norm']:.2f}", tok_s=f"{metrics['perf/tokens_per_s']:.0f}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and world.is_main:
            save_checkpoint(out / "checkpoints", model=model, optimizer=optimizer, scheduler=scheduler,
                            step=step + 1, cursor={"step": step + 1}, meta=meta, config=asdict(cfg),
                            train_texts=train_texts, parent_adapter=cfg.policy.init_adapter)
    if world.is_main:
        save_adapter(model, out / "adapter", meta={**meta, "steps": steps}, train_texts=train_texts,
                     parent_adapter=cfg.policy.init_adapter)
    logger.close()
    world.barrier()
    world.close()
    return metrics


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
