"""runtime.config: YAML + dotted overrides -> checked dataclasses; bad keys and types name the key."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from runtime.config import ConfigError, PosInt, load_config, parse_override


@dataclass
class Inner:
    backend: str = "hf"
    """which engine"""
    kv: float = 1.0
    """kv budget"""


@dataclass
class Outer:
    lr: float = 1e-5
    """learning rate"""
    steps: int = 10
    """steps"""
    flag: bool = False
    """a flag"""
    name: str | None = None
    """optional"""
    targets: list[str] = field(default_factory=lambda: ["all-linear"])
    """modules"""
    inner: Inner = field(default_factory=Inner)
    """nested"""


def test_yaml_then_overrides_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 3.0e-4\ninner:\n  backend: vllm\n")
    cfg = load_config(Outer, f, ["steps=5", "inner.kv=2", "lr=1e-5", "targets=q_proj,v_proj", "name=x"])
    assert cfg.lr == 1e-5 and cfg.steps == 5 and cfg.inner.backend == "vllm"
    assert cfg.inner.kv == 2.0 and isinstance(cfg.inner.kv, float)  # an int is accepted for a float
    assert cfg.targets == ["q_proj", "v_proj"] and cfg.name == "x"


def test_parse_override_python_float_spelling():
    # YAML 1.1 reads "1e-5" as a string; the override parser accepts it as a number
    assert parse_override("lr=1e-5") == ("lr", 1e-5)
    assert parse_override("inner.backend=vllm") == ("inner.backend", "vllm")
    assert parse_override("name=null") == ("name", None)


@pytest.mark.parametrize("override, key", [
    ("nope=1", "nope"), ("inner.nope=1", "inner.nope"), ("steps=1.5", "steps"), ("flag=3", "flag"),
    ("lr=fast", "lr"), ("inner=3", "inner"),
])
def test_bad_keys_and_types_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(Outer, None, [override])


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Outer, bad)


def test_cli_error_is_one_line_and_exit_2():
    # A real stage config through the real entry point: wrong type -> one line, exit 2, no traceback.
    r = subprocess.run([sys.executable, "grpo/train.py", "group_size=four"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "group_size" in r.stderr and "Traceback" not in r.stderr


def test_group_size_one_is_rejected():
    from grpo.config import GRPOConfig

    with pytest.raises(ConfigError, match="group_size"):
        load_config(GRPOConfig, None, ["group_size=1"])


@dataclass
class Cli:
    out: str
    """Where."""
    sources: list[str] = field(default_factory=list)
    """Sources."""
    max_words: PosInt | None = None
    """Limit."""
    note: str | None = None
    """Free text."""
    mode: Literal["a", "b"] = "a"
    """Mode."""
    strict: bool = False
    """Strict."""


def test_parse_cli_flags_lists_text_and_bools():
    """`--key value` flags: dashes -> underscores, list values up to the next option (commas split), text
    taken verbatim (a colon stays a string), a bare bool flag is true; ranges are checked."""
    from runtime.config import parse_cli

    c = parse_cli(Cli, ["--out", "d", "--sources", "garak,pyrit", "x", "--max-words", "384",
                        "--note", "Note: keep this", "--mode=b", "--strict"])
    assert c == Cli(out="d", sources=["garak", "pyrit", "x"], max_words=384, note="Note: keep this", mode="b",
                    strict=True)
    with pytest.raises(SystemExit) as e:
        parse_cli(Cli, ["--out", "d", "--max-words", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        parse_cli(Cli, ["--out", "d", "--nope", "1"])


@dataclass
class WithSection:
    inner: Inner = field(default_factory=lambda: Inner(kv=2.5))
    """A section built by a factory with its own values."""
    budget: PosInt | None = None
    """A budget written
    over two lines."""


def test_help_shows_a_sections_factory_defaults_and_whole_docstrings():
    from runtime.config import describe, help_text

    assert [(i.key, i.section) for i in describe(WithSection)] == [
        ("inner", True), ("inner.backend", False), ("inner.kv", False), ("budget", False)]
    assert help_text(WithSection).splitlines() == [
        "  inner.backend = 'hf'  # which engine",
        "  inner.kv = 2.5  # kv budget",  # the factory's 2.5, not Inner's own 1.0
        "  budget = None  # A budget written over two lines. (>= 1)",
    ]
