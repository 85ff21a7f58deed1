"""The package's shape stays as designed: no import cycle, and the prediction side never reaches
the training side (spaCy's and fastText's rule: loading and predicting never import training).

Imports are read from the source (every ``import`` statement, inside functions too), so a lazy
import counts like any other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lapor_nlp"

#: Modules kept for one release so that old import paths still work; each warns when imported and
#: only re-exports names from their new homes.
SHIMS = {"lapor_nlp.model", "lapor_nlp.default_model", "lapor_nlp.distributed", "lapor_nlp.serve_settings"}
#: Deprecated calls that keep working for one release: ``Router.load()`` without a path hands over
#: to ``lapor_nlp.load()``, the one entry point that may build the default model.
DEPRECATED_EDGES = {("lapor_nlp.router", "lapor_nlp")}
PREDICTION = ("lapor_nlp.router", "lapor_nlp.text", "lapor_nlp.features", "lapor_nlp.heads",
              "lapor_nlp.jurisdiction", "lapor_nlp.classifier", "lapor_nlp.artifact",
              "lapor_nlp.schemas", "lapor_nlp.taxonomy", "lapor_nlp.bundled", "lapor_nlp.agency")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The lapor_nlp modules that ``name`` imports anywhere in its source."""
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            # the deepest lapor_nlp module the name refers to
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {n: imports_of(n, p, known) for n, p in mods.items() if n not in SHIMS}
    for a, b in DEPRECATED_EDGES:
        g.get(a, set()).discard(b)
    return {a: {b for b in bs if b not in SHIMS} for a, bs in g.items()}


def test_the_import_graph_has_no_cycle():
    g = graph()
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert cycles == []


def test_prediction_never_reaches_training():
    g = graph()
    start = [m for m in g if m.startswith(PREDICTION)]
    assert "lapor_nlp.router" in start and "lapor_nlp.text.pipeline" in start
    seen, todo, via = set(start), list(start), {}
    while todo:
        m = todo.pop()
        for n in g.get(m, ()):
            if n not in seen:
                seen.add(n)
                via[n] = m
                todo.append(n)
    reached = sorted(m for m in seen if m.startswith("lapor_nlp.training"))
    paths = []
    for m in reached:
        path = [m]
        while path[-1] in via:
            path.append(via[path[-1]])
        paths.append(" <- ".join(path))
    assert paths == []


def test_the_checker_sees_lazy_imports(tmp_path):
    """The graph would be worthless if imports inside functions were missed."""
    src = tmp_path / "lapor_nlp" / "m.py"
    src.parent.mkdir()
    src.write_text("def f():\n    from .training import train\n", encoding="utf-8")
    assert imports_of("lapor_nlp.m", src, {"lapor_nlp.training", "lapor_nlp.m"}) == {"lapor_nlp.training"}


def test_old_import_paths_warn_and_still_work():
    import importlib
    import sys
    import warnings

    for name, attr in (("lapor_nlp.model", "LinearHead"), ("lapor_nlp.default_model", "ensure_default_model"),
                       ("lapor_nlp.serve_settings", "read_api_key_file"), ("lapor_nlp.distributed", "classify")):
        sys.modules.pop(name, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mod = importlib.import_module(name)
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), name
        assert callable(getattr(mod, attr))


def test_readme_is_short_and_every_doc_link_resolves():
    import re

    repo = PACKAGE.parent
    readme = repo / "README.md"
    assert readme.stat().st_size <= 12 * 1024
    pages = [readme, repo / "CHANGELOG.md", *sorted((repo / "docs").glob("*.md"))]
    assert len(pages) >= 8
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name} -> {target}")
    assert broken == []
