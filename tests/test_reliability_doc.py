"""docs/RELIABILITY.md's tables name tests that exist, and name every test of the fault,
security and bad-input suites: the page cannot drift from what is tested."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "RELIABILITY.md"
SUITES = ["tests/faults/test_*.py", "tests/test_security.py", "tests/test_bad_input.py",
          "tests/test_csp_browser.py", "tests/test_dependencies.py"]


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def named_in_doc() -> set[tuple[str, str]]:
    return set(re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", DOC.read_text()))


def test_every_test_the_page_names_exists():
    missing = [f"{file}::{name}" for file, name in sorted(named_in_doc())
               if not (ROOT / file).exists() or name not in functions_in(ROOT / file)]
    assert missing == []


def test_every_fault_security_and_bad_input_test_is_on_the_page():
    named = named_in_doc()
    files = sorted({path for pattern in SUITES for path in ROOT.glob(pattern)})
    assert len(files) >= 8
    absent = [f"{path.relative_to(ROOT)}::{name}" for path in files for name in sorted(functions_in(path))
              if (str(path.relative_to(ROOT)), name) not in named]
    assert absent == []


def test_the_tests_that_run_only_in_make_faults_are_marked_so_on_the_page():
    text = DOC.read_text()
    for path in (ROOT / "tests" / "faults").glob("test_*.py"):
        if "pytest.mark.faults" in path.read_text():
            for name in functions_in(path):
                assert f"`{path.relative_to(ROOT)}::{name}` **(faults)**" in text, name
