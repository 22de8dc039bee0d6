"""The import layers: which part of forgeml may import which, checked on every import statement.

``LAYERS`` is the one table (ARCHITECTURE.md quotes it): a module may import modules of its own
layer or of a lower one, never of a higher one, and no two parts may import each other, not even
through an import hidden inside a function (a function-local import delays the cost, not the
dependency). Each entry names a package or a module; a module belongs to the longest entry that
contains it, so the few stdlib-only tables that every layer reads (the family registry, the
search-space types, the metric directions) sit at the bottom although their folders sit higher.

A new package gets a line here, in the layer its imports allow; a new module inside an existing
package needs nothing. A command module named in ``forgeml.cli.COMMAND_MODULES`` belongs to the
``cli`` layer wherever it lives.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forgeml"
MAX_LINES = 400

# lowest first: (layer, its packages and modules). ARCHITECTURE.md shows this table; a test below
# keeps the two the same.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", ("forgeml", "forgeml.errors", "forgeml.console", "forgeml.fileio", "forgeml.config_base", "forgeml.extras",
                     "forgeml.datasets", "forgeml.cli_options")),
    ("tables", ("forgeml.models.families", "forgeml.tune.space", "forgeml.evaluate.directions")),
    ("config", ("forgeml.config", "forgeml.config_privacy")),
    ("runs", ("forgeml.runs",)),
    ("data", ("forgeml.data",)),
    ("features", ("forgeml.features",)),
    ("train", ("forgeml.train",)),
    ("models", ("forgeml.models",)),
    ("evaluate", ("forgeml.evaluate",)),
    ("predict", ("forgeml.predict",)),
    ("bundle", ("forgeml.bundle", "forgeml.workflow")),
    ("artifacts", ("forgeml.export", "forgeml.explain", "forgeml.api_describe", "forgeml.api_report", "forgeml.api_sklearn",
                   "forgeml.reference")),
    ("api", ("forgeml.api",)),
    ("jobs", ("forgeml.train_run", "forgeml.tune", "forgeml.compress")),
    ("serve", ("forgeml.serve",)),
    ("apps", ("forgeml.ui", "forgeml.lm")),
    ("cli", ("forgeml.cli",)),
]


def command_modules(cli: Path = PACKAGE / "cli.py") -> tuple[str, ...]:
    """``COMMAND_MODULES`` of forgeml/cli.py, read with ast (importing the CLI is not needed)."""
    for node in ast.parse(cli.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "COMMAND_MODULES":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("forgeml/cli.py has no COMMAND_MODULES")


# A command module (``export/cli.py``, registered by one line in COMMAND_MODULES) is the CLI,
# wherever its folder is: it may import anything, and nothing below the CLI may import it.
RANK: dict[str, int] = {entry: rank for rank, (_, entries) in enumerate(LAYERS) for entry in entries}
RANK.update({module: len(LAYERS) - 1 for module in command_modules()})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the forgeml module imported
    where: str  # "forgeml/data/load.py:12"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(module: str, source: str, path: Path, known: set[str], shown: str) -> list[Import]:
    """Every forgeml import in ``source``, at any depth (module top, function, class, try block),
    plus ``importlib.import_module("forgeml…")`` with a literal name. ``from pkg import name``
    counts as importing ``pkg.name`` when that is a module, else ``pkg``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]
        for target in targets:
            if target.split(".")[0] == "forgeml" and target != module:
                found.append(Import(module, target, f"{shown}:{node.lineno}"))
    return found


