"""Filters, dedup/conflicts, duplicate ids, splits, caps, balancing and the leakage check."""

from __future__ import annotations

import hashlib
import random

import pytest

from data.curate import (
    balance,
    cap_per_source,
    check_leakage,
    dedup,
    filter_reason,
    filter_rows,
    normalize_text,
    split_train_eval,
    text_key,
)
from data.readers import DataError


def row(text, label="malicious", *, id=None, source="s", category="c", file="f.jsonl"):
    return {"id": id or text[:12], "text": text, "label": label, "category": category, "source": source,
            "source_file": file, "row": 1}


def test_normalize_text_collapses_whitespace_and_keeps_case():
    assert normalize_text("  Hello \n\t World  ") == "Hello World"
    assert normalize_text("hello world") != normalize_text("Hello World")


def test_text_key_is_sha1_of_seed_and_normalized_text():
    assert text_key(" a  b ") == hashlib.sha1(b"0\x00a b").hexdigest()
    assert text_key("a b", seed=1) != text_key("a b", seed=0)


@pytest.mark.parametrize("text,reason", [
    ("", "empty_text"), ("   \n ", "empty_text"),
    ("Answer this: [INSERT PROMPT HERE]", "placeholder"), ("Do <insert task> now", "placeholder"),
    ("Fill the PLACEHOLDER in", "placeholder"), ("Now do YOUR_TASK", "placeholder"),
    ("Write about [PROMPT] in [TARGETLANGUAGE]", "placeholder"),
    # lower-case 'placeholder' is an ordinary word in a benign request
    ("Add placeholder text here?", None),
    ("one two three four five six", "too_many_words"),
    ("one two three four five", None),
])
def test_filter_reasons(text, reason):
    assert filter_reason(text, max_words=5) == reason


def test_token_filter_uses_the_given_counter_and_counts_by_reason():
    count = {"short": 3, "long one": 11}.__getitem__
    rows = [row("short"), row("long one"), row(""), row("[INSERT x]")]
    kept, counts = filter_rows(rows, max_prompt_tokens=10, count_tokens=count)
    assert [r["text"] for r in kept] == ["short"]
    assert counts == {"empty_text": 1, "too_many_chars": 0, "placeholder": 1, "too_many_words": 0,
                      "too_many_tokens": 1}
    with pytest.raises(ValueError, match="count_tokens"):
        filter_reason("x", max_prompt_tokens=3)


def test_dedup_keeps_first_row_and_counts():
    rows = [
        row("Hello  world", id="a", source="s1", category="c1", file="f1.json"),
        row("Hello world", id="b", source="s2", category="c2", file="f2.json"),
        row(" Hello world\n", id="c", source="s3", category="c3", file="f1.json"),
        row("hello world", id="d", source="s4", file="f3.json"),  # case differs: a different text
    ]
    d = dedup(rows)
    assert len(d.unique) == 2 and d.conflicts == [] and d.duplicate_ids == 0
    first = d.unique[0]
    assert (first["id"], first["source"], first["category"]) == ("a", "s1", "c1")
    assert first["text"] == "Hello  world"  # the first row's own text, stripped
    assert first["dedup_count"] == 3
    assert first["source_files"] == ["f1.json", "f2.json"]
    assert d.unique[1]["id"] == "d" and d.unique[1]["dedup_count"] == 1


def test_conflicting_labels_go_to_conflicts_only():
    rows = [
        row("Same text", "malicious", file="a.json"), row("Same  text", "benign", file="b.json"),
        row("Same text", "malicious", file="c.json"), row("Other", "benign"),
    ]
    d = dedup(rows)
    assert [u["text"] for u in d.unique] == ["Other"]
    assert d.conflicts == [{
        "text": "Same text", "labels": ["benign", "malicious"], "label_counts": {"benign": 1, "malicious": 2},
        "dedup_count": 3, "source_files": ["a.json", "b.json", "c.json"],
    }]


def test_duplicate_ids_across_different_texts_are_made_unique_and_counted():
    rows = [row("t1", id="x"), row("t2", id="x"), row("t3", id="x"), row("t4", id="x-dup2"), row("t1", id="y")]
    d = dedup(rows)
    ids = [u["id"] for u in d.unique]
    # t1 keeps x; t2 would be x-dup2 but that id belongs to t4, so x-dup3; t3 -> x-dup4; t4 keeps its id.
    assert ids == ["x", "x-dup3", "x-dup4", "x-dup2"]
    assert len(set(ids)) == len(ids)
    assert d.duplicate_ids == 2


