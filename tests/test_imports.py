"""The package's shape: every module imports on its own, with no side effects, and stays small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kb_service"
MAX_MODULE_LINES = 400

IMPORT_ALL = """
import importlib, os, pkgutil, sys
import kb_service
before = dict(os.environ)
names = [m.name for m in pkgutil.walk_packages(kb_service.__path__, "kb_service.") if m.name != "kb_service.__main__"]
for name in names:
    importlib.import_module(name)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
assert not changed, f"importing kb_service changed environment variables: {changed}"
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported: it keeps global state"
print(len(names))
"""


def test_every_module_imports_without_side_effects() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE.parent)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 40


def test_no_module_is_over_the_size_limit() -> None:
    """House style: a module over ~400 lines is doing more than one thing."""
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
