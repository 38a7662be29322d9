"""`python -m kb_service …` runs the `kb` command line."""

from .cli import app

app()
