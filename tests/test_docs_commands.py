"""The commands in README.md and docs/*.md agree with the code.

Every command in a ```bash / ```sh / ```shell block is read (line continuations joined, comments and
`$ ` prompts dropped, `&&` / `;` / `|` chains split). For each `python -m MODULE`, `python FILE.py` and
`torchrun ... FILE.py` command of this repository:
- the module or file exists;
- every `--flag` it uses, and every `key=value` override of a config CLI, is in that command's `--help`
  (a parse_cli command lists its keys: `--max-words` is the key `max_words`), and a `--config` file exists.
The cheap ones also run from the repository root with this interpreter and must exit 0: anything ending
in `--help` / `-h`, `python -m data.prepare ...` (its --out moved to a temp dir) and
`python -m runtime.models --list`. Training, `make` and engines are never run here.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell")
PYTHONS = {"python", "python3", ".venv/bin/python", "./.venv/bin/python", "$(BIN)/python"}
PLACEHOLDER_KEYS = {"key"}  # `[key=value ...]` in a usage line
TIMEOUT_S = 300


@dataclass(frozen=True)
class Command:
    doc: str  # "README.md:42"
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.doc}: {shlex.join(self.argv)}"


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first line, its text) for every ```bash / ```sh / ```shell block."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^\s*```+\s*(\w+)?", lines[i])
        if m is None:
            i += 1
            continue
        start, body = i + 2, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```", lines[i]):
            body.append(lines[i])
            i += 1
        if (m.group(1) or "").lower() in SHELLS:
            out.append((start, "\n".join(body)))
        i += 1
    return out


def commands(text: str, name: str = "doc") -> list[Command]:
    """The simple commands of every shell block of a Markdown text."""
    out = []
    for first, block in shell_blocks(text):
        logical, line_no = "", first
        for n, line in enumerate(block.split("\n"), start=first):
            if not logical:
                line_no = n
            if line.rstrip().endswith("\\"):
                logical += line.rstrip()[:-1] + " "
                continue
            logical += line
            text_ = re.sub(r"^\s*\$\s+", "", logical).strip()
            logical = ""
            if not text_ or text_.startswith("#"):
                continue
            lexer = shlex.shlex(text_, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            try:
                tokens = list(lexer)
            except ValueError:  # an unbalanced quote: not a command we can read
                continue
            argv: list[str] = []
            for tok in [*tokens, ";"]:
                if tok and set(tok) <= set(";&|"):
                    if argv:
                        out.append(Command(f"{name}:{line_no}", tuple(argv)))
                    argv = []
                else:
                    argv.append(tok)
    return out


def all_commands() -> list[Command]:
    return [c for doc in DOCS if doc.is_file()
            for c in commands(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)))]


@dataclass(frozen=True)
class Target:
    """A command of this repository: `-m module` or a script path, and the arguments after it."""

    kind: str  # "module" | "script"
    name: str
    args: tuple[str, ...]

    @property
    def launch(self) -> list[str]:
        return [sys.executable, "-m", self.name] if self.kind == "module" else [sys.executable, self.name]


def target(cmd: Command) -> Target | None:
    """The python module or script a command runs, or None (make, pip, vllm, git, ...)."""
    argv = list(cmd.argv)
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):  # VAR=value prefixes
        argv.pop(0)
    if not argv:
        return None
    if argv[0] in PYTHONS:
        rest = argv[1:]
        if rest[:1] == ["-m"] and len(rest) > 1:
            return Target("module", rest[1], tuple(rest[2:]))
        if rest and rest[0].endswith(".py"):
            return Target("script", rest[0], tuple(rest[1:]))
        return None
    if argv[0] == "torchrun" or argv[:3] == ["python", "-m", "torch.distributed.run"]:
        for i, tok in enumerate(argv):
            if tok.endswith(".py"):
                return Target("script", tok, tuple(argv[i + 1:]))
    return None


def in_repo(t: Target) -> bool:
    """A script, or a module of one of the repository's top-level packages (pytest, vllm, pip are not)."""
    return t.kind == "script" or (ROOT / t.name.split(".")[0]).is_dir()


def exists(t: Target) -> bool:
    if t.kind == "script":
        return (ROOT / t.name).is_file()
    path = ROOT / Path(*t.name.split("."))
    if path.with_suffix(".py").is_file() or (path / "__main__.py").is_file():
        return True
    return not in_repo(t) and importlib.util.find_spec(t.name) is not None


def _env() -> dict:
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)


@functools.cache
def help_text(kind: str, name: str) -> str:
    r = run(Target(kind, name, ()).launch + ["--help"])
    assert r.returncode == 0, f"{name} --help exited {r.returncode}: {r.stderr[-2000:]}"
    return r.stdout + r.stderr


def placeholder(tok: str) -> bool:
    """A usage placeholder rather than a value: <DIR>, FILE, [--opt], a ..., $VAR."""
    bare = tok.strip("[]")
    return (any(c in tok for c in "<>[]$") or "..." in tok or "FILE" in tok or "DIR" in tok
            or bool(re.fullmatch(r"[A-Z][A-Z0-9_,]+", bare)))


