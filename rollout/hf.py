"""The hf backend: the PEFT policy samples its own rollouts with transformers' generate.

No engine, no weight sync (update_weights is a no-op): the policy in memory is the sampler.
Log-probs: our own logits processor does the sampling warps itself (temperature, then top_k / top_p
when set; transformers 5.x runs custom processors *before* its own warpers, so generate is given
temperature 1 / top_k 0 / top_p 1 and adds none), keeps the log_softmax of the warped scores the
sampler draws from for one step, and at the next step reads the drawn token from
`input_ids[:, -1]` and gathers its log-prob. So only one (B, V) row block lives at a time instead of every step's logits
(output_logits would hold B x T x V floats: 64 x 64 x 49k x 4 B = 0.8 GB for SmolLM2).
"""

from __future__ import annotations

import time

import torch

from rollout.base import (
    RolloutBatch,
    RolloutConfig,
    RolloutError,
    SamplingConfig,
    check_prompts,
    stop_token_ids,
)


class _SampledLogprobs:
    """LogitsProcessor: warps the scores and records log p(sampled token) per step (one step held)."""

    def __init__(self, warpers: list) -> None:
        self.warpers = warpers
        self.prev: torch.Tensor | None = None  # (B, V) log-probs of the last step
        self.steps: list[torch.Tensor] = []  # each (B,)

    def _collect(self, tokens: torch.Tensor) -> None:
        if self.prev is not None:
            self.steps.append(self.prev.gather(-1, tokens[:, None].to(self.prev.device)).squeeze(-1))  # (B,)
            self.prev = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._collect(input_ids[:, -1])  # the token drawn from the previous step's scores
        for w in self.warpers:
            scores = w(input_ids, scores)  # (B, V)
        self.prev = torch.log_softmax(scores.float(), dim=-1)  # (B, V)
        return scores

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        self._collect(last_tokens)
        return torch.stack(self.steps, dim=1) if self.steps else torch.zeros(len(last_tokens), 0)  # (B, T)


def _left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (B, P)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, P)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids.to(device), mask.to(device)


def cut_at_eos(tokens: list[int], logps: list[float], eos: set[int], max_tokens: int):
    """Keep tokens up to and including the first EOS -> (tokens, logps, finish_reason, truncated)."""
    for j, t in enumerate(tokens):
        if t in eos:
            return tokens[: j + 1], logps[: j + 1], "stop", False
    tokens, logps = tokens[:max_tokens], logps[:max_tokens]
    return tokens, logps, "length", len(tokens) >= max_tokens


class HFBackend:
    """Rollouts from the policy itself (transformers generate, KV cache on, eval mode, no grad)."""

    def __init__(self, cfg: RolloutConfig, *, model_name: str, tokenizer, policy=None, dtype: str = "float32",
                 device: str = "cpu") -> None:
        if policy is None:
            raise RolloutError("rollout.backend=hf samples from the policy: make_backend(..., policy=model) is required")
        self.cfg, self.policy, self.tokenizer = cfg, policy, tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = stop_token_ids(tokenizer, getattr(policy, "generation_config", None))

    def generate(self, prompt_token_ids: list[list[int]], n: int, sampling: SamplingConfig) -> RolloutBatch:
        check_prompts(prompt_token_ids, n, sampling)
        t0 = time.perf_counter()
        seqs = [p for p in prompt_token_ids for _ in range(n)]  # grouped: n copies of prompt 0 first
        per_call = max(1, self.cfg.hf_batch_size // n) * n  # whole groups per call
        comp, logps, reasons, trunc = [], [], [], []
        model = self.policy
        was_training = model.training
        device = next(model.parameters()).device
        model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                for s in range(0, len(seqs), per_call):
                    c, lp = self._generate_chunk(seqs[s: s + per_call], sampling, device)
                    for toks, lps in zip(c, lp):
                        toks, lps, reason, tr = cut_at_eos(toks, lps, set(self.eos_ids), sampling.max_tokens)
                        comp.append(toks)
                        logps.append(lps)
                        reasons.append(reason)
                        trunc.append(tr)
        finally:
            model.train(was_training)
        index = [i for i in range(len(prompt_token_ids)) for _ in range(n)]
        return RolloutBatch(comp, logps, reasons, trunc, index, metrics={"generate_s": time.perf_counter() - t0})

    @torch.no_grad()
    def _generate_chunk(self, prompts: list[list[int]], sampling: SamplingConfig, device):
        from transformers import GenerationConfig, LogitsProcessorList
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        ids, mask = _left_pad(prompts, self.pad_id, device)  # (b, P)
        greedy = sampling.greedy
        # A fresh config, so nothing from the model's generation_config (penalties, top_k 50...) leaks in.
        # Every knob is explicit: generate fills unset (None) ones from the model's generation_config
        # (e.g. Qwen2.5 ships top_k 20, top_p 0.8, repetition_penalty 1.05), which would bias the ratio.
        warpers = []
        if not greedy:
            if sampling.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k > 0:
                warpers.append(TopKLogitsWarper(top_k=sampling.top_k))
            if sampling.top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p=sampling.top_p))
        gcfg = GenerationConfig(
            do_sample=not greedy, temperature=1.0, top_p=1.0, top_k=0,
            min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0, repetition_penalty=1.0,
            no_repeat_ngram_size=0, min_new_tokens=0, num_beams=1,
            max_new_tokens=sampling.max_tokens, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            use_cache=True, return_dict_in_generate=True,
        )
        recorder = _SampledLogprobs(warpers)
        out = self.policy.generate(input_ids=ids, attention_mask=mask, generation_config=gcfg,
                                   logits_processor=LogitsProcessorList([recorder]))
        new = out.sequences[:, ids.shape[1]:]  # (b, T)
        lp = recorder.finish(new[:, -1]) if new.shape[1] else torch.zeros(len(prompts), 0)  # (b, T)
        if lp.shape != new.shape:
            raise RolloutError(f"hf backend: {tuple(lp.shape)} log-probs for {tuple(new.shape)} tokens")
        return new.tolist(), lp.cpu().tolist()

    def update_weights(self, policy) -> dict:
        self.policy = policy
        return {"sync_s": 0.0}

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        self.policy = None
