"""Training-data manifests: hashes of the normalized prompt texts a model was trained on.

SFT and GRPO write `training_manifest.json` next to every adapter they save; the eval reads it
and refuses to score rows whose normalized text the model under test was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from data.curate import normalize_text  # the dedup key: whitespace collapsed, case kept

MANIFEST_NAME = "training_manifest.json"


def text_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def write_manifest(directory: str | Path, texts: Iterable[str], *, parent: str | Path | None = None) -> Path:
    """Write DIR/training_manifest.json (atomic). `parent`: an adapter dir whose manifest is inherited
    (GRPO started from an SFT adapter was trained on the SFT rows too)."""
    hashes = {text_hash(t) for t in texts}
    if parent is not None:
        hashes |= read_manifest(parent)
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"normalization": "whitespace-collapsed, stripped; sha256 of utf-8",
                               "count": len(hashes), "hashes": sorted(hashes)}))
    os.replace(tmp, path)
    return path


def read_manifest(directory: str | Path) -> set[str]:
    """The hashes in DIR/training_manifest.json, or an empty set when the dir has none."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return set()
    return set(json.loads(path.read_text())["hashes"])
