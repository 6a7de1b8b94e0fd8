"""The architecture as declared: no import cycle among modules, and the README's layout
table generated from the import contracts ([tool.importlinter] in pyproject.toml).

The layers themselves are checked by import-linter in CI (.ci/lint-imports); this file
adds what import-linter does not: a module-level cycle check with ``TYPE_CHECKING`` and
function-level imports counted, naming every cycle it finds. Run
``python -m tests.test_architecture --write`` to regenerate the README's table."""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- layout: generated from [tool.importlinter] by tests/test_architecture.py -->"
END = "<!-- layout: end -->"
COMPOSITION = "the composition"


@contextlib.contextmanager
def _tree() -> Iterator[Path]:
    """The package laid out as it installs (storage/ and config/ inside it)."""
    tree = Path(
        subprocess.run(
            ["bash", str(ROOT / ".ci" / "package-tree")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    try:
        yield tree
    finally:
        subprocess.run(["rm", "-rf", str(tree)], check=True)


def import_cycles(tree: Path) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), each sorted."""
    # grimp finds the package by import: the one at ``tree``, not the one imported already.
    imported = sys.modules.pop("edge_onboard", None)
    sys.path.insert(0, str(tree))
    try:
        graph = grimp.build_graph("edge_onboard", cache_dir=None)
    finally:
        sys.path.remove(str(tree))
        if imported is not None:
            sys.modules["edge_onboard"] = imported
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def layers() -> list[list[str]]:
    """The layers contract, top first: each layer's modules, without the package prefix."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [
        [name.strip().removeprefix("edge_onboard.") for name in layer.replace(":", "|").split("|")]
        for layer in contract["layers"]
    ]


def _folder(area: str) -> Path:
    return ROOT / area if area in ("storage", "config") else ROOT / "edge_onboard" / area


def _owns(area: str) -> str:
    source = (_folder(area) / "__init__.py").read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def layout_table() -> str:
    rows = ["| area | what it owns | what it may import |", "| --- | --- | --- |"]
    stack = layers()
    for depth, layer in enumerate(stack):
        below = [area for lower in stack[depth + 1 :] for area in lower]
        may = ", ".join(f"`{area}`" for area in below) or "nothing of the service"
        if depth == 0:
            modules = ", ".join(f"`{name}`" for name in layer)
            rows.append(
                f"| {COMPOSITION} ({modules}) | the processes and the wiring: builds every "
                f"area's services and routes | {may} |"
            )
            continue
        for area in layer:
            siblings = [f"`{other}`" for other in layer if other != area]
            note = f" (never {', '.join(siblings)})" if siblings else ""
            rows.append(f"| `{area}/` | {_owns(area)} | {may}{note} |")
    return "\n".join(rows)


def _readme_table(readme: str) -> str:
    start = readme.index(START) + len(START)
    return readme[start : readme.index(END)].strip()


def test_no_import_cycle_among_modules() -> None:
    with _tree() as tree:
        cycles = import_cycles(tree)
    assert cycles == [], "import cycles (TYPE_CHECKING imports counted):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_the_cycle_check_names_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "edge_onboard"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from edge_onboard import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge_onboard import a\n"
    )
    (package / "c.py").write_text("from edge_onboard import a\n")
    assert import_cycles(tmp_path) == [["edge_onboard.a", "edge_onboard.b"]]


def test_every_area_says_what_it_owns() -> None:
    for layer in layers()[1:]:
        for area in layer:
            assert len(_owns(area)) > 40, f"{area}/__init__.py needs a docstring"


def test_readme_layout_is_the_contract() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _readme_table(readme) == layout_table(), (
        "README's layout table differs from [tool.importlinter]: "
        "python -m tests.test_architecture --write"
    )


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    path = ROOT / "README.md"
    text = path.read_text()
    head, rest = text.split(START, 1)
    path.write_text(f"{head}{START}\n{layout_table()}\n{END}{rest.split(END, 1)[1]}")
