"""Export a trained adapter for serving: a vLLM-loadable PEFT dir, and optionally a merged checkpoint.

    python -m sft.export --adapter runs/demo/grpo/adapter --out runs/export/grpo [--merged] [--dtype float32]

Writes (each dir built in a temp dir and renamed, so a crash never leaves a half-written one):
- OUT/adapter: adapter_config.json + adapter_model.safetensors (+ our safety_grpo.json and
  training_manifest.json), what `vllm serve BASE --enable-lora --lora-modules NAME=OUT/adapter` loads;
- OUT/README.md: the serve command and the adapter's facts;
- OUT/merged (--merged): base + adapter merged with PEFT's merge_and_unload, a plain safetensors HF
  checkpoint with the tokenizer and the training manifest (`vllm serve OUT/merged`, no LoRA at serving).

Checks: a LoRA adapter in PEFT format whose base model (safety_grpo.json, else PEFT's
base_model_name_or_path) resolves offline; no feature vLLM rejects (DoRA, LoRA bias, modules_to_save,
bias != none, PiSSA-like inits); every weight key a `base_model.model.<module>.lora_{A,B}.weight` of the
recorded rank. `target_modules` is written as a list of module names: a string form ("all-linear" or a
regex) is replaced by the modules that actually hold LoRA weights in the safetensors file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from runtime.errors import UserError
from runtime.io import atomic_dir

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
EXTRA_FILES = ("safety_grpo.json", "training_manifest.json")
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm.config.lora.MaxLoRARanks (0.32)
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>A|B)\.weight$")


class ExportError(UserError):
    """The adapter dir cannot be exported (the message names the file and what is wrong)."""


def read_adapter(adapter_dir: str | Path) -> tuple[dict, dict, str]:
    """(adapter_config, {key: tensor}, base model name) of a PEFT LoRA dir, or ExportError."""
    from safetensors.torch import load_file

    d = Path(adapter_dir)
    if not d.is_dir():
        raise ExportError(f"adapter dir '{d}' does not exist")
    cfg_path = d / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise ExportError(f"'{d}' is not a PEFT adapter dir (no {ADAPTER_CONFIG})")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{cfg_path}: invalid JSON ({e.msg})") from None
    if cfg.get("peft_type") != "LORA":
        raise ExportError(f"{cfg_path}: peft_type is {cfg.get('peft_type')!r}, only LORA adapters can be exported")
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in cfg:
            raise ExportError(f"{cfg_path}: missing '{key}'")
    weights = d / ADAPTER_WEIGHTS
    if weights.is_file():
        tensors = load_file(str(weights))
    elif (d / "adapter_model.bin").is_file():
        import torch

        tensors = torch.load(d / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ExportError(f"'{d}' has no {ADAPTER_WEIGHTS} (nor adapter_model.bin)")
    meta = d / "safety_grpo.json"
    base = json.loads(meta.read_text()).get("base_model") if meta.is_file() else None
    base = base or cfg.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"'{d}': no base model recorded (safety_grpo.json base_model or "
                          f"{ADAPTER_CONFIG} base_model_name_or_path)")
    return cfg, tensors, base


def vllm_problems(cfg: dict) -> list[str]:
    """Adapter features vLLM 0.32 refuses to load (vllm/lora/peft_helper.py), as messages."""
    out = []
    if cfg.get("use_dora"):
        out.append("DoRA (use_dora)")
    if cfg.get("lora_bias"):
        out.append("LoRA bias (lora_bias)")
    if cfg.get("bias", "none") != "none":
        out.append(f"bias={cfg['bias']!r}")
    if [m for m in cfg.get("modules_to_save") or [] if m not in ("classifier", "score")]:
        out.append(f"modules_to_save={cfg['modules_to_save']}")
    init = cfg.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower() not in ("gaussian", "eva", "orthogonal", "mica", "lora_ga"):
        out.append(f"init_lora_weights={init!r} (modifies the base weights)")
    for key in ("alora_invocation_tokens", "layer_replication", "use_bdlora", "use_qalora"):
        if cfg.get(key):
            out.append(key)
    return out


def lora_modules(tensors: dict, cfg: dict, where: str) -> list[str]:
    """The module paths holding LoRA A/B weights; checks key layout, pairing and ranks."""
    ranks = {}
    for key, t in tensors.items():
        m = _KEY.match(key)
        if not m:
            raise ExportError(f"{where}: weight '{key}' is not a PEFT LoRA key (base_model.model.<module>.lora_A/B.weight)")
        rank = t.shape[0] if m["ab"] == "A" else t.shape[1]
        ranks.setdefault(m["module"], {})[m["ab"]] = rank
    if not ranks:
        raise ExportError(f"{where}: no LoRA weights")
    patterns = cfg.get("rank_pattern") or {}
    for module, ab in sorted(ranks.items()):
        if set(ab) != {"A", "B"}:
            raise ExportError(f"{where}: module '{module}' has lora_{'A' if 'A' in ab else 'B'} but not its pair")
        want = next((v for k, v in patterns.items() if re.match(rf"(.*\.)?({k})$", module)), cfg["r"])
        if ab["A"] != want or ab["B"] != want:
            raise ExportError(f"{where}: module '{module}' has rank {ab['A']}/{ab['B']}, config says r={want}")
    return sorted(ranks)


def vllm_config(cfg: dict, modules: list[str], where: str) -> dict:
    """adapter_config.json as vLLM needs it: target_modules a list of module names covering the weights."""
    out = dict(cfg)
    targets = cfg["target_modules"]
    if isinstance(targets, str):  # "all-linear" or a regex: name the modules that actually hold weights
        out["target_modules"] = modules
        return out
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ExportError(f"{where}: target_modules must be a list of module names or a string, got {targets!r}")
    uncovered = [m for m in modules if not any(m == t or m.endswith("." + t) for t in targets)]
    if uncovered:
        raise ExportError(f"{where}: LoRA weights for modules outside target_modules: {uncovered[:3]}")
    return out


def max_lora_rank(cfg: dict) -> int:
    """The smallest --max-lora-rank vLLM accepts for this adapter."""
    r = max([cfg["r"], *(cfg.get("rank_pattern") or {}).values()])
    return next(v for v in VLLM_MAX_LORA_RANKS if v >= r)


def _atomic_dir(final: Path, build) -> Path:
    """Build `final` in a sibling temp dir with build(tmp), then swap it in."""
    with atomic_dir(final) as tmp:
        build(tmp)
    return final


def export_adapter(adapter_dir: str | Path, out_dir: str | Path) -> tuple[Path, dict, str, str]:
    """Validate `adapter_dir` and write OUT/adapter in vLLM's PEFT layout.

    Returns (OUT/adapter, its adapter_config, base model name, the base's local path)."""
    from safetensors.torch import save_file

    from runtime.models import resolve_model

    src = Path(adapter_dir)
    cfg, tensors, base = read_adapter(src)
    where = str(src / ADAPTER_CONFIG)
    problems = vllm_problems(cfg)
    if problems:
        raise ExportError(f"{where}: vLLM cannot serve this adapter: {', '.join(problems)}")
    modules = lora_modules(tensors, cfg, str(src))
    new_cfg = vllm_config(cfg, modules, where)
    new_cfg["inference_mode"] = True
    try:
        base_path = resolve_model(base)
    except (FileNotFoundError, ValueError) as e:
        raise ExportError(f"{src}: base model '{base}' cannot be loaded: {e}") from None

    def build(tmp: Path) -> None:
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(new_cfg, indent=2, sort_keys=True))
        if (src / ADAPTER_WEIGHTS).is_file():
            shutil.copyfile(src / ADAPTER_WEIGHTS, tmp / ADAPTER_WEIGHTS)
        else:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / ADAPTER_WEIGHTS))
        for name in EXTRA_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, tmp / name)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _atomic_dir(out / "adapter", build), new_cfg, base, base_path


