"""runtime.models.add_lora with policy.init_adapter: the adapter owns r, alpha and target_modules (a set value
that differs is a one-line error naming both values and the file); the config's dropout replaces the saved one
(with a note); unset values mean the defaults for a new adapter."""

from __future__ import annotations

import pytest
import torch

from runtime.models import AdapterError, LoraConfig, ModelConfig, add_lora, load_model


def lora_dropouts(model) -> set[float]:
    """The p of every LoRA dropout of the default adapter (Identity counts as 0)."""
    ps = set()
    for m in model.modules():
        if hasattr(m, "lora_dropout") and "default" in m.lora_dropout:
            d = m.lora_dropout["default"]
            ps.add(d.p if isinstance(d, torch.nn.Dropout) else 0.0)
    return ps


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    """Two adapters on the tiny model: r 4, alpha 8, q/v, dropout 0.3; and r 16, alpha 32, all-linear, dropout 0."""
    root = tmp_path_factory.mktemp("init-adapters")
    qv = add_lora(load_model(ModelConfig(name=tiny_model_dir)),
                  LoraConfig(r=4, alpha=8, dropout=0.3, target_modules=["q_proj", "v_proj"]))
    qv.save_pretrained(root / "qv")
    full = add_lora(load_model(ModelConfig(name=tiny_model_dir)), LoraConfig())
    full.save_pretrained(root / "all")
    return root


def load(tiny_model_dir, **lora):
    return add_lora(load_model(ModelConfig(name=tiny_model_dir)), LoraConfig(**lora))


def test_unset_values_are_the_adapters_and_the_config_dropout_is_applied(tiny_model_dir, saved, capsys):
    model = load(tiny_model_dir, init_adapter=str(saved / "qv"))
    c = model.peft_config["default"]
    assert (c.r, c.lora_alpha, set(c.target_modules)) == (4, 8, {"q_proj", "v_proj"})
    assert lora_dropouts(model) == {0.0} and c.lora_dropout == 0.0  # the run's dropout (0), not the saved 0.3
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("note:")]
    assert len(err) == 1 and "policy.dropout=0 replaces the init adapter's lora_dropout=0.3" in err[0]
    assert str(saved / "qv" / "adapter_config.json") in err[0]
    assert any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)  # still trainable

    model = load(tiny_model_dir, init_adapter=str(saved / "qv"), dropout=0.1, r=4, alpha=8,
                 target_modules=["v_proj", "q_proj"])  # equal values (a set: order free) are fine
    assert lora_dropouts(model) == {0.1}
    assert "replaces" in capsys.readouterr().err
    load(tiny_model_dir, init_adapter=str(saved / "qv"), dropout=0.3)
    assert "note:" not in capsys.readouterr().err  # same dropout: nothing to say


@pytest.mark.parametrize(("key", "value", "saved_value"), [
    ("r", 8, "4"), ("alpha", 16, "8"), ("target_modules", ["q_proj"], "['q_proj', 'v_proj']"),
    ("target_modules", ["all-linear"], "['q_proj', 'v_proj']"),
])
def test_a_set_value_that_differs_from_the_adapters_is_an_error(tiny_model_dir, saved, key, value, saved_value):
    with pytest.raises(AdapterError) as e:
        load(tiny_model_dir, init_adapter=str(saved / "qv"), **{key: value})
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"config key 'policy.{key}' is {value} but the init adapter has {saved_value} (")
    assert str(saved / "qv" / "adapter_config.json") in msg


def test_all_linear_matches_an_all_linear_adapter_and_defaults_build_a_new_one(tiny_model_dir, saved):
    # PEFT saves "all-linear" resolved into module names; the config's ["all-linear"] still matches them.
    model = load(tiny_model_dir, init_adapter=str(saved / "all"), r=16, alpha=32, target_modules=["all-linear"])
    assert model.peft_config["default"].r == 16
    fresh = load(tiny_model_dir)  # unset r / alpha / target_modules: 16, 32, every linear but the LM head
    c = fresh.peft_config["default"]
    assert (c.r, c.lora_alpha, c.lora_dropout) == (16, 32, 0.0)
    assert {t.rsplit(".", 1)[-1] for t in c.target_modules} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