def layer_entry(module: str) -> str | None:
    """The longest ``LAYERS`` entry containing ``module``; the root entry ``forgeml`` is its
    ``__init__`` alone (else every new top-level module would silently be a foundation)."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[:end]) in RANK:
            return ".".join(parts[:end])
    return module if module in RANK else None


def scan(package: Path = PACKAGE, root: Path = ROOT) -> tuple[set[str], list[Import]]:
    files = {module_name(path, root): path for path in sorted(package.rglob("*.py"))}
    known = set(files)
    found = [imp for name, path in files.items() for imp in imports_of(name, path.read_text(encoding="utf-8"), path, known,
                                                                                        path.relative_to(root).as_posix())]
    return known, found


def upward(found: list[Import]) -> list[str]:
    problems = []
    for imp in found:
        source, target = layer_entry(imp.module), layer_entry(imp.target)
        if source is None or target is None:
            continue  # reported by test_every_module_has_a_layer
        if RANK[target] > RANK[source]:
            problems.append(f"{imp.where} imports {imp.target} "
                            f"(layer {LAYERS[RANK[target]][0]!r} is above {LAYERS[RANK[source]][0]!r})")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _explain(part: list[str], found: list[Import], key) -> str:
    members = set(part)
    ties = sorted({f"{imp.where} -> {imp.target}" for imp in found
                   if key(imp.module) in members and key(imp.target) in members and key(imp.module) != key(imp.target)})
    return f"{' <-> '.join(part)}: " + "; ".join(ties[:12])


@pytest.fixture(scope="module")
def scanned() -> tuple[set[str], list[Import]]:
    return scan()


def test_every_module_has_a_layer(scanned):
    known, _ = scanned
    missing = sorted(name for name in known if layer_entry(name) is None)
    assert not missing, f"give these a line in LAYERS (tests/test_layers.py) and ARCHITECTURE.md: {missing}"


def test_no_upward_import(scanned):
    _, found = scanned
    problems = upward(found)
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_no_cycle_between_parts(scanned):
    _, found = scanned
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        source, target = layer_entry(imp.module), layer_entry(imp.target)
        if source and target and source != target:
            edges[source].add(target)
    parts = cycles(edges)
    assert not parts, "import cycles between parts:\n" + "\n".join(_explain(p, found, layer_entry) for p in parts)


def test_no_cycle_between_modules(scanned):
    known, found = scanned
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        if imp.target in known:
            edges[imp.module].add(imp.target)
    parts = cycles(edges)
    assert not parts, "import cycles between modules:\n" + "\n".join(_explain(p, found, lambda m: m) for p in parts)


def test_packages_holding_a_table_import_nothing_at_their_top():
    """Importing ``forgeml.tune.space`` runs ``forgeml/tune/__init__.py`` first: a package that
    lends a module to the tables layer must not import its upper half from its ``__init__``."""
    _, found = scan()
    hosts = {entry.rpartition(".")[0] for entry in LAYERS[1][1]}
    loud = [imp.where for imp in found if imp.module in hosts]
    assert not loud, f"keep these __init__.py files free of forgeml imports: {loud}"


def test_architecture_md_shows_this_table():
    """ARCHITECTURE.md's layer table is this one, row for row: the page cannot drift."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("<!-- layers: begin")[1].split("<!-- layers: end -->")[0]
    rows = [line.strip().strip("|").split("|") for line in block.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    shown = [(cells[1].strip(), tuple(name.strip().strip("`") for name in cells[2].split(","))) for cells in rows]
    assert shown == LAYERS


def test_no_module_over_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along their subjects): {long}"


def test_a_function_local_upward_import_is_caught(tmp_path):
    """The check itself: ``from forgeml.cli import app`` inside a function of forgeml/data/ fails
    it, and a cycle made of two function-local imports is found."""
    package = tmp_path / "forgeml"
    (package / "data").mkdir(parents=True)
    (package / "features").mkdir()
    for init in (package / "__init__.py", package / "data" / "__init__.py", package / "features" / "__init__.py"):
        init.write_text("")
    (package / "cli.py").write_text("app = None\n")
    (package / "data" / "load.py").write_text("def load():\n    from forgeml.cli import app\n    from ..features import number\n    return app\n")
    (package / "features" / "number.py").write_text("def parse():\n    from forgeml.data.load import load\n")
    known, found = scan(package, tmp_path)
    problems = upward(found)
    assert any("data/load.py:2 imports forgeml.cli" in p and "'cli' is above 'data'" in p for p in problems), problems
    assert any("data/load.py:3 imports forgeml.features.number" in p for p in problems), problems
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        edges[imp.module].add(imp.target)
    assert ["forgeml.data.load", "forgeml.features.number"] in cycles(edges)