def export_merged(adapter_dir: str | Path, out_dir: str | Path, base: str, dtype: str = "float32") -> Path:
    """OUT/merged: base + adapter merged (merge_and_unload), safetensors + tokenizer + training manifest."""
    from peft import PeftModel

    from runtime.models import ModelConfig, load_model, load_tokenizer

    model = load_model(ModelConfig(name=base, dtype=dtype), "cpu")
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.config.use_cache = True
    tok = load_tokenizer(base)

    def build(tmp: Path) -> None:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        manifest = Path(adapter_dir) / "training_manifest.json"
        if manifest.is_file():  # evals.run reads a model dir's manifest too: the leakage guard still holds
            shutil.copyfile(manifest, tmp / manifest.name)

    return _atomic_dir(Path(out_dir) / "merged", build)


def readme(out: Path, cfg: dict, base: str, base_path: str, merged: bool, system_prompt: str | None = None) -> str:
    """The serve command and how to prompt the adapter: its recorded settings (safety_grpo.json), the
    system prompt overridable by `system_prompt`."""
    adapter = (out / "adapter").resolve()
    text = (
        f"# Exported adapter\n\nBase model: `{base}` (local files: `{base_path}`); LoRA r={cfg['r']}, "
        f"alpha={cfg['lora_alpha']}, {len(cfg['target_modules'])} target modules.\n\n"
        f"Serve it with vLLM (the adapter is applied per request with `\"model\": \"safety\"`):\n\n"
        f"```\nvllm serve {base_path} --enable-lora --max-lora-rank {max_lora_rank(cfg)} \\\n"
        f"    --lora-modules safety={adapter}\n```\n"
    )
    meta = out / "adapter" / "safety_grpo.json"
    recorded = json.loads(meta.read_text()) if meta.is_file() else {}
    source = "given to sft.export" if system_prompt is not None else "recorded with the adapter"
    system_prompt = recorded.get("system_prompt") if system_prompt is None else system_prompt
    if system_prompt:
        text += f"\nSend this system prompt ({source}): `{system_prompt}`\n"
    if "max_prompt_tokens" in recorded:
        side = "the end" if recorded.get("truncation_side", "left") == "left" else "the start"
        text += (f"\nIt was trained on prompts of at most {recorded['max_prompt_tokens']} tokens (chat template "
                 f"included; longer user texts were cut keeping {side}; chat template sha256 "
                 f"{recorded.get('chat_template_sha256', '?')}).\n")
    if merged:
        text += (f"\nOr serve the merged checkpoint (no LoRA at serving time):\n\n"
                 f"```\nvllm serve {(out / 'merged').resolve()}\n```\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sft.export", description=__doc__.split("\n")[0])
    ap.add_argument("--adapter", required=True, help="a PEFT LoRA adapter dir (e.g. runs/demo/grpo/adapter)")
    ap.add_argument("--out", required=True, help="output dir (gets adapter/, README.md and with --merged merged/)")
    ap.add_argument("--merged", action="store_true", help="also write base + adapter merged as a full checkpoint")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                    help="dtype of the merged checkpoint")
    ap.add_argument("--system-prompt", default=None,
                    help="system prompt to document for clients (default: the one recorded with the adapter)")
    args = ap.parse_args(argv)
    try:
        adapter, cfg, base, base_path = export_adapter(args.adapter, args.out)
        out = Path(args.out)
        if args.merged:
            export_merged(args.adapter, out, base, args.dtype)
        (out / "README.md").write_text(readme(out, cfg, base, base_path, args.merged, args.system_prompt))
    except (UserError, OSError) as e:  # bad input: one line, exit 2 (runtime/cli.py convention)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {adapter} (r={cfg['r']}, {len(cfg['target_modules'])} target modules, base {base})"
          + (f" and {Path(args.out) / 'merged'}" if args.merged else "") + f"; serve: see {Path(args.out) / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
