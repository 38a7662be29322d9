"""Scripts are not imported by the suite, so a moved or renamed name would only fail when someone
runs a benchmark: every `from kb_service… import name` in scripts/ must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_every_name_scripts_import_from_the_package_exists() -> None:
    missing = []
    checked = 0
    for script in sorted(SCRIPTS.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kb_service"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    checked += 1
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{script.name}: {node.module}.{alias.name}")
    assert checked > 40
    assert missing == []
