"""The openai backend: any OpenAI-compatible completions server, e.g. `vllm serve --enable-lora`.

Prompts go as token ids (vLLM accepts a list of int lists as `prompt`), one request per generate
call, answers in prompt-major order (choice index = prompt * n + j). Per-token log-probs come from
`logprobs=0` (the sampled token only) and the ids from vLLM's `return_token_ids`; for them to be at
the sampling temperature the server must run with `--logprobs-mode processed_logprobs`.
Weight sync saves the adapter to a dir the server can read, loads it under a fresh name with
POST /v1/load_lora_adapter (server env VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), then unloads the
previous one. Plain urllib: no new dependency.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from rollout.base import RolloutBatch, RolloutConfig, RolloutError, SamplingConfig, check_prompts
from rollout.sync import save_adapter_for_engine


def _root(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIBackend:
    """Client of a running server; starts nothing, owns nothing but its adapter dirs."""

    def __init__(self, cfg: RolloutConfig, *, model_name: str, tokenizer, policy=None, dtype: str = "float32",
                 device: str = "cpu") -> None:
        if not cfg.base_url:
            raise RolloutError("rollout.backend=openai needs rollout.base_url (e.g. http://127.0.0.1:8000)")
        self.cfg, self.tokenizer = cfg, tokenizer
        self.root = _root(cfg.base_url)
        self.base_model = cfg.served_model or self._first_model()
        self.model = self.base_model  # the name generate() asks for: the base, then each synced adapter
        self._adapter = None  # (name, dir) of the loaded adapter
        self._syncs = 0
        self._adapter_root = Path(cfg.adapter_dir) if cfg.adapter_dir else Path(tempfile.mkdtemp(prefix="oai-lora-"))
        self._own_root = cfg.adapter_dir is None

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body: dict | None = None) -> dict | str:
        """One JSON call with retries (exponential backoff) on connection errors, timeouts and 5xx."""
        url = self.root + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.cfg.api_key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    text = resp.read().decode()
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return text
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:300]
                if e.code < 500:  # the request is wrong: retrying will not help
                    raise RolloutError(f"openai backend: {method} {url} -> HTTP {e.code}: {detail}") from None
                last = f"HTTP {e.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = str(getattr(e, "reason", e))
        raise RolloutError(
            f"openai backend: server at {self.root} unreachable ({method} {path}) after "
            f"{self.cfg.max_retries + 1} tries: {last}"
        )

    def _first_model(self) -> str:
        models = self._request("GET", "/v1/models")
        data = models.get("data") if isinstance(models, dict) else None
        if not data:
            raise RolloutError(f"openai backend: {self.root}/v1/models lists no model; set rollout.served_model")
        return data[0]["id"]

    # ---------------------------------------------------------------- generate
    def generate(self, prompt_token_ids: list[list[int]], n: int, sampling: SamplingConfig) -> RolloutBatch:
        check_prompts(prompt_token_ids, n, sampling)
        t0 = time.perf_counter()
        body = {
            "model": self.model, "prompt": [list(p) for p in prompt_token_ids], "n": n,
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": sampling.top_k, "logprobs": 0, "return_token_ids": True, "return_tokens_as_token_ids": True,
            "skip_special_tokens": False,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        resp = self._request("POST", "/v1/completions", body)
        choices = sorted(resp.get("choices", []) if isinstance(resp, dict) else [], key=lambda c: c["index"])
        if len(choices) != len(prompt_token_ids) * n:
            raise RolloutError(f"openai backend: {len(choices)} choices for {len(prompt_token_ids)} prompts x n={n}")
        comp, logps, reasons, trunc = [], [], [], []
        for k, c in enumerate(choices):
            toks = c.get("token_ids")
            if toks is None:  # servers without return_token_ids: parse 'token_id:N' strings
                toks = [int(t.split(":", 1)[1]) for t in c["logprobs"]["tokens"]]
            lp = c["logprobs"]["token_logprobs"]
            if len(lp) != len(toks):
                raise RolloutError(f"openai backend: choice {k}: {len(toks)} tokens but {len(lp)} log-probs")
            reason = c.get("finish_reason") or "length"
            if reason not in ("stop", "length"):
                raise RolloutError(f"openai backend: choice {k} finished with {reason!r}")
            comp.append([int(t) for t in toks])
            logps.append([float(x) for x in lp])
            reasons.append(reason)
            trunc.append(reason == "length")
        index = [i for i in range(len(prompt_token_ids)) for _ in range(n)]
        return RolloutBatch(comp, logps, reasons, trunc, index, metrics={"generate_s": time.perf_counter() - t0})

    # ---------------------------------------------------------------- weight sync
    def update_weights(self, policy) -> dict:
        t0 = time.perf_counter()
        self._syncs += 1
        name = f"policy-v{self._syncs}"
        path, _ = save_adapter_for_engine(policy, self._adapter_root / name)
        self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        old, self._adapter, self.model = self._adapter, (name, path), name
        if old is not None:
            self._request("POST", "/v1/unload_lora_adapter", {"lora_name": old[0]})
            shutil.rmtree(Path(old[1]), ignore_errors=True)
        return {"sync_s": time.perf_counter() - t0}

    def sleep(self) -> None:
        pass  # the server's memory is its own

    def wake(self) -> None:
        pass

    def close(self) -> None:
        if self._own_root:
            shutil.rmtree(self._adapter_root, ignore_errors=True)
