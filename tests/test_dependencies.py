"""The dependency checks that work offline, in `make test`; `make audit` is the online one.

pip-audit needs vulnerability data from the network, which these machines cannot reach
(every package reads "not found"): a pip-audit run in `make test` would pass vacuously.
What `make test` checks instead, each able to fail: every requirement is pinned exactly
(so an audit anywhere is an audit of what runs), the environment holds exactly the pinned
versions (no drift between what is tested and what is audited), and `make audit` audits
both files with a pinned pip-audit in strict mode (a package it cannot look up fails it).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("requirements.txt", "requirements-demo.txt", "requirements-dev.txt")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==(?P<version>[A-Za-z0-9.+!-]+)$")


def requirements(name: str) -> list[str]:
    lines = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and not line.startswith("-r "):
            lines.append(line)
    return lines


def test_every_requirement_is_pinned_to_one_exact_version():
    loose = [line for name in FILES for line in requirements(name)
             if not PIN.match(line)]
    assert loose == []


def test_the_environment_holds_exactly_the_pinned_versions():
    drift = {}
    for name in FILES:
        for line in requirements(name):
            match = PIN.match(line)
            assert match, line
            try:
                installed = version(match["name"])
            except PackageNotFoundError:
                installed = None
            if installed != match["version"]:
                drift[match["name"]] = (match["version"], installed)
    assert drift == {}


def test_make_audit_runs_a_pinned_pip_audit_in_strict_mode_on_both_files():
    done = subprocess.run(["make", "-n", "audit"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    commands = done.stdout
    assert re.search(r"pip install --quiet pip-audit==\d", commands)
    audit = next(line for line in commands.splitlines() if "pip-audit " in line and "install" not in line)
    assert "--strict" in audit and "-r requirements.txt" in audit and "-r requirements-dev.txt" in audit


def includes(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in (ROOT / name).read_text().splitlines() if line.startswith("-r ")]


def test_each_install_level_builds_on_the_one_below():
    assert includes("requirements-demo.txt") == ["requirements.txt"]
    assert includes("requirements-dev.txt") == ["requirements-demo.txt"]
    pinned = [PIN.match(line)["name"].lower() for name in FILES for line in requirements(name)]
    assert sorted(pinned) == sorted(set(pinned)), "a package pinned in two files"


def _local_module(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(start: list[str]) -> set[str]:
    """Top-level names of the third-party modules ``start`` imports, following our own modules."""
    seen: set[Path] = set()
    todo = [p for p in (_local_module(name) for name in start) if p]
    outside: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                local = _local_module(name)
                if local:
                    todo.append(local)
                    parents = name.split(".")
                    todo.extend(p for p in (_local_module(".".join(parents[:i])) for i in range(1, len(parents))) if p)
                elif not (ROOT / name.split(".")[0]).exists() and name.split(".")[0] not in sys.stdlib_module_names:
                    outside.add(name.split(".")[0])
    return outside


def test_the_demo_install_holds_what_the_demo_and_the_fake_bungie_import():
    """`make demo` installs requirements-demo.txt only: the demo's own code (the supervisor,
    the fake Bungie.net's server) must need nothing from the test toolchain."""
    imported = _imports(["tests.demo", "bin.prod", "tests.fakebungie.__main__"])
    assert imported, "found no imports: the walk is broken"
    distributions = packages_distributions()
    demo = {PIN.match(line)["name"].lower() for name in FILES[:2] for line in requirements(name)}
    missing = {module for module in imported
               if not {d.lower() for d in distributions.get(module, [module])} & demo}
    assert missing == set()
