"""The dependency checks that work offline, in `make test`; `make audit` is the online one.

pip-audit needs vulnerability data from the network, which these machines cannot reach
(every package reads "not found"): a pip-audit run in `make test` would pass vacuously.
What `make test` checks instead, each able to fail: every requirement is pinned exactly
(so an audit anywhere is an audit of what runs), the environment holds exactly the pinned
versions (no drift between what is tested and what is audited), and `make audit` audits
both files with a pinned pip-audit in strict mode (a package it cannot look up fails it).
"""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==(?P<version>[A-Za-z0-9.+!-]+)$")


def requirements(name: str) -> list[str]:
    lines = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and not line.startswith("-r "):
            lines.append(line)
    return lines


def test_every_requirement_is_pinned_to_one_exact_version():
    loose = [line for name in ("requirements.txt", "requirements-dev.txt") for line in requirements(name)
             if not PIN.match(line)]
    assert loose == []


def test_the_environment_holds_exactly_the_pinned_versions():
    drift = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
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
