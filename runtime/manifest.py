"""Training-data manifests: hashes of the normalized prompt texts a model was trained on.

SFT and GRPO write `training_manifest.json` next to every adapter they save; the eval reads it
and refuses to score rows whose normalized text the model under test was trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from runtime.errors import DataError
from runtime.io import read_json, write_text


def normalize_text(text: str) -> str:
    """The dedup key of data.curate and of the manifests: whitespace runs collapsed, stripped, case kept."""
    return " ".join(text.split())

MANIFEST_NAME = "training_manifest.json"


def text_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def write_manifest(directory: str | Path, texts: Iterable[str], *, parent: str | Path | None = None) -> Path:
    """Write DIR/training_manifest.json (atomic). `parent`: an adapter dir whose manifest is inherited
    (GRPO started from an SFT adapter was trained on the SFT rows too)."""
    hashes = {text_hash(t) for t in texts}
    if parent is not None:
        hashes |= read_manifest(parent)
    return write_text(Path(directory) / MANIFEST_NAME, json.dumps(
        {"normalization": "whitespace-collapsed, stripped; sha256 of utf-8", "count": len(hashes),
         "hashes": sorted(hashes)}))


def read_manifest(directory: str | Path) -> set[str]:
    """The hashes in DIR/training_manifest.json, or an empty set when the dir has none."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return set()
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("hashes"), list):
        raise DataError("not a training manifest (no 'hashes' list)", file=path)
    return set(data["hashes"])
