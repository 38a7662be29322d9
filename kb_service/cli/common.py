"""The `kb` app and what every command shares: settings, one-line failures, the engine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kb_service.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="车险客服知识库 kb_service")
console = Console(stderr=True)

ArticlesOpt = Annotated[Path | None, typer.Option("--articles", help="articles folder (KB_ARTICLES_DIR)")]
IndexOpt = Annotated[Path | None, typer.Option("--index-dir", help="index folder (KB_INDEX_DIR)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="embedding model (KB_EMBEDDING_MODEL)")]
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", help="onnx-int8 or torch (KB_EMBEDDING_RUNTIME)")]


def settings_from(**overrides: object) -> Settings:
    return Settings().with_overrides(**overrides)


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr and a non-zero exit: what a script or an editor can act on."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def open_engine(settings: Settings):  # type: ignore[no-untyped-def]
    """The search engine, or one line saying why the index cannot be served (none built, damaged)."""
    from kb_service.index.integrity import IndexDamagedError
    from kb_service.search.engine import IndexNotBuiltError, SearchEngine

    try:
        return SearchEngine.open(settings)
    except (IndexNotBuiltError, IndexDamagedError) as exc:
        raise fail(str(exc)) from exc


def require_folder(path: Path, what: str) -> None:
    if not Path(path).is_dir():
        raise fail(f"no {what} at {path}", 2)
