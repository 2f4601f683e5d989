"""The project's shape: no import cycle (imports inside functions count), no private Streamlit API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """Project modules that `path` imports anywhere: at module level or inside a function.

    An import inside a function still runs, so a cycle through one is a cycle too:
    it only fails later, at the first call, instead of at import time.
    """
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .mod import y
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def _project_files() -> dict[str, Path]:
    """catdog/, the app's pages and its entry point, by module name."""
    paths = [*(ROOT / "catdog").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "streamlit_app.py"]
    return {_module_name(p): p for p in paths}


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (module -> modules it imports), or None."""
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> list[str] | None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [name, dep] if dep in stack else [name, dep]
            if dep not in state and (cycle := visit(dep, stack + [name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            return cycle
    return None


def test_no_import_cycle_even_through_imports_inside_functions():
    files = _project_files()
    graph = {name: _imports(path, set(files)) - {name} for name, path in files.items()}
    cycle = import_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    (tmp_path / "c.py").write_text("from b import f\n")
    graph = {p.stem: _imports(p, {"a", "b", "c"}, tmp_path) for p in tmp_path.glob("*.py")}
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"b"}}
    assert import_cycle(graph) == ["a", "b", "a"]


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


def _marks(decorators: list[ast.expr]) -> set[str]:
    """pytest.mark.X names in a decorator list or a `pytestmark` value."""
    names = set()
    for node in decorators:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                names.add(sub.attr)
    return names


def _tests_and_marks(path: Path):
    """(test name, its marks with the module's, its source) for each test function of a test file."""
    tree = ast.parse(path.read_text())
    module_marks = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            module_marks |= _marks([node.value])
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            yield node, module_marks | _marks(node.decorator_list), ast.get_source_segment(path.read_text(), node) or ""


def test_tests_that_need_real_photos_or_chromium_say_so():
    missing = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path == Path(__file__).resolve():
            continue
        for node, marks, source in _tests_and_marks(path):
            args = {a.arg for a in node.args.args}
            if "shared_data" in args and "realdata" not in marks:
                missing.append(f"{path.name}::{node.name} reads real photos without the realdata mark")
            if ("chromium" in source.lower() or "playwright" in source) and "browser" not in marks:
                missing.append(f"{path.name}::{node.name} drives Chromium without the browser mark")
            if marks & {"realdata", "browser"} and "slow" not in marks:
                missing.append(f"{path.name}::{node.name} is realdata or browser but not slow")
    assert not missing, "\n".join(missing)
