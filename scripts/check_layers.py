"""Check that imports inside gptoss_lab flow one way: a module imports only its own layer or the ones below.

Every import counts, at module level or inside a function; only imports under ``if TYPE_CHECKING:``
(annotations) are exempt. Within one layer the imports must not form a cycle. A module missing from
LAYERS, or a private name (``_x``) imported from another module, is an error too.

Run by ``make lint``: ``python scripts/check_layers.py`` (exit status 1 and one line per violation).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "gptoss_lab"

LAYERS: list[tuple[str, list[str]]] = [
    ("leaves: they import only other leaves", [
        "errors", "version", "hardware", "process", "vllm_cli", "harmony_pkg", "redact", "drift", "parsers",
        "diagnose", "tools", "jupyter", "active", "api", "aio", "reach", "harmony_tokens",
    ]),
    ("settings and file layout", ["config"]),
    ("models, presets and data", ["models", "presets", "vocab", "examples", "startup", "registry"]),
    ("one server's lifecycle", ["server"]),
    ("attaching: the active server", ["attach"]),
    ("requests and what they show", ["client", "display", "harmony", "loop", "describe"]),
    ("gpt-oss-nano and the built-in tools", ["nano", "builtin", "dummy"]),
    ("notebook entry points", ["launch"]),
    ("applications", ["sampling", "agents", "doctor", "bench", "widgets", "conformance", "hosting", "cli"]),
    ("the public API", [""]),
]
"""The layers, bottom to top. A name is a module or a subpackage (all its modules); "" is ``__init__``."""


def module_name(path: Path, root: Path) -> str:
    """Return the dotted name of ``path`` inside the package at ``root`` (``""`` for the package itself)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """Return the index of the layer that holds ``module`` (a subpackage's layer holds its modules)."""
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if module == name or (name and module.startswith(name + ".")):
                return index
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports(path: Path, module: str, modules: set[str]) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line, imported module, imported name)`` for each lab import in ``path`` (name "" for a module)."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if module else []
    package = here if is_package else here[:-1]
    for node in _walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield node.lineno, alias.name.removeprefix(PACKAGE).lstrip("."), ""
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
                target = (node.module or "").removeprefix(PACKAGE).lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in modules:  # `from gptoss_lab import server`: the module server
                    yield node.lineno, sub, ""
                else:
                    yield node.lineno, target, alias.name


def private_reads(path: Path, modules: set[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line, "alias._name")`` where ``path`` reads a private name off a lab module it imported."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            base = node.module.removeprefix(PACKAGE).lstrip(".")
            aliases |= {a.asname or a.name for a in node.names if f"{base}.{a.name}".lstrip(".") in modules}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.asname and a.name.startswith(PACKAGE)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            yield node.lineno, f"{node.value.id}.{node.attr}"


def check(root: Path) -> list[str]:
    """Return one message per violation in the package at ``root``."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    modules = set(files)
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        mine = layer_of(module)
        where = path.as_posix()
        if mine is None:
            problems.append(f"{where}: module {PACKAGE}.{module} is in no layer: add it to LAYERS in {__file__}")
            continue
        for line, target, name in imports(path, module, modules):
            theirs = layer_of(target)
            shown = f"{PACKAGE}.{target}".rstrip(".")
            if name.startswith("_") and not name.startswith("__") and target != module:
                problems.append(f"{where}:{line}: imports the private name {name} from {shown}")
            if theirs is None or target == module:
                continue
            if theirs > mine:
                problems.append(f"{where}:{line}: {PACKAGE}.{module} (layer {mine}: {LAYERS[mine][0]}) imports "
                                f"{shown} (layer {theirs}: {LAYERS[theirs][0]}), a higher layer")
            elif theirs == mine and target in modules:
                graph.setdefault(module, set()).add(target)
        for line, read in private_reads(path, modules):
            problems.append(f"{where}:{line}: reads the private name {read} of another module")
    problems += [f"import cycle within one layer: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle through each strongly connected part of ``graph`` that has one."""
    found, done = [], set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and frozenset(trail) not in done:
                    done.add(frozenset(trail))
                    found.append([*trail, start])
                elif nxt not in trail and nxt > start:
                    stack.append((nxt, [*trail, nxt]))
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent / PACKAGE
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import(s) against the layers (bottom to top): "
              + " < ".join("/".join(n or "__init__" for n in names) for _, names in LAYERS), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
