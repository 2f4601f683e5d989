"""The package's shape: no import cycle inside catdog/, no private Streamlit API anywhere."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """catdog modules imported at module level (lazy imports inside functions do not form cycles)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def test_catdog_has_no_import_cycle():
    files = {_module_name(p): p for p in (ROOT / "catdog").rglob("*.py")}
    graph = {name: _top_level_imports(path, set(files)) - {name} for name, path in files.items()}
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [name, dep]))
            if dep not in state:
                visit(dep, stack + [name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_private_streamlit_api_is_used():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") or part in ("build", "node_modules") for part in path.relative_to(ROOT).parts):
            continue
        text = path.read_text(errors="replace")
        if path.name != "test_layout.py" and ("streamlit.runtime" in text or "PagesManager" in text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"private Streamlit API used in {offenders}"


def test_catdog_never_imports_streamlit():
    users = [str(p.relative_to(ROOT)) for p in (ROOT / "catdog").rglob("*.py") if "import streamlit" in p.read_text()]
    assert not users
