"""Lazy imports run one thread at a time (shared/lazy.py): first invocations on many threads never half-import.

With the lock made a no-op, the last test below failed in 10 of 10 fresh interpreters here (13 to 92 of the 182
blocks raised "cannot import name 'AdaptedConnection' from partially initialized module 'sqlalchemy.engine'" or a
_DeadlockError), and in 8 of them some module kept a half-made `sqlalchemy` for good, as in a CI run whose
ManyChat messages all went to poison with "module 'sqlalchemy' has no attribute 'select'".
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = sorted([*ROOT.glob("blueprints/*.py"), *ROOT.glob("shared/**/*.py")])


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _serial(node: ast.AST) -> bool:
    return isinstance(node, ast.With) and [ast.unparse(item.context_expr) for item in node.items] == ["serial_imports"]


def _unguarded_imports(tree: ast.Module) -> list[int]:
    """Line numbers of imports that run inside a function but not under `with serial_imports:`."""
    found: list[int] = []

    def walk(node: ast.AST, in_function: bool, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom) and in_function and not guarded:
                found.append(child.lineno)
            walk(
                child,
                in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda),
                guarded or _serial(child),
            )

    walk(tree, False, False)
    return found


def test_every_import_inside_a_deployed_function_takes_the_import_lock() -> None:
    # Command-line entry points (__main__.py) run on one thread and are left out.
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in DEPLOYED
        if path.name != "__main__.py"
        for line in _unguarded_imports(ast.parse(path.read_text()))
    ]
    assert offenders == [], f"lazy imports outside `with serial_imports:` (see shared/lazy.py): {offenders}"


def test_the_rule_finds_an_unguarded_import() -> None:
    tree = ast.parse(
        textwrap.dedent(
            """
            import os
            def ok():
                with serial_imports:
                    import json
            def bad():
                if True:
                    from shared import runtime
            """
        )
    )
    assert _unguarded_imports(tree) == [8]


# One fresh interpreter: index function_app as the host does, then run every `with serial_imports:` block of the
# deployed code on its own thread, all released at once; report the errors and any module that holds a module
# object Python no longer has (a half-made import that failed).
RACE = """
import ast, json, sys, threading
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
import function_app  # noqa: F401
from shared.lazy import serial_imports
blocks = []
for path in sorted([*root.glob("blueprints/*.py"), *root.glob("shared/**/*.py")]):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.With) and ast.unparse(node.items[0].context_expr) == "serial_imports":
            module = ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[]))
            blocks.append((f"{path.relative_to(root)}:{node.lineno}", compile(module, str(path), "exec")))
barrier = threading.Barrier(len(blocks))
errors = []
def run(name, code):
    barrier.wait()
    try:
        exec(code, {"serial_imports": serial_imports})
    except BaseException as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
threads = [threading.Thread(target=run, args=block) for block in blocks]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
stale = sorted(
    f"{name}.{attr}"
    for name, module in list(sys.modules.items())
    if name.split(".")[0] in ("shared", "blueprints")
    for attr, value in list(vars(module).items())
    if type(value) is type(sys) and sys.modules.get(value.__name__) is not value
)
print(json.dumps({"blocks": len(blocks), "errors": errors, "stale": stale}))
"""


def test_first_imports_on_every_thread_at_once_leave_no_module_half_made() -> None:
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", RACE, str(ROOT)], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["blocks"] > 100
        assert report["errors"] == []
        assert report["stale"] == []
