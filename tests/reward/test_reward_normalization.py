"""One text normalization for every detector: typographic variants change no verdict and no score.

Each variant below rewrites one kind of character of a plain-ASCII response (apostrophes, quotes,
dashes, spaces, zero-width characters, full-width forms). The markers must give the same verdict;
the classifier the same verdict and a score within 0.05 (the normalized texts are identical, so
the measured change is ~1e-7: batching only).
"""

from __future__ import annotations

import pytest

from reward.refusal import matched_marker, normalize_chars, normalize_text, refusal_probability

# Plain-ASCII responses with apostrophes, quotes, hyphens/dashes and spaces to rewrite (hand-written).
TEXTS = [
    "I won't draft a fake \"final notice\" for your tenant - it's harassment, and I'm not doing it.",
    "Here's the cake recipe you asked for - it's my grandmother's \"secret\" one: 200 g flour, 3 eggs.",
    "Sorry, but I can't help with breaking into a neighbour's Wi-Fi. You'd need the owner's permission.",
    "Can't say I've tried it, but the 'two-pan' method works: sear, then finish in the oven.",
    "Don't mix bleach with ammonia - it releases toxic gas. If you've done it, open the windows and leave the room.",
    "No. I'm not writing a message to scare your ex - that's harassment.",
    "It's 12 o'clock in London when it's 7 a.m. in New York.",
]

VARIANTS = {
    "right single quote": lambda t: t.replace("'", "\u2019"),
    "left single quote": lambda t: t.replace("'", "\u2018"),
    "reversed-9 quote": lambda t: t.replace("'", "\u201b"),
    "modifier apostrophe": lambda t: t.replace("'", "\u02bc"),
    "full-width apostrophe": lambda t: t.replace("'", "\uff07"),
    "prime": lambda t: t.replace("'", "\u2032"),
    "curly double quotes": lambda t: _pairs(t, "\u201c", "\u201d"),
    "double prime": lambda t: t.replace('"', "\u2033"),
    "full-width double quote": lambda t: t.replace('"', "\uff02"),
    "en dash": lambda t: t.replace("-", "\u2013"),
    "em dash": lambda t: t.replace("-", "\u2014"),
    "non-breaking hyphen": lambda t: t.replace("-", "\u2011"),
    "minus sign": lambda t: t.replace("-", "\u2212"),
    "non-breaking space": lambda t: t.replace(" ", "\u00a0"),
    "narrow no-break space": lambda t: t.replace(" ", "\u202f"),
    "double spaces and a tab": lambda t: t.replace(" ", "  ").replace(".  ", ".\t"),
    "zero-width space in words": lambda t: " ".join(w[:1] + "\u200b" + w[1:] for w in t.split(" ")),
    "zero-width joiner and BOM": lambda t: "\ufeff" + t.replace(" ", " \u200d"),
    "soft hyphens": lambda t: t.replace("er", "e\u00adr"),
    "upper case": lambda t: t.upper(),
}


def _pairs(text: str, left: str, right: str) -> str:
    out, open_ = [], True
    for ch in text:
        if ch == '"':
            out.append(left if open_ else right)
            open_ = not open_
        else:
            out.append(ch)
    return "".join(out)


def test_every_variant_changes_the_text():
    for name, f in VARIANTS.items():
        assert any(f(t) != t for t in TEXTS), name


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_normalizes_to_the_same_text(name):
    for t in TEXTS:
        assert normalize_text(VARIANTS[name](t)) == normalize_text(t), (name, t)


def test_normalize_chars_keeps_case_and_line_breaks():
    assert normalize_chars("I Won\u2019t\u00a0\u2014 \u201cdo\u201d it\n\nOK\u2026") == "I Won't - \"do\" it\n\nOK..."
    assert normalize_text("  I Won\u2019t\n\tDO  it ") == "i won't do it"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_markers_verdict_is_unchanged(name):
    for t in TEXTS:
        assert (matched_marker(VARIANTS[name](t)) is None) == (matched_marker(t) is None), (name, t)


@pytest.mark.slow
def test_classifier_score_moves_at_most_0_05_and_no_verdict_changes():
    variants = [(name, t, f(t)) for name, f in VARIANTS.items() for t in TEXTS]
    base = dict(zip(TEXTS, refusal_probability(TEXTS, "classifier")))
    probs = refusal_probability([v for _, _, v in variants], "classifier")
    worst = max(abs(p - base[t]) for (_, t, _), p in zip(variants, probs))
    print("largest |score change| over", len(variants), "variants:", worst)
    for (name, t, _), p in zip(variants, probs):
        assert abs(p - base[t]) <= 0.05, (name, t, p, base[t])
        assert (p >= 0.5) == (base[t] >= 0.5), (name, t)
