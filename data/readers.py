"""Readers for heterogeneous prompt files (JSON list, JSONL, CSV) and label normalization.

Every reader returns raw rows of one shape:
`{id, text, label (raw value or None), category, source, source_file, row}`.
`row` is the 1-based record number (JSON list index, CSV data row) or, for JSONL, the line
number, so an error message points where an editor would. Labels stay raw here;
`normalize_label` maps them to "malicious" / "benign" and never guesses (a seed bug mapped
every unknown or missing label to "benign").
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

from runtime.errors import DataError
from runtime.io import iter_jsonl, read_text

TEXT_FIELDS = ("text", "prompt", "goal", "question", "instruction", "input")
LABEL_FIELDS = (
    "label", "labels", "is_malicious", "is_harmful", "harmful", "is_unsafe", "unsafe",
    "is_attack", "is_jailbreak", "is_injection", "class",
)
MALICIOUS = "malicious"
BENIGN = "benign"
_MALICIOUS_VALUES = {"malicious", "attack", "unsafe", "harmful", "jailbreak", "injection", "1", "true"}
_BENIGN_VALUES = {"benign", "safe", "0", "false"}
SUFFIXES = (".json", ".jsonl", ".csv")


def _label_key(value) -> str | None:
    """A raw label value -> the lowercased string it is compared as, or None if it has no form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, list) and len(value) == 1:
        return _label_key(value[0])
    return None


def normalize_label(value, *, file: str | Path | None = None, row: int | None = None) -> str:
    """Raw label -> "malicious" | "benign"; anything else raises DataError naming file, row, value."""
    key = _label_key(value)
    if key in _MALICIOUS_VALUES:
        return MALICIOUS
    if key in _BENIGN_VALUES:
        return BENIGN
    raise DataError(f"unknown label {value!r}", file=file, row=row)


def is_known_label(value) -> bool:
    return _label_key(value) in _MALICIOUS_VALUES | _BENIGN_VALUES


def _pick_text(obj: dict, file: Path, row: int) -> str:
    present = [k for k in TEXT_FIELDS if k in obj]
    if not present:
        raise DataError(
            f"no text field (expected one of {', '.join(TEXT_FIELDS)}; got keys {sorted(obj)})",
            file=file, row=row,
        )
    values = {k: obj[k] for k in present if obj[k] is not None and str(obj[k]).strip()}
    distinct = {" ".join(str(v).split()) for v in values.values()}
    if len(distinct) > 1:
        raise DataError(f"ambiguous text: fields {', '.join(values)} hold different values", file=file, row=row)
    return str(next(iter(values.values()))) if values else ""


def _pick_label(obj: dict, file: Path, row: int):
    """The raw label value, or None when the row has no label field."""
    present = [k for k in LABEL_FIELDS if k in obj and obj[k] is not None and obj[k] != ""]
    if not present:
        return None
    if len(present) > 1:
        # Two fields that normalize to the same label agree; anything else is a contradiction.
        norm = {normalize_label(obj[k]) if is_known_label(obj[k]) else repr(obj[k]) for k in present}
        if len(norm) > 1:
            shown = ", ".join(f"{k}={obj[k]!r}" for k in present)
            raise DataError(f"ambiguous label: {shown}", file=file, row=row)
    return obj[present[0]]


def _to_row(obj, file: Path, row: int) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"expected an object, got {type(obj).__name__}", file=file, row=row)
    text = _pick_text(obj, file, row)
    source = obj.get("source")
    return {
        "id": str(obj["id"]) if obj.get("id") not in (None, "") else f"{file.stem}-{row}",
        "text": text,
        "label": _pick_label(obj, file, row),
        "category": str(obj.get("category") or ""),
        "source": str(source) if isinstance(source, str) and source else file.stem,
        "source_file": str(file),
        "row": row,
    }


def _read_text(file: Path) -> str:
    text = read_text(file)
    if not text.strip():
        raise DataError("empty file", file=file)
    return text


def read_json(file: str | Path) -> list[dict]:
    """A JSON file holding a list of objects."""
    file = Path(file)
    text = _read_text(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"line {e.lineno}: invalid JSON: {e.msg}", file=file) from None
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of objects, got {type(data).__name__}", file=file)
    if not data:
        raise DataError("empty file (an empty list)", file=file)
    return [_to_row(obj, file, i) for i, obj in enumerate(data, start=1)]


def read_jsonl(file: str | Path) -> list[dict]:
    """One JSON object per line; blank lines are skipped; `row` is the line number."""
    file = Path(file)
    _read_text(file)  # missing, non-UTF-8 and empty files fail here with their own message
    return [_to_row(obj, file, lineno) for lineno, obj in iter_jsonl(file)]


def read_csv(file: str | Path) -> list[dict]:
    """A CSV with a header row (a UTF-8 BOM is stripped); `row` counts data rows from 1."""
    file = Path(file)
    text = _read_text(file)
    with _csv_field_limit(_MAX_CSV_FIELD):
        _check_quotes_closed(text, file)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise DataError("empty file (no header)", file=file)
        fields = [f.strip() for f in reader.fieldnames]
        rows = []
        try:
            for i, raw in enumerate(reader, start=1):
                obj = {k.strip(): v for k, v in raw.items() if k is not None}
                rows.append(_to_row({k: obj.get(k) for k in fields}, file, i))
        except csv.Error as e:
            raise DataError(f"invalid CSV: {e}", file=file, row=len(rows) + 1) from None
    if not rows:
        raise DataError("empty file (a header but no rows)", file=file)
    return rows


# The csv module refuses fields over 128 KiB; an over-long prompt is for the max_chars filter to drop
# and count, so the limit is lifted while a file is read (and put back after).
_MAX_CSV_FIELD = 2**31 - 1


@contextlib.contextmanager
def _csv_field_limit(limit: int):
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _check_quotes_closed(text: str, file: Path) -> None:
    """Raise DataError naming the row whose quoted field never closes. The lenient csv reader lets
    such a field swallow the rest of the file (the row then seems to lack its label); a strict reader
    ends in "unexpected end of data". Its other complaints (text after a closing quote) are ones the
    lenient reader accepts, so they are passed over here."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = -1  # the header is row 0; data rows count from 1 and skip blank lines, as in read_csv
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise DataError(f"unterminated quote{' in the header' if row < 0 else ''} (the quoted field "
                                f"opened on line {line} never closes and would swallow the rest of the file)",
                                file=file, row=row + 1 if row >= 0 else None) from None
            record = [e]  # a record the lenient reader keeps
        if record or row < 0:
            row += 1


_READERS = {".json": read_json, ".jsonl": read_jsonl, ".csv": read_csv}


def read_file(file: str | Path) -> list[dict]:
    """Dispatch on the suffix (.json, .jsonl, .csv)."""
    file = Path(file)
    if not file.is_file():
        raise DataError("no such file", file=file)
    reader = _READERS.get(file.suffix.lower())
    if reader is None:
        raise DataError(f"unsupported file type {file.suffix!r} (expected {', '.join(SUFFIXES)})", file=file)
    return reader(file)


def unsupported_files(paths) -> list[Path]:
    """Files inside the given directories that expand_inputs passes over (not .json, .jsonl, .csv)."""
    return sorted(f for p in map(Path, paths) if p.is_dir()
                  for f in p.rglob("*") if f.is_file() and f.suffix.lower() not in SUFFIXES)


def expand_inputs(paths) -> list[Path]:
    """Files and directories -> the data files they hold (directories: sorted, recursive)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise DataError(f"no {', '.join(SUFFIXES)} files in directory", file=p)
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise DataError("no such file or directory", file=p)
    return files