def used_options(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(--flag names, key=value keys) written in a command's arguments (usage brackets allowed)."""
    flags, keys = [], []
    for tok in args:
        tok = tok.strip("[]")
        if tok.startswith("--") and len(tok) > 2:
            flags.append(tok[2:].split("=", 1)[0])
        elif re.match(r"^[a-z_][a-z0-9_.]*=", tok) and tok.split("=", 1)[0] not in PLACEHOLDER_KEYS:
            keys.append(tok.split("=", 1)[0])
    return flags, keys


def documented(name: str, help_: str) -> bool:
    """`--name` in an argparse help, or the key `name` (dashes as underscores) in a parse_cli key list."""
    if re.search(rf"(?<![\w-])--{re.escape(name)}(?![\w-])", help_):
        return True
    return re.search(rf"^\s+{re.escape(name.replace('-', '_'))} = ", help_, re.M) is not None


def cheap(t: Target) -> bool:
    return bool(t.args) and t.args[-1] in ("--help", "-h") or t.name == "data.prepare" or (
        t.name == "runtime.models" and t.args == ("--list",))


CMDS = all_commands()
REPO = [(c, t) for c in CMDS if (t := target(c)) is not None and in_repo(t)]


def _id(pair) -> str:
    return pair[0].doc


# --- the reader ------------------------------------------------------------------------------------

def test_reader_joins_continuations_and_splits_chains():
    text = "\n".join([
        "Intro.", "```bash", "make setup && python -m data.prepare --out runs/data \\",
        "    --max-words 384   # a comment", "$ python grpo/train.py optim.lr=1e-5; echo done", "```",
        "```python", "python -m not.a.shell.block", "```", "```sh", "FOO=1 torchrun --nproc_per_node 2 sft/train.py -h",
        "```",
    ])
    got = [(c.doc, c.argv) for c in commands(text, "x.md")]
    assert got == [
        ("x.md:3", ("make", "setup")),
        ("x.md:3", ("python", "-m", "data.prepare", "--out", "runs/data", "--max-words", "384")),
        ("x.md:5", ("python", "grpo/train.py", "optim.lr=1e-5")),
        ("x.md:5", ("echo", "done")),
        ("x.md:11", ("FOO=1", "torchrun", "--nproc_per_node", "2", "sft/train.py", "-h")),
    ]
    ts = [target(c) for c in commands(text, "x.md")]
    assert ts[1] == Target("module", "data.prepare", ("--out", "runs/data", "--max-words", "384"))
    assert ts[4] == Target("script", "sft/train.py", ("-h",)) and ts[0] is None and ts[3] is None
    assert used_options(("--config", "c.yaml", "[--backend", "hf|vllm]", "optim.lr=1", "[key=value", "...]")) == (
        ["config", "backend"], ["optim.lr"])
    assert documented("max-words", "keys:\n  max_words = None  # Drop prompts ...")
    assert documented("backend", "  --backend {hf,vllm}") and not documented("back", "  --backend {hf,vllm}")


def test_the_docs_hold_repository_commands():
    assert any(c.doc.startswith("README.md") for c, _ in REPO), "no python command found in README.md"


# --- every repository command ------------------------------------------------------------------------

@pytest.mark.parametrize("pair", REPO, ids=_id)
def test_command_target_exists(pair):
    cmd, t = pair
    assert exists(t), f"{cmd}: no {t.kind} {t.name} in the repository"


@pytest.mark.parametrize("pair", REPO, ids=_id)
def test_command_options_are_in_its_help(pair):
    cmd, t = pair
    if not exists(t):
        pytest.skip(f"{t.name} does not exist (test_command_target_exists reports it)")
    flags, keys = used_options(t.args)
    flags = [f for f in flags if f not in ("help", "config")]
    if not flags and not keys:
        return
    help_ = help_text(t.kind, t.name)
    unknown = [f"--{f}" for f in flags if not documented(f, help_)]
    if re.search(r"^keys:$", help_, re.M):  # a parse_cli command: key=value tokens are config keys
        unknown += [k for k in keys if not re.search(rf"^\s+{re.escape(k)} = ", help_, re.M)]
    assert not unknown, f"{cmd}: not in `{t.name} --help`: {unknown}"
    args = list(t.args)
    for i, tok in enumerate(args):
        path = args[i + 1] if tok == "--config" and i + 1 < len(args) else tok.split("=", 1)[1] if tok.startswith(
            "--config=") else None
        if path and not placeholder(path):
            assert (ROOT / path).is_file(), f"{cmd}: config file {path} does not exist"


@pytest.mark.parametrize("pair", [p for p in REPO if cheap(p[1])], ids=_id)
def test_cheap_command_runs(pair, tmp_path):
    cmd, t = pair
    args = list(t.args)
    if any(placeholder(a) for a in args):
        pytest.skip(f"{cmd}: has placeholders")
    if t.name == "data.prepare":
        for i, a in enumerate(args):
            if a == "--out" and i + 1 < len(args):
                args[i + 1] = str(tmp_path / "out")
            elif a.startswith(("--out=", "out=")):
                args[i] = a.split("=", 1)[0] + "=" + str(tmp_path / "out")
    r = run(t.launch + args)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{(r.stdout + r.stderr)[-3000:]}"
