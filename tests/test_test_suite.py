"""The test suite itself: one named cast in conftest.py and one support module, so a name
means one thing everywhere (no fixture defined twice, no test file importing another)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The fake Bungie.net is a program of its own, with its own pytest plugin.
OWN_PROGRAMS = {TESTS / "fakebungie"}


def suite_files() -> list[Path]:
    return sorted(
        path for path in TESTS.rglob("*.py")
        if not any(program in path.parents for program in OWN_PROGRAMS)
    )


def is_test_module(module: str) -> bool:
    return module.rsplit(".", 1)[-1].startswith("test_")


def imported_modules(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def fixture_names(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) in ("pytest.fixture", "fixture"):
                    names.append(node.name)
    return names


def test_no_test_file_imports_from_another_test_file():
    imports = {
        f"{path.relative_to(TESTS.parent)}: {module}"
        for path in suite_files()
        for module in imported_modules(ast.parse(path.read_text()))
        if module.startswith("tests.") and is_test_module(module)
    }

    assert not imports, "shared helpers belong in tests/support.py:\n" + "\n".join(sorted(imports))


def test_each_fixture_name_is_defined_in_one_place():
    places: dict[str, list[str]] = defaultdict(list)
    for path in suite_files():
        for name in fixture_names(ast.parse(path.read_text())):
            places[name].append(str(path.relative_to(TESTS.parent)))

    defined_twice = {name: where for name, where in places.items() if len(where) > 1}

    assert not defined_twice, f"one name, one meaning (the cast is in tests/conftest.py): {defined_twice}"


def test_each_member_of_the_cast_says_what_it_is_in_one_line():
    tree = ast.parse((TESTS / "conftest.py").read_text())
    fixtures = set(fixture_names(tree))
    unexplained = [
        node.name for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in fixtures and not node.name.startswith("_")
        and not (ast.get_docstring(node) or "").strip()
    ]

    assert not unexplained, f"fixtures in conftest.py without a docstring: {unexplained}"