def _rows(n_mal, n_ben, sources=("s1",)):
    out = [row(f"malicious prompt {i}", "malicious", source=sources[i % len(sources)]) for i in range(n_mal)]
    return out + [row(f"benign prompt {i}", "benign", source=sources[i % len(sources)]) for i in range(n_ben)]


def test_split_is_deterministic_by_hash_and_matches_a_naive_reference():
    rows = _rows(300, 100)
    train, evals = split_train_eval(rows, 0.2)
    expected_eval = {r["text"] for r in rows if int(hashlib.sha1(b"0\x00" + r["text"].encode()).hexdigest(), 16)
                     < 0.2 * 2**160}
    assert {r["text"] for r in evals} == expected_eval
    assert len(train) + len(evals) == 400
    assert 40 <= len(evals) <= 120  # ~80 expected; the hash is roughly uniform


def test_split_is_stable_under_any_file_order():
    rows = _rows(200, 50, sources=("a", "b"))
    train0, eval0 = split_train_eval(rows, 0.25)
    for s in range(5):
        shuffled = rows[:]
        random.Random(s).shuffle(shuffled)
        train, evals = split_train_eval(shuffled, 0.25)
        assert [r["text"] for r in train] == [r["text"] for r in train0]
        assert [r["text"] for r in evals] == [r["text"] for r in eval0]


def test_seed_changes_membership_and_eval_fraction_bounds():
    rows = _rows(200, 0)
    assert {r["text"] for r in split_train_eval(rows, 0.5, seed=0)[1]} != {
        r["text"] for r in split_train_eval(rows, 0.5, seed=1)[1]}
    assert split_train_eval(rows, 0.0)[1] == []
    with pytest.raises(ValueError):
        split_train_eval(rows, 1.0)


def test_leakage_check():
    train = [row("alpha beta"), row("gamma")]
    check_leakage(train, [row("delta")])
    with pytest.raises(DataError, match="1 eval text"):
        check_leakage(train, [row("alpha   beta"), row("delta")])


def test_cap_per_source_keeps_first_rows_in_hash_order():
    rows = [row(f"p{i}", "malicious", source="a") for i in range(10)] + [row("q", "benign", source="a")]
    kept, dropped = cap_per_source(rows, 3)
    assert dropped == 7
    mal = sorted((r for r in rows if r["label"] == "malicious"), key=lambda r: text_key(r["text"]))
    assert {r["text"] for r in kept} == {r["text"] for r in mal[:3]} | {"q"}


def test_balance_takes_all_minority_and_round_robin_majority():
    # Majority malicious: source a has 6, b has 1, c has 3; minority benign has 5.
    rows = ([row(f"a{i}", source="a") for i in range(6)] + [row("b0", source="b")]
            + [row(f"c{i}", source="c") for i in range(3)]
            + [row(f"ben{i}", "benign", source="z") for i in range(5)])
    out = balance(rows)
    mal = [r for r in out if r["label"] == "malicious"]
    assert len(out) == 10 and sum(r["label"] == "benign" for r in out) == 5 and len(mal) == 5
    # Round-robin a, b, c, a, c: 2 from a, 1 from b, 2 from c; within a source, smallest sha1 first.
    by_src = {s: sorted(r["text"] for r in mal if r["source"] == s) for s in "abc"}
    first_a = sorted((f"a{i}" for i in range(6)), key=text_key)[:2]
    first_c = sorted((f"c{i}" for i in range(3)), key=text_key)[:2]
    assert by_src == {"a": sorted(first_a), "b": ["b0"], "c": sorted(first_c)}
    # Order does not depend on input order.
    assert [r["text"] for r in balance(rows[::-1])] == [r["text"] for r in out]


def test_balance_when_benign_is_the_majority_and_when_one_label_is_missing():
    rows = _rows(2, 7)
    out = balance(rows)
    assert sum(r["label"] == "malicious" for r in out) == 2 and sum(r["label"] == "benign" for r in out) == 2
    assert balance(_rows(5, 0)) == []
