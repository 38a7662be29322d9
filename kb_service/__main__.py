"""`python -m kb_service …` runs the `kb` command line."""

from kb_service.cli import app

app()
