"""Config parsing: small dataclasses, YAML files, dotted command-line overrides, `--flag value` CLIs.

A run is described by a dataclass (one per stage, fields documented with a docstring line
under each field). `load_config(Cls, "configs/x.yaml", ["optim.lr=1e-5", "rollout.backend=vllm"])`
reads the YAML, applies the overrides in order, and builds the dataclass, checking every key,
type and range. Unknown keys, wrong types and out-of-range numbers raise ConfigError naming the
dotted key, the value and what is allowed; nothing is silently ignored or coerced (an int is
accepted where a float is expected, nothing else). Choices are `Literal[...]`; numeric limits are
`Annotated[int, Range(...)]` (aliases below), checked when the config is read, before any model loads.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml

from runtime.errors import UserError

T = TypeVar("T")


class ConfigError(UserError):
    """A config key is unknown, missing, of the wrong type or out of range (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric field: lo/hi bounds (None: unbounded), open or closed."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def __str__(self) -> str:
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


# The numeric field types of every config (the range is part of the type, so it is documented in --help).
PosInt = Annotated[int, Range(lo=1)]
"""An integer >= 1."""
NonNegInt = Annotated[int, Range(lo=0)]
"""An integer >= 0 (0 usually means off)."""
PosFloat = Annotated[float, Range(lo=0, lo_open=True)]
"""A number > 0."""
NonNegFloat = Annotated[float, Range(lo=0)]
"""A number >= 0."""
UnitFloat = Annotated[float, Range(lo=0, hi=1)]
"""A number in [0, 1]."""
OpenUnitFloat = Annotated[float, Range(lo=0, hi=1, lo_open=True, hi_open=True)]
"""A number in (0, 1)."""


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        child = node.setdefault(k, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{dotted}': '{k}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=1e-5' -> ('a.b', 1e-05). Values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip().lstrip("-")
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML reads 1e-5 as a string (it wants 1.0e-5); accept the plain Python spelling too.
    if isinstance(value, str):
        try:
            lit = ast.literal_eval(raw.strip())
            if isinstance(lit, int | float) and not isinstance(lit, bool):
                value = lit
        except (ValueError, SyntaxError):
            pass
    return key, value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against annotation `tp`; return it (nested dataclasses are built)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        value = _coerce(value, base, key)
        for r in extras:
            if isinstance(r, Range) and not r.contains(value):
                raise ConfigError(f"config key '{key}': must be {r}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:  # `X | None`: X's own message (`must be >= 1, got 0`, not `expected Optional`)
            raise ConfigError(errors[0])
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"config key '{key}': expected one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str | int | float) and not isinstance(value, bool) and origin is list:
            # "a,b,c" on the command line
            value = [v.strip() for v in str(value).split(",") if v.strip()] if isinstance(value, str) else [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a section, got {value!r}")
        return build(tp, value, prefix=key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    return value


def _ranges(tp: Any) -> list[Range]:
    """The Ranges of a field type: Annotated[X, Range(...)], optionally `| None`."""
    if typing.get_origin(tp) is Annotated:
        return [r for r in typing.get_args(tp)[1:] if isinstance(r, Range)]
    if typing.get_origin(tp) in (Union, types.UnionType):
        return [r for a in typing.get_args(tp) for r in _ranges(a)]
    return []


def check_ranges(obj: Any, prefix: str = "") -> None:
    """load_config's range check for a config dataclass built in code (its own numeric fields):
    ConfigError `config key '<prefix><field>': must be <range>, got <value>`."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not isinstance(value, int | float):  # None, or a Literal choice beside a ranged number ("auto")
            continue
        for r in _ranges(hints[f.name]):
            if not r.contains(value):
                raise ConfigError(f"config key '{prefix}{f.name}': must be {r}, got {value!r}")


def build(cls: type[T], tree: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, checking keys and types."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in tree.items():
        if k not in fields:
            raise ConfigError(f"unknown config key '{prefix}{k}' (known: {', '.join(sorted(fields))})")
        kwargs[k] = _coerce(v, hints[k], prefix + k)
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing config key '{prefix}{missing[0]}'")
    obj = cls(**kwargs)
    post = getattr(obj, "validate", None)
    if callable(post):
        post()
    return obj


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple = (),
                values: list[tuple[str, Any]] | tuple = ()) -> T:
    """YAML file (optional) + dotted overrides (`key=value` texts, then already parsed (key, value)
    pairs) -> a checked `cls` instance."""
    tree: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file '{p}' does not exist")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"config file '{p}' is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file '{p}' must hold a mapping at the top level")
        tree = loaded
    for ov in overrides:
        key, value = parse_override(ov)
        _set_dotted(tree, key, value)
    for key, value in values:
        _set_dotted(tree, key, value)
    return build(cls, tree)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field, whitespace collapsed to one line (for --help and
    docs/configuration.md). Inherited fields (PromptSettings, ...) keep their docs."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


MISSING = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config key as --help and docs/configuration.md show it."""

    key: str
    """Dotted key (optim.lr)."""
    owner: str
    """Name of the dataclass that declares the field."""
    type: Any
    """The field's annotation (Annotated ranges and Literal choices included)."""
    default: Any
    """The default value (MISSING when the key is required); a section's default instance for a section."""
    doc: str | None
    """The field's docstring (None when it has none)."""
    section: bool
    """True for a nested dataclass: its keys follow as `key.<field>`."""


def describe(cls: type, prefix: str = "", instance: Any = None) -> list[FieldInfo]:
    """Every key of config dataclass `cls`, depth first: a section's own entry, then its keys.

    Defaults are those of `instance` (default: the fields' own), so a section built by a
    default_factory with other values (SFT's OptimConfig(lr=5e-5)) shows the values a run gets."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if instance is not None:
            default = getattr(instance, f.name)
        elif f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        tp = hints[f.name]
        section = dataclasses.is_dataclass(tp)
        owner = next(b for b in cls.__mro__ if f.name in vars(b).get("__annotations__", {}))
        out.append(FieldInfo(prefix + f.name, owner.__name__, tp, default, docs.get(f.name), section))
        if section:
            out += describe(tp, prefix + f.name + ".", None if default is MISSING else default)
    return out


def help_text(cls: type, prefix: str = "") -> str:
    return "\n".join(
        f"  {i.key} = {'<required>' if i.default is MISSING else repr(i.default)}  # {i.doc or ''}"
        + (f" ({allowed(i.type)})" if allowed(i.type) else "")
        for i in describe(cls, prefix) if not i.section)


def allowed(tp: Any) -> str:
    """'> 0', 'one of a|b', ... (empty when the type says nothing more): --help and the config reference."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return ", ".join(str(r) for r in typing.get_args(tp)[1:] if isinstance(r, Range))
    if origin is Literal:
        return "one of " + "|".join(map(str, typing.get_args(tp)))
    if origin in (Union, types.UnionType):
        parts = [allowed(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(p for p in parts if p)
    if origin in (list, tuple) and typing.get_args(tp):
        item = allowed(typing.get_args(tp)[0])
        return f"each {item}" if item else ""
    return ""


def _field_type(cls: type, dotted: str) -> Any:
    """The annotation of dotted key `dotted` in dataclass `cls` (None when there is no such key)."""
    tp: Any = cls
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp, include_extras=True)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def _strip(tp: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


def _is_text(tp: Any) -> bool:
    tp = _strip(tp)
    return tp is str or (typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in typing.get_args(tp)))


def parse_cli(cls: type[T], argv: list[str] | None = None, prog: str = "") -> T:
    """`[--config FILE] [key=value ...] [--key value ...]` -> cls. Errors print one line and exit 2.

    `--max-words 384` is `max_words=384` (dashes become underscores, dotted keys work too); a bool
    field given as a bare `--flag` is true. A value given to a text field after `--key` is taken
    verbatim (no YAML parsing, so `--system-prompt "Note: ..."` stays a string)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(f"usage: {prog or sys.argv[0]} [--config FILE] [key=value ...] [--key value ...]\n\n"
              f"keys:\n{help_text(cls)}")
        raise SystemExit(0)
    path = None
    overrides: list[str] = []
    tree_values: list[tuple[str, Any]] = []  # (key, value) in the order given, verbatim text values
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" or a.startswith("--config="):
            if a == "--config" and i + 1 >= len(argv):
                _die("--config needs a file")
            path = a.split("=", 1)[1] if "=" in a else argv[i + 1]
            i += 1 if "=" in a else 2
            continue
        if a.startswith("--"):
            name, has_eq, raw = a[2:].partition("=")
            key = name.replace("-", "_")
            tp = _field_type(cls, key)
            if tp is None:
                _die(f"unknown option '--{name}' (see --help)")
            if not has_eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if _strip(tp) is bool and (nxt is None or nxt.startswith("--") or nxt not in ("true", "false")):
                    tree_values.append((key, True))
                    i += 1
                    continue
                if nxt is None:
                    _die(f"option '--{name}' needs a value")
                if typing.get_origin(_strip(tp)) is list:  # --inputs a.jsonl b/ : every value up to the next option
                    vals = []  # commas separate items too, as in key=a,b: --sources garak,pyrit
                    while i + 1 < len(argv) and not argv[i + 1].startswith("--") and "=" not in argv[i + 1]:
                        vals += [v.strip() for v in argv[i + 1].split(",") if v.strip()]
                        i += 1
                    item = (typing.get_args(_strip(tp)) or (str,))[0]
                    tree_values.append((key, vals if _is_text(item) else [parse_override(f"x={v}")[1] for v in vals]))
                    i += 1
                    continue
                raw = nxt
                i += 1
            tree_values.append((key, raw if _is_text(tp) else parse_override(f"{key}={raw}")[1]))
        elif "=" in a:
            tree_values.append(parse_override(a))
        else:
            _die(f"unexpected argument '{a}' (expected --config FILE, key=value or --key value)")
        i += 1
    try:
        return load_config(cls, path, overrides, values=tree_values)
    except ConfigError as e:
        _die(str(e))
    raise AssertionError("unreachable")


def _die(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)
