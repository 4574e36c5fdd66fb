"""The shape of the code, measured: no import circle in explorer/ (imports inside functions and by name count),
layers in one direction (imports by name count), no branch on a family's name outside the registry,
short UI functions, streamlit only in the UI layer, torch only where models run, and ruff clean."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "explorer"
UI_FUNCTION_LINES = 50
FUNCTION_LINES = 60  # everywhere in explorer/
TORCH_PACKAGES = ("explorer.adapters", "explorer.models", "explorer.train", "benchmarks")
# The layers, lowest first: a module imports modules of its own layer or of lower ones, never of a higher
# one. The first holds explorer's top-level modules (the trace and the effects of an intervention, the
# registry, text, decoding rules, the catalogue…); a module no layer names fails test_every_module_has_a_layer.
LAYERS = (
    ("explorer", "explorer.trace", "explorer.effects", "explorer.registry", "explorer.text", "explorer.decoding",
     "explorer.locks", "explorer.linkvalues", "explorer.routing", "explorer.catalogue", "explorer.audio",
     "explorer.diagrams", "explorer.handout", "explorer.session", "explorer.replicas"),
    ("explorer.models",),
    ("explorer.adapters",),
    ("explorer.train",),
    ("explorer.experiments",),
    ("explorer.plots",),
    ("explorer.lessons",),
    ("explorer.ui",),
    ("benchmarks",),
)  # fmt: skip
# Who imports the modules a Family record names (explorer/registry.py holds them as strings).
FAMILY_MODULE_IMPORTERS = {"adapter": "explorer.adapters.lookup", "page": "explorer.ui.pages"}
REGISTRY = "explorer.registry"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (top of the file or inside a function)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # from package import module
    return names


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in python_files("explorer")}
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def by_name_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Modules imported by their name as a string (``importlib.import_module(name)``): every string
    constant naming a module, counted as an import of the file that holds it, except the registry's
    Family records, whose ``adapter`` and ``page`` count as imports of the module that imports them
    (FAMILY_MODULE_IMPORTERS)."""
    from explorer.registry import FAMILIES

    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if name == REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                if node.value != name:
                    edges[name].add(node.value)
    for family in FAMILIES.values():
        for field, importer in FAMILY_MODULE_IMPORTERS.items():
            edges[importer].add(getattr(family, field))
    return edges


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the layer whose longest prefix names ``module``."""
    best, found = -1, None
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def layered_graph() -> dict[str, set[str]]:
    """Every import between modules of explorer/ and benchmarks/, static or by name."""
    modules = {module_name(p): p for p in python_files("explorer", "benchmarks")}
    static = {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}
    named = by_name_imports(modules)
    return {name: static[name] | named[name] for name in modules}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def explorer_graph() -> dict[str, set[str]]:
    """Every import between modules of explorer/, static (at any depth) or by name."""
    modules = {module_name(p): p for p in python_files("explorer")}
    static, named = import_graph(), by_name_imports(modules)
    return {name: static[name] | named[name] for name in modules}


def test_no_import_circle_in_explorer():
    assert find_cycle(explorer_graph()) is None


def test_the_circle_check_sees_imports_by_name():
    graph = explorer_graph()
    assert "explorer.ui.experiments" in graph["explorer.ui.pages"]  # the page a constant names
    assert "explorer.ui.decoder_page" in graph["explorer.ui.pages"]  # a Family record's page
    assert "explorer.ui.lessons_page" in graph["explorer.ui.navigation"]


def test_the_cycle_finder_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer():
    assert [name for name in layered_graph() if layer_of(name) is None] == []


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    assert upward_imports(layered_graph()) == []


def test_the_layer_check_sees_an_upward_import_by_name():
    graph = {"explorer.adapters.decoder": {"explorer.ui.decoder_page"}, "explorer.ui.view": {"explorer.trace"}}
    assert upward_imports(graph) == ["explorer.adapters.decoder (layer 2) -> explorer.ui.decoder_page (layer 7)"]
    modules = {module_name(p): p for p in python_files("explorer")}
    named = by_name_imports(modules)
    assert "explorer.ui.decoder_page" in named["explorer.ui.pages"]  # a Family record's page
    assert "explorer.adapters.decoder" in named["explorer.adapters.lookup"]  # its adapter
    assert "explorer.ui.experiments" in named["explorer.ui.pages"]  # a module name held in a constant


def family_name_branches(paths: list[Path]) -> list[str]:
    """Comparisons of a family (``loaded.family``, ``family``, ``x.family``) with a registered family's
    key written as a literal: ``== "moe"``, ``!= "encoder"``, ``in ("decoder", "moe")``."""
    from explorer.registry import FAMILIES

    def names_a_family(node: ast.AST) -> bool:
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        return name == "family" or name.endswith("_family")

    def literal_keys(node: ast.AST) -> bool:
        values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return any(isinstance(v, ast.Constant) and v.value in FAMILIES for v in values)

    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            if any(names_a_family(o) for o in operands) and any(literal_keys(o) for o in operands):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_branch_on_a_family_name_outside_the_registry():
    paths = [p for p in python_files("explorer", "benchmarks") if module_name(p) != REGISTRY] + [ROOT / "app.py"]
    assert family_name_branches(paths) == []


def test_the_branch_check_sees_each_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'a = loaded.family == "moe"\nb = family != "encoder"\nc = x.family in ("decoder", "moe")\n'
        'd = stack == "decoder"\ne = loaded.family == other\n'
    )
    found = family_name_branches([sample])
    assert [line.split(":")[1].split()[0] for line in found] == ["1", "2", "3"]


def long_functions(folder: str, limit: int) -> dict[str, str]:
    """{'path:name': 'path:line name (N lines)'} for every function (nested ones too) over ``limit`` lines."""
    long = {}
    for path in python_files(folder):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    where = path.relative_to(ROOT).as_posix()
                    long[f"{where}:{node.name}"] = f"{where}:{node.lineno} {node.name} ({length} lines)"
    return long


def test_ui_functions_are_short():
    assert not list(long_functions("explorer/ui", UI_FUNCTION_LINES).values())


def test_no_function_in_explorer_is_long():
    assert not list(long_functions("explorer", FUNCTION_LINES).values())


def test_the_function_length_check_sees_a_long_function(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES))
    (tmp_path / "pkg" / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert list(long_functions("pkg", FUNCTION_LINES)) == ["pkg/m.py:long"]


def test_only_the_ui_layer_imports_streamlit():
    offenders = [
        module_name(p)
        for p in python_files("explorer", "benchmarks")
        if any(m.split(".")[0] == "streamlit" for m in imported_modules(p))
        and not module_name(p).startswith("explorer.ui")
    ]
    assert not offenders


def test_only_model_code_imports_torch():
    offenders = [
        module_name(p)
        for p in python_files("explorer", "benchmarks")
        if any(m.split(".")[0] == "torch" for m in imported_modules(p))
        and not module_name(p).startswith(TORCH_PACKAGES)
    ]
    assert not offenders


def _ruff() -> str | None:
    beside_python = Path(sys.executable).with_name("ruff")
    return str(beside_python) if beside_python.exists() else shutil.which("ruff")


@pytest.mark.skipif(_ruff() is None, reason="ruff is not installed (pip install -r requirements-test.txt)")
def test_ruff_is_clean():
    result = subprocess.run(
        [_ruff(), "check", "--no-cache", "explorer", "app.py", "benchmarks", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(_ruff() is None, reason="ruff is not installed (pip install -r requirements-test.txt)")
def test_ruff_format_leaves_every_file_as_it_is():
    """One formatting everywhere (``ruff format``), and no per-file waivers of ruff's rules in pyproject.toml."""
    result = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", "explorer", "app.py", "benchmarks", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "per-file-ignores" not in (ROOT / "pyproject.toml").read_text()
