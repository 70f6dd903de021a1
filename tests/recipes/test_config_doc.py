"""docs/configuration.md: generated from the config dataclasses, and the committed file is the generated one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from recipes.config_doc import COMMAND, DEFAULT_OUT, DocError, keys, main, render, row, tables
from runtime.config import PosInt, UnitFloat


@dataclass
class Inner:
    rate: UnitFloat = 0.5
    """A share of something."""


@dataclass
class Tiny:
    steps: PosInt = 20
    """Optimizer steps;
    one per batch."""
    mode: Literal["fast", "exact"] | None = None
    """fast | exact (None: the caller's)."""
    inner: Inner = field(default_factory=lambda: Inner(rate=0.25))
    """The inner section."""


@dataclass
class Undocumented:
    documented: int = 1
    """Has a docstring."""
    bare: int = 2


def test_committed_configuration_md_is_the_generated_one():
    assert DEFAULT_OUT.read_text(encoding="utf-8") == render(), f"docs/configuration.md is stale: run {COMMAND}"


def test_a_row_by_hand():
    steps, mode, inner = keys(Tiny)  # a section's keys are its own table's
    (rate,) = keys(Inner, "inner.", inner.default)
    # type without its range, default as YAML, range from PosInt, the docstring's lines joined
    assert row(steps) == "| `steps` | `int` | `20` | >= 1 | Optimizer steps; one per batch. |"
    # `|` escaped in every cell (a bare one would end the cell); None written as YAML's null
    assert row(mode) == ("| `mode` | `str \\| None` | `null` | one of fast\\|exact | "
                         "fast \\| exact (None: the caller's). |")
    assert inner.section and inner.key == "inner"
    # a section's default is its default_factory's instance (0.25), not the inner class's own (0.5)
    assert row(rate) == "| `inner.rate` | `float` | `0.25` | in [0, 1] | A share of something. |"


def test_a_section_gets_its_own_heading_and_table():
    text = "\n".join(tables(Tiny))
    assert "### `inner`: The inner section.\n\n| key |" in text
    top, sub = text.split("### `inner`")
    assert "`steps`" in top and "`inner.rate`" not in top and "`inner.rate`" in sub


def test_a_field_without_a_docstring_is_an_error_naming_it():
    with pytest.raises(DocError, match=r"^Undocumented\.bare has no docstring"):
        keys(Undocumented)


def test_check_names_a_stale_file(tmp_path, capsys):
    out = tmp_path / "configuration.md"
    assert main(["--out", str(out), "--check"]) == 1  # missing
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert main(["--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"{out} is out of date") and err[-1].endswith(COMMAND)
