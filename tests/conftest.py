"""Shared fixtures: the embedded SmolLM2 (converted once into a cache shared by all tests)."""

from __future__ import annotations

import os

import pytest
import torch

# One cache per machine: the GGUF -> safetensors conversion runs once (~20 s), then loads are fast.
os.environ.setdefault("SAFETY_GRPO_CACHE", os.path.expanduser("~/.cache/safety-grpo"))
os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    from runtime.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tokenizer(smollm2_path):
    from runtime.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> str:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer and chat template: fast loop tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return str(d)


@pytest.fixture
def judge_server():
    """start(reply) -> (url, seen): a stub OpenAI-compatible server on localhost. /v1/models lists one model
    ("judge-7b"); each chat completion answers reply(user message); `seen` collects the request bodies."""
    import http.server
    import json
    import threading

    servers = []

    def start(reply):
        seen: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, obj):
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                assert self.path == "/v1/models"
                self._send({"data": [{"id": "judge-7b"}]})

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(req)
                self._send({"choices": [{"message": {"content": reply(req["messages"][-1]["content"])}}]})

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", seen

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def qwen05_path() -> str:
    """The embedded Qwen2.5-Coder-0.5B-Instruct (installed by `make test` / `make models`; converted once)."""
    from runtime.models import resolve_model

    return resolve_model("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory, qwen05_path) -> str:
    """A randomly initialised 2-layer qwen2 built from the 0.5B model's config (untied LM head, q/k/v biases,
    grouped-query attention) with its real tokenizer and ChatML template: the architecture's code paths."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    d = tmp_path_factory.mktemp("tiny-qwen2")
    cfg = AutoConfig.from_pretrained(qwen05_path)
    cfg.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_window_layers": 2, "layer_types": ["full_attention"] * 2})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(d)
    AutoTokenizer.from_pretrained(qwen05_path).save_pretrained(d)
    return str(d)
