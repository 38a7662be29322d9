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


# The pipeline's layers, lowest first: a package may import only from layers below its own.
LAYERS = {
    "models": 0, "settings": 0, "masking": 0,
    "content": 1, "usage_log": 1,
    "query": 2,
    "index": 3,
    "search": 4,
    "assist": 5, "reports": 5,
    "editorial": 6, "evaluation": 6,
    "web": 7,
    "cli": 8, "__main__": 9,
}


def test_stages_import_only_the_stages_below_them() -> None:
    import ast

    upward = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        here = parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kb_service."):
                there = node.module.split(".")[1]
                if there != here and LAYERS[there] >= LAYERS[here]:
                    upward.add(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert upward == set()
