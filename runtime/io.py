"""File I/O used by every package: JSONL in and out, and atomic writes of files and directories.

Readers name the file and line of anything malformed (DataError, exit 2 at the CLI). Writers never
leave a half-written result: a file is written to a temp file beside it and renamed; a directory is
built under `<name>.tmp-<pid>` and renamed into place, replacing an older one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.errors import DataError


def jsonl_lines(text: str) -> list[str]:
    """Split on newlines only: str.splitlines() also splits on U+2028, U+0085 and others that can
    sit raw inside a JSON string, which would cut a valid row in two."""
    return [line.rstrip("\r") for line in text.split("\n")]


def read_text(path: str | Path) -> str:
    """A UTF-8 file's text (a BOM is dropped); missing or undecodable files raise DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError("no such file", file=p)
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=p) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for every non-blank line; malformed JSON names file and line."""
    p = Path(path)
    for lineno, line in enumerate(jsonl_lines(read_text(p)), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"line {lineno}: invalid JSON: {e.msg}", file=p) from None


def read_jsonl(path: str | Path, *, required: Sequence[str] = (), allow_empty: bool = True) -> list[dict]:
    """The objects of a JSONL file; each must be an object holding the `required` keys."""
    rows = []
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {type(obj).__name__}", file=path, row=lineno)
        missing = [k for k in required if k not in obj]
        if missing:
            raise DataError(f"missing field(s) {', '.join(missing)}", file=path, row=lineno)
        rows.append(obj)
    if not rows and not allow_empty:
        raise DataError("no rows", file=path)
    return rows


def read_json(path: str | Path):
    """A JSON file's value; malformed JSON names the file."""
    p = Path(path)
    try:
        return json.loads(read_text(p))
    except json.JSONDecodeError as e:
        raise DataError(f"line {e.lineno}: invalid JSON: {e.msg}", file=p) from None


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` atomically: a temp file in the same directory, then os.replace."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_json(path: str | Path, obj, *, indent: int | None = 2) -> Path:
    """`obj` as JSON, atomically (non-finite floats are written as JSON null by the caller)."""
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Sequence[dict], *, ascii_only: bool = False) -> Path:
    """One JSON object per line, atomically. `ascii_only` escapes everything outside ASCII (no raw
    U+2028 that a reader using str.splitlines() would cut a row at)."""
    return write_text(path, "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows))


TMP_MARK = ".tmp-"


def tmp_dir_for(final: str | Path) -> Path:
    """The temp sibling a directory is built in before the rename: `<name>.tmp-<pid>`."""
    f = Path(final)
    return f.with_name(f.name + f"{TMP_MARK}{os.getpid()}")


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename the finished `tmp` to `final`, replacing an existing `final` (old copy removed last)."""
    if final.exists():
        old = final.with_name(final.name + f".old-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """`with atomic_dir(out) as tmp:` build the directory in `tmp`; it becomes `out` only when the
    block finishes without an exception (otherwise `tmp` is removed and `out` is left as it was)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir_for(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def orphan_tmp_dirs(parent: str | Path) -> list[Path]:
    """Temp dirs that a killed writer left under `parent` (`*.tmp-<pid>` whose process is gone)."""
    out = []
    p = Path(parent)
    if not p.is_dir():
        return out
    for d in p.iterdir():
        if not d.is_dir() or TMP_MARK not in d.name:
            continue
        pid = d.name.rsplit(TMP_MARK, 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            out.append(d)
    return sorted(out)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
