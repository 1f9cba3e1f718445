"""The architecture's import rules, checked on the source: a violation fails here, not in the installer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wbc_desktop"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "superqt", "pytestqt")
TENSORFLOW = ("tensorflow", "keras", "tf_keras")
MATPLOTLIB = ("matplotlib",)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def files_outside(*excluded: str) -> list[Path]:
    return [
        path
        for path in PACKAGE.rglob("*.py")
        if not any(part in excluded for part in path.relative_to(PACKAGE).parts[:-1])
    ]


def offending(paths: list[Path], roots: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        for module in imported_modules(path):
            if module.split(".")[0] in roots:
                found.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return found


def test_only_gui_imports_qt():
    assert offending(files_outside("gui"), QT) == []


def test_only_lis_imports_hl7apy_and_lis_imports_neither_gui_nor_training():
    assert offending(files_outside("lis"), ("hl7apy",)) == []
    lis = list((PACKAGE / "lis").rglob("*.py"))
    assert lis and offending(lis, QT + TENSORFLOW) == []
    assert [
        m for p in lis for m in imported_modules(p) if m.startswith(("wbc_desktop.gui", "wbc_desktop.training"))
    ] == []


def test_only_training_imports_tensorflow():
    assert offending(files_outside("training"), TENSORFLOW) == []


def test_core_and_inference_import_neither_gui_nor_training():
    paths = list((PACKAGE / "core").rglob("*.py")) + list((PACKAGE / "inference").rglob("*.py"))
    bad = [
        f"{p.relative_to(PACKAGE)} imports {m}"
        for p in paths
        for m in imported_modules(p)
        if m.startswith(("wbc_desktop.gui", "wbc_desktop.training")) or m.split(".")[0] in MATPLOTLIB
    ]
    assert bad == []


@pytest.mark.parametrize(
    "module",
    ["wbc_desktop.cli", "wbc_desktop.inference.litert", "wbc_desktop.core.pipeline", "wbc_desktop.gui.main_window"],
)
def test_runtime_modules_do_not_pull_in_tensorflow(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(any(m.split('.')[0] in {TENSORFLOW!r} for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_checker_sees_a_violation(tmp_path):
    """The rule above can fail: a file that imports Qt is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from PySide6.QtWidgets import QWidget\nimport numpy\n")
    assert imported_modules(bad) == {"PySide6.QtWidgets", "numpy"}


def module_graph() -> dict[str, set[str]]:
    """Which wbc_desktop modules each module imports (at any depth of the file; not under TYPE_CHECKING)."""

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan's strongly connected
    components, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    circles.append(sorted(group))
    return circles


def test_no_import_circles():
    assert import_circles(module_graph()) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def non_qt_bases(path: Path) -> dict[str, list[str]]:
    """Each class of a file with the bases it names that are not Qt classes (Q…) or object."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: [ast.unparse(base) for base in node.bases if not ast.unparse(base).split(".")[-1].startswith("Q")]
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }


def test_no_gui_class_mixes_in_more_than_one_non_qt_base():
    """The window contains its parts (napari's Window contains its viewer); it does not inherit them."""
    mixed = [
        f"{path.relative_to(PACKAGE)}: {name}({', '.join(bases)})"
        for path in (PACKAGE / "gui").rglob("*.py")
        for name, bases in non_qt_bases(path).items()
        if len(bases) > 1
    ]
    assert mixed == []


def test_the_mixin_check_sees_a_mixin(tmp_path):
    source = tmp_path / "window.py"
    source.write_text("class Window(CaseActions, BatchActions, QMainWindow):\n    pass\n")
    assert non_qt_bases(source) == {"Window": ["CaseActions", "BatchActions"]}
