"""The import graph: imports flow one way, runtime <- data <- reward, rollout <- grpo, sft, evals <- recipes.

Every `import` / `from ... import` of a project package in every module (at any depth: imports inside
functions count too) is checked against the layer order. A lower layer never imports a higher one,
packages of one layer never import each other (grpo and sft share code through runtime, not through
each other), and the package graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [["runtime"], ["data"], ["reward", "rollout"], ["grpo", "sft", "evals"], ["recipes"]]
LEVEL = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def project_imports(path: Path) -> set[str]:
    """Top-level project packages imported anywhere in `path`."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out |= {n.split(".")[0] for n in names if n.split(".")[0] in LEVEL}
    return out


def package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, list[str]]] = {p: {} for p in LEVEL}
    for pkg in LEVEL:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            for dep in project_imports(f) - {pkg}:
                graph[pkg].setdefault(dep, []).append(str(f.relative_to(ROOT)))
    return graph


def test_every_package_is_in_a_layer():
    on_disk = {p.parent.name for p in ROOT.glob("*/*.py")} - {"tests", "bench", ".venv", "configs"}
    assert on_disk <= set(LEVEL), f"packages without a layer: {sorted(on_disk - set(LEVEL))}"


@pytest.mark.parametrize("pkg", list(LEVEL))
def test_no_import_from_the_same_or_a_higher_layer(pkg):
    bad = {dep: files for dep, files in package_graph()[pkg].items() if LEVEL[dep] >= LEVEL[pkg]}
    assert not bad, f"{pkg} (layer {LEVEL[pkg]}) imports upward or sideways: {bad}"


def test_no_cycle():
    graph = {p: set(deps) for p, deps in package_graph().items()}
    seen, stack = set(), set()

    def visit(p: str, path: list[str]) -> None:
        assert p not in stack, f"import cycle: {' -> '.join(path + [p])}"
        if p in seen:
            return
        stack.add(p)
        for q in graph[p]:
            visit(q, path + [p])
        stack.discard(p)
        seen.add(p)

    for p in graph:
        visit(p, [])


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from grpo.loss import policy_loss\n    import sft.train\n")
    assert project_imports(f) == {"grpo", "sft"}
