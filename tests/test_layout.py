"""The package's shape: no import cycles, imports point one way, and the README's layout matches the folders."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vqagan_lib"

# Each layer may import its own layer's siblings and anything below it, never above.
# Core modules at the top of the package (config, checkpoint, errors, fileio, runtime) are rank 0.
RANK = {"data": 1, "coding": 2, "models": 3, "answerers": 3, "training": 4, "evaluation": 4, "apps": 5}
CORE = 0


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every vqagan_lib module that `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vqagan_lib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vqagan_lib"):
            for alias in node.names:  # `from vqagan_lib.coding import bitstream` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() else node.module)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else None


def rank(module: str) -> int:
    name = layer(module)
    return RANK[name] if name else CORE


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_imports_point_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        if module in ("vqagan_lib", "vqagan_lib.__main__"):
            continue  # the package's entry points sit above everything
        for target in targets:
            same_layer = layer(module) == layer(target)  # core modules (layer None) may import each other
            if target == "vqagan_lib" or (not same_layer and rank(target) >= rank(module)):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_every_course_module_names_its_notebook():
    """Modules the notebooks grow say where; the core and the command-line plumbing belong to no one notebook."""
    course = [p for p in PACKAGE.rglob("*.py") if layer(module_name(p)) not in (None, "apps")]
    course.append(PACKAGE / "apps" / "playground.py")
    missing = [module_name(p) for p in course
               if p.name != "__init__.py" and "Introduced in notebooks/" not in p.read_text()]
    assert not missing, f"modules without an 'Introduced in notebooks/NN_...' line: {missing}"


def test_readme_layout_lists_the_subpackages():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("```")[1]
    listed = set(re.findall(r"^ +([a-z_]+)/", section, flags=re.M))
    on_disk = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == on_disk
