"""The package's shape stays as designed: no import cycle, and the prediction side never reaches
the training side (spaCy's and fastText's rule: loading and predicting never import training).

Imports are read from the source (every ``import`` statement, inside functions too), so a lazy
import counts like any other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lapor_nlp"

#: Modules kept for one release so that old import paths still work; each warns when imported and
#: only re-exports names from their new homes. They are nodes of the graph like any module (a
#: module that imports one reaches what it re-exports), but not a cycle's members.
SHIMS = {"lapor_nlp.model", "lapor_nlp.default_model", "lapor_nlp.distributed", "lapor_nlp.serve_settings"}
#: Deprecated calls that keep working for one release, as (module, function, imported module):
#: ``Router.load()`` without a path hands over to ``lapor_nlp.load()``, the one entry point that
#: may build the default model. Only that function's import is exempt, nothing else in the module.
DEPRECATED_IMPORTS = {("lapor_nlp.router", "Router.load", "lapor_nlp")}
PREDICTION = ("lapor_nlp.router", "lapor_nlp.text", "lapor_nlp.features", "lapor_nlp.heads",
              "lapor_nlp.jurisdiction", "lapor_nlp.classifier", "lapor_nlp.artifact",
              "lapor_nlp.schemas", "lapor_nlp.taxonomy", "lapor_nlp.bundled", "lapor_nlp.agency")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(tree: ast.AST, scope: str = ""):
    """(enclosing function's qualified name, node) for every import in ``tree``, including
    ``importlib.import_module("...")`` and ``__import__("...")`` with a literal name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from _imports(node, f"{scope}.{node.name}" if scope else node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield scope, node
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                yield scope, ast.Import(names=[ast.alias(name=str(node.args[0].value))])
        yield from _imports(node, scope)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The lapor_nlp modules that ``name`` imports anywhere in its source (deprecated calls'
    own imports, ``DEPRECATED_IMPORTS``, left out)."""
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for scope, node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            # the deepest lapor_nlp module the name refers to
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and (name, scope, t) not in DEPRECATED_IMPORTS:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {n: imports_of(n, p, known) for n, p in mods.items()}


def test_the_import_graph_has_no_cycle():
    g = {a: bs - SHIMS for a, bs in graph().items() if a not in SHIMS}
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


def test_the_checker_sees_lazy_and_string_imports(tmp_path):
    """The graph would be worthless if imports inside functions, by name, or through a
    deprecated call's exemption in another function were missed."""
    src = tmp_path / "lapor_nlp" / "router.py"
    src.parent.mkdir()
    known = {"lapor_nlp", "lapor_nlp.training", "lapor_nlp.router", "lapor_nlp.errors"}
    src.write_text("def f():\n    from .training import train\n", encoding="utf-8")
    assert imports_of("lapor_nlp.router", src, known) == {"lapor_nlp.training"}
    src.write_text("import importlib\ndef f():\n    importlib.import_module('lapor_nlp.training')\n",
                   encoding="utf-8")
    assert imports_of("lapor_nlp.router", src, known) == {"lapor_nlp.training"}
    src.write_text("class Router:\n    def load(self):\n        from . import load\n"
                   "    def other(self):\n        from . import load\n", encoding="utf-8")
    assert imports_of("lapor_nlp.router", src, known) == {"lapor_nlp"}


def test_no_submodule_imports_its_own_package():
    """A package's modules never import the package that contains them (upward)."""
    upward = sorted(f"{m} -> {t}" for m, ts in graph().items() for t in ts
                    if m.startswith(t + ".") and m not in SHIMS)
    assert upward == []


def test_importing_and_predicting_load_no_training_module(model_dir):
    """At run time too: the package's own __init__ is imported with any submodule."""
    import subprocess
    import sys

    code = ("import sys, lapor_nlp.router as r\n"
            f"r.Router.load({str(model_dir)!r}).predict('air pdam mati tiga hari')\n"
            "bad = sorted(m for m in sys.modules if m.startswith('lapor_nlp.training'))\n"
            "assert not bad, bad\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


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


def test_the_command_line_and_a_backlog_parent_leave_the_model_stack_unimported():
    """``lapor-nlp --help`` and the parent of ``classify --jobs N`` (which only checks the model,
    cuts the file and dispatches) import neither the router nor its numeric stack: 0.4 s of
    imports before the workers could start. ``lapor_nlp.Router`` still resolves, on first use."""
    code = (
        "import sys\n"
        "import lapor_nlp, lapor_nlp.batch.run, lapor_nlp.gc_pause\n"
        "from lapor_nlp.cli import build_parser\n"
        "build_parser(('classify',)).parse_args(['classify', 'in.csv', '-o', 'out.csv'])\n"
        "heavy = ('scipy', 'pydantic', 'sklearn', 'lapor_nlp.router', 'lapor_nlp.training')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from lapor_nlp import Router, Complaint\n"
        "print(Router.__module__, Complaint.__module__, 'Router' in dir(lapor_nlp))\n"
        # submodules as attributes, as when the package imported the router eagerly
        "print(lapor_nlp.errors.LaporError.__name__, lapor_nlp.text.Preprocessor.__name__,"
        " hasattr(lapor_nlp, 'no_such_thing'), hasattr(lapor_nlp, 'a.b'))\n"
        # only those: no deprecated module is imported (and warns) by a hasattr()
        "import warnings; warnings.simplefilter('error')\n"
        "print(hasattr(lapor_nlp, 'distributed'), hasattr(lapor_nlp, 'default_model'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.splitlines()
    assert out == ["[]", "lapor_nlp.router lapor_nlp.schemas True", "LaporError Preprocessor False False",
                   "False False"]
