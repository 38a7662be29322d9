"""`kb` command line: a thin layer over the package's functions, one module per kind of user.

Each module registers its commands on the one `app` (common.py); importing them here, in this
order, is what makes `kb --help` list every command in the order a newcomer needs them.
"""

import importlib

from kb_service.cli.common import app
from kb_service.editorial.commands import questions_app

for _commands in ("content", "search", "quality", "service", "analyst"):
    importlib.import_module(f"kb_service.cli.{_commands}")
app.add_typer(questions_app, name="questions")  # kb questions list|adopt (editorial/commands.py)

__all__ = ["app"]
