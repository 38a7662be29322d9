"""The `kb` command line: every command listed, every failure one line and a non-zero exit."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.settings import Settings

COMMANDS = ("check", "index", "search", "explain", "eval", "calibrate", "impact", "serve", "reload", "report",
            "flags", "questions")


def _env(settings: Settings) -> dict[str, str]:
    return {"KB_ARTICLES_DIR": str(settings.articles_dir), "KB_LEXICON_PATH": str(settings.lexicon_path),
            "KB_INDEX_DIR": str(settings.index_dir), "KB_EMBEDDING_MODEL": settings.embedding_model,
            "KB_CONFIDENCE_PATH": str(settings.confidence_path), "KB_LOG_DB": str(settings.log_db)}


def test_python_dash_m_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "kb_service", "--help"], capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "200", "PATH": ""})
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command
    registered = {c.name or c.callback.__name__ for c in app.registered_commands} | {
        g.name for g in app.registered_groups}
    assert registered == set(COMMANDS)  # a new command is added here, and so checked in --help


def test_every_option_of_every_command_says_what_it_does() -> None:
    import typer.main

    def options(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):  # a group: kb questions …
                found += options(command, f"{prefix}{name} ")
            else:
                found += [(f"{prefix}{name}", p) for p in command.params if p.param_type_name == "option"]
        return found

    found = options(typer.main.get_command(app))
    assert len(found) > 30
    assert [(name, p.opts) for name, p in found if not (p.help or "").strip() and p.name != "help"] == []


def test_check_of_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(tmp_path / "artciles")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: no articles folder at {tmp_path / 'artciles'}"]


def test_reload_without_a_server_is_one_line_and_exit_1() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(app, ["reload", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no server answered at") and "Traceback" not in result.output


def test_index_with_a_broken_article_exits_non_zero_and_the_rest_goes_live(corpus_dir: Path,
                                                                            corpus_settings: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index"], env=_env(corpus_settings)).exit_code == 0
    write_article(corpus_dir, "new-one", "新增文章", {"新增的段落标题": "这是一段足够长的新增正文内容，用来确认其余文章照常上线。"})
    (corpus_dir / "broken.md").write_text("---\nid: broken\n---\n没有标题也没有分类", encoding="utf-8")
    result = runner.invoke(app, ["index"], env=_env(corpus_settings))
    assert result.exit_code == 1
    assert "broken.md" in result.output and "error: " in result.output
    found = runner.invoke(app, ["search", "新增的段落标题", "--json"], env=_env(corpus_settings))
    assert found.exit_code == 0 and '"article_id": "new-one"' in found.output


def test_search_says_which_hit_a_section_question_placed(corpus_dir: Path, corpus_settings: Settings) -> None:
    asked = "客户说我要投诉你们 这种投诉要多久给答复"
    (corpus_dir / "section-questions.jsonl").write_text(
        json.dumps({"query": asked, "article": "flood-claim", "heading": "水淹车理赔材料"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    runner = CliRunner()
    env = _env(corpus_settings) | {"KB_ANSWERED_SLOT": "2"}
    assert runner.invoke(app, ["index"], env=env).exit_code == 0
    result = runner.invoke(app, ["search", asked], env=env)
    assert result.exit_code == 0, result.output
    placed = [line for line in result.output.splitlines() if line.startswith("2. ")]
    assert placed and "flood-claim" in placed[0] and "nearest section question" in placed[0]
    first = next(line for line in result.output.splitlines() if line.startswith("1. "))
    assert "nearest section question" not in first
