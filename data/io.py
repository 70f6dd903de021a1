"""Reading prepared splits (data.prepare's JSONL output) for the SFT, GRPO and eval stages."""

from __future__ import annotations

import json
from pathlib import Path

from data.readers import DataError

LABELS = ("malicious", "benign")


def load_rows(path: str | Path, *, require_label: bool = True) -> list[dict]:
    """Rows of a prepared JSONL split; every row needs a non-empty `text` and a normalized `label`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file (run `python -m data.prepare ... --out DIR` first)")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}: row {n}: malformed JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise DataError(f"{p}: row {n}: missing or empty 'text'")
        if require_label and row.get("label") not in LABELS:
            raise DataError(f"{p}: row {n}: label {row.get('label')!r} is not one of {list(LABELS)}")
        rows.append(row)
    if not rows:
        raise DataError(f"{p}: empty split")
    return rows
