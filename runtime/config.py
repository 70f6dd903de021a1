"""Config parsing: small dataclasses, YAML files, dotted command-line overrides.

A run is described by a dataclass (one per stage, fields documented with a docstring line
under each field). `load_config(Cls, "configs/x.yaml", ["lr=1e-5", "rollout.backend=vllm"])`
reads the YAML, applies the overrides in order, and builds the dataclass, checking every key
and type. Unknown keys and wrong types raise ConfigError naming the dotted key; nothing is
silently ignored or coerced (an int is accepted where a float is expected, nothing else).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key is unknown, missing or of the wrong type (the message names it)."""


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


def build(cls: type[T], tree: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, checking keys and types."""
    hints = typing.get_type_hints(cls)
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


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple = ()) -> T:
    """YAML file (optional) + dotted overrides -> a checked `cls` instance."""
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
    return build(cls, tree)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring line written under each field (used for --help)."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    lines = src.splitlines()
    for i, line in enumerate(lines[:-1]):
        s = line.strip()
        if ":" in s and not s.startswith(("#", '"', "def ", "class ", "@")):
            name = s.split(":", 1)[0].strip()
            nxt = lines[i + 1].strip()
            if name.isidentifier() and nxt.startswith('"""'):
                docs[name] = nxt.strip('"').strip()
    return docs


def help_text(cls: type, prefix: str = "") -> str:
    out = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.append(help_text(tp, prefix + f.name + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "<required>")
        out.append(f"  {prefix}{f.name} = {default!r}  # {docs.get(f.name, '')}")
    return "\n".join(out)


def parse_cli(cls: type[T], argv: list[str] | None = None, prog: str = "") -> T:
    """`--config FILE key=value ...` -> cls. Errors print one line and exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(f"usage: {prog or sys.argv[0]} [--config FILE] [key=value ...]\n\nkeys:\n{help_text(cls)}")
        raise SystemExit(0)
    path = None
    overrides = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config":
            if i + 1 >= len(argv):
                _die("--config needs a file")
            path = argv[i + 1]
            i += 2
            continue
        if a.startswith("--config="):
            path = a.split("=", 1)[1]
        elif "=" in a:
            overrides.append(a)
        else:
            _die(f"unexpected argument '{a}' (expected --config FILE or key=value)")
        i += 1
    try:
        return load_config(cls, path, overrides)
    except ConfigError as e:
        _die(str(e))
    raise AssertionError("unreachable")


def _die(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)
