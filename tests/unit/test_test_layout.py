"""No test module imports another test module: a helper two test modules share lives in a module named for what it
holds (tests/gateway_world.py, tests/unit/verifier/identity_world.py, ...), never in a ``test_*.py`` file, so that
running, moving or deleting one test module never runs, breaks or drops another's tests."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1].startswith("test_")


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    """The dotted module a ``from ... import`` names, with a relative one (``from .x import``) resolved."""
    if node.level == 0:
        return node.module or ""
    package = importer.split(".")[: -node.level]
    return ".".join([*package, node.module] if node.module else package)


def test_imports_of_test_modules_are_found() -> None:
    source = (
        "import tests.unit.gateway.test_config\n"
        "from tests.unit.gateway.test_app import TOKEN\n"
        "from tests.unit.gateway import test_mcp\n"
        "from .test_actions import ALLOWED\n"
        "from tests.gateway_world import build_world\n"
        "import tests.clock\n"
    )
    assert _test_module_imports(ast.parse(source), "tests.unit.gateway.test_policies") == [
        "line 1: tests.unit.gateway.test_config",
        "line 2: tests.unit.gateway.test_app",
        "line 3: tests.unit.gateway.test_mcp",
        "line 4: tests.unit.gateway.test_actions",
    ]


def _test_module_imports(tree: ast.Module, importer: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer)
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.startswith("tests.") and
                  _is_test_module(name)]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(TESTS.parent)} {hit}" for hit in _test_module_imports(tree, _module_of(path))]
    assert not offenders, "test modules imported by other modules (move the helper out):\n" + "\n".join(offenders)
