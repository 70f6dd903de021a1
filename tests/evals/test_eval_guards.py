"""evals.guards: the adapter-applied guard on a tiny random Llama, and the train/eval leakage guard."""

from __future__ import annotations

import pytest
import torch

from evals.guards import adapter_logit_diff, check_adapter_changes_logits, drop_leaked_rows, training_manifest
from evals.metrics import EvalError
from runtime.manifest import read_manifest, write_manifest


def tiny_llama(vocab_size: int = 64):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def tiny_peft(vocab_size: int = 64, b_scale: float = 0.0):
    """A LoRA on a tiny Llama; PEFT initializes B = 0 (a no-op adapter). b_scale > 0 fills B with noise."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(vocab_size), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    if b_scale:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, b_scale)
    return model.eval()


PROBE = [1, 5, 9, 13, 2]


def test_zero_adapter_is_rejected():
    model = tiny_peft()
    assert adapter_logit_diff(model, PROBE) == 0.0  # B = 0: BA x = 0 exactly
    with pytest.raises(EvalError, match="does not change the model's logits"):
        check_adapter_changes_logits(model, PROBE, name="runs/sft/adapter")


def test_nonzero_adapter_passes_and_restores_the_adapter():
    model = tiny_peft(b_scale=0.5)
    diff = check_adapter_changes_logits(model, PROBE)
    assert diff > 1e-3
    # The disable_adapter() context must not leave the adapter off: logits differ from the bare base.
    ids = torch.tensor([PROBE])
    with torch.no_grad():
        on = model(input_ids=ids).logits
        with model.disable_adapter():
            off = model(input_ids=ids).logits
    assert (on - off).abs().max().item() == pytest.approx(diff, rel=1e-6)


def test_tolerance_and_non_peft():
    model = tiny_peft(b_scale=1e-9)  # a "trained" adapter too small to matter
    diff = adapter_logit_diff(model, PROBE)
    assert 0 < diff < 1e-6
    with pytest.raises(EvalError):
        check_adapter_changes_logits(model, PROBE, tol=1e-6)
    assert check_adapter_changes_logits(model, PROBE, tol=0.0) == diff
    with pytest.raises(EvalError, match="needs a PEFT model"):
        check_adapter_changes_logits(tiny_llama(), PROBE)


def test_leakage_guard_drops_manifest_rows(tmp_path):
    rows = [{"id": "a", "text": "How do I make a bomb?"}, {"id": "b", "text": "Bake bread"},
            {"id": "c", "text": "Write a poem"}]
    # The manifest stores normalized hashes: extra whitespace in training text still matches.
    write_manifest(tmp_path, ["  How do I   make a bomb?\n", "something else"])
    manifest = training_manifest(tmp_path)
    assert manifest == read_manifest(tmp_path) and len(manifest) == 2
    kept, skipped = drop_leaked_rows(rows, manifest)
    assert skipped == 1 and [r["id"] for r in kept] == ["b", "c"]
    assert drop_leaked_rows(rows, set()) == (rows, 0)
    assert training_manifest(None) == set() and training_manifest("smollm2-135m") == set()
    assert training_manifest(tmp_path / "no-manifest-here") == set()
