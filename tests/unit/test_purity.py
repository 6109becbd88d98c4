"""sync_core stays pure: no adapters, SDKs, environment, network, files or clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SYNC_CORE = Path(__file__).resolve().parents[2] / "sync_core"
MODULES = sorted(SYNC_CORE.rglob("*.py"))

FORBIDDEN_IMPORTS = {
    "shared", "azure", "httpx", "requests", "sqlalchemy", "pyodbc", "pymysql", "psycopg", "msal",
    "os", "socket", "subprocess", "urllib", "http", "logging", "pathlib", "io", "time", "uuid", "secrets",
}  # fmt: skip
# Reading the clock or the environment from inside a decision makes it untestable; callers pass `now`.
FORBIDDEN_CALLS = {"now", "utcnow", "today", "getenv", "open"}


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _called_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                names.add(node.func.id)
    return names


def test_sync_core_has_modules_to_check() -> None:
    assert len(MODULES) > 10


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_sync_core_imports_no_adapter_sdk_or_os_module(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    assert _imported_roots(tree) & FORBIDDEN_IMPORTS == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_sync_core_never_reads_the_clock_environment_or_files(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    assert _called_names(tree) & FORBIDDEN_CALLS == set()
    assert "environ" not in {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_each_sync_core_module_says_what_it_is_for(module: Path) -> None:
    docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")))
    assert docstring and len(docstring.splitlines()) == 1


def test_the_import_scan_would_catch_a_forbidden_import() -> None:
    tree = ast.parse("import os\nfrom azure.storage.queue import QueueClient\nfrom datetime import datetime\n")
    assert _imported_roots(tree) & FORBIDDEN_IMPORTS == {"os", "azure"}
    assert "now" in _called_names(ast.parse("datetime.now(UTC)"))
