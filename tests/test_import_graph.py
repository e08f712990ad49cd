"""The package's import graph flows one way: no module imports, even lazily inside a function, a
module that imports it back (directly or through others)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gcodec"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body (``from x import submodule``
    counts as importing the submodule, not the package)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in mods and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_imports_form_no_cycle():
    mods = module_files()
    assert {"gcodec", "gcodec.codec", "gcodec.train.loop", "gcodec.backends.onnx_net"} <= set(mods)
    edges = import_edges(mods)
    assert "gcodec.models.gc" in edges["gcodec.train.loop"]  # relative imports are resolved
    assert cycles(edges) == []


def test_the_decode_path_never_imports_training_or_evaluation():
    edges = import_edges(module_files())
    reached, todo = set(), ["gcodec.codec"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(edges[module])
    assert not any(m.startswith(("gcodec.train", "gcodec.eval")) for m in reached), sorted(reached)


def _reached(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others (itself included)."""
    reached, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(edges[module])
    return reached


#: Package -> packages its modules must never reach: research code stays out of the codec, evaluation out
#: of training, and the networks, backends and data sets out of both.
FORBIDDEN = {
    "gcodec.train": ("gcodec.eval",),
    "gcodec.data": ("gcodec.train", "gcodec.eval"),
    "gcodec.models": ("gcodec.train", "gcodec.eval", "gcodec.data", "gcodec.selective", "gcodec.backends"),
    "gcodec.backends": ("gcodec.train", "gcodec.eval", "gcodec.data", "gcodec.selective"),
    "gcodec.selective": ("gcodec.train", "gcodec.eval", "gcodec.data"),
}


def test_packages_import_one_way():
    edges = import_edges(module_files())
    broken = []
    for module in edges:
        for package, never in FORBIDDEN.items():
            if module == package or module.startswith(package + "."):
                bad = sorted(m for m in _reached(edges, module) if m.startswith(never))
                if bad:
                    broken.append(f"{module} -> {bad[0]}")
    assert broken == []


def test_the_package_rule_checker_sees_a_violation():
    edges = {"gcodec.train.x": {"gcodec.util"}, "gcodec.util": {"gcodec.eval.y"}, "gcodec.eval.y": set()}
    assert "gcodec.eval.y" in _reached(edges, "gcodec.train.x")
