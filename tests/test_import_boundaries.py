"""Import boundaries a maintainer relies on: inference loads no training or plotting code, and the
packages have no import cycles (counting imports inside functions, which run sooner or later too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.policy.conftest import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("remix", "robots", "eval", "teleop")
TRAINING_OR_PLOTTING = ("remix.policy.train", "remix.policy.data", "remix.policy.augment", "remix.core.run",
                        "remix.core.train", "remix.core.dataset", "remix.core.dro", "remix.core.plots", "matplotlib")


def test_loading_a_policy_for_inference_imports_no_training_or_plotting(tmp_path: Path) -> None:
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    code = (
        "import sys\n"
        "from remix.policy import load_policy\n"
        f"policy = load_policy({str(path)!r})\n"
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({TRAINING_OR_PLOTTING!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """Project modules `name` imports anywhere in its body, except under `if TYPE_CHECKING:`."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    paths = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "configs" not in p.parts}
    graph = {name: _imports(name, path, set(paths)) for name, path in paths.items()}
    assert _cycles(graph) == []
