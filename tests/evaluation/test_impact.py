"""`kb impact`: what an article edit does to search, judged before it goes live."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.evaluation.impact import ReplayQuery, run_impact
from kb_service.evaluation.runner import LabelledQuery
from kb_service.settings import Settings


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


@pytest.fixture()
def committed(corpus_dir: Path, corpus_settings: Settings) -> Settings:
    """The small corpus committed in a git repository of its own."""
    root = corpus_dir.parent
    _git(root, "init", "-q")
    _git(root, "add", "articles")
    _git(root, "commit", "-qm", "articles")
    return corpus_settings


LABELLED = [
    ReplayQuery("车被偷了理赔要什么材料", LabelledQuery("t1", "车被偷了理赔要什么材料", "colloquial", facts=(("报警证明",), ("未找回",)))),
    ReplayQuery("三者险赔什么", LabelledQuery("t2", "三者险赔什么", "short", relevant=("third-party",))),
]


def test_an_edit_that_changes_nothing_lists_nothing(committed: Settings) -> None:
    report = run_impact(committed, "HEAD", LABELLED + [ReplayQuery("投诉分几级", None, 7)])
    assert report.replayed == 3 and report.changes == []


def test_an_edit_that_breaks_a_labelled_query_names_it_as_worse(committed: Settings, corpus_dir: Path) -> None:
    write_article(corpus_dir, "theft-claim", "车辆盗抢理赔", {
        "盗抢理赔流程": "车辆被盗抢后请先联系客服登记，后续流程以系统通知为准，处理时限以实际情况为准。",
    }, aliases=["丢车", "被偷"])
    report = run_impact(committed, "HEAD", LABELLED)
    assert [c.query.label.id for c in report.worse] == ["t1"]  # type: ignore[union-attr]
    assert "[worse] t1" in report.worse[0].describe()


def test_cli_exits_non_zero_and_names_the_query(committed: Settings, corpus_dir: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(json.dumps({"id": "t1", "query": "车被偷了理赔要什么材料", "kind": "colloquial",
                                    "facts": [["报警证明"], ["未找回"]]}, ensure_ascii=False) + "\n", encoding="utf-8")
    env = {"KB_ARTICLES_DIR": str(committed.articles_dir), "KB_LEXICON_PATH": str(committed.lexicon_path),
           "KB_INDEX_DIR": str(committed.index_dir), "KB_EMBEDDING_MODEL": committed.embedding_model,
           "KB_CONFIDENCE_PATH": str(committed.confidence_path), "KB_LOG_DB": str(tmp_path / "none.sqlite3")}
    args = ["impact", "--own", str(tmp_path / "none.jsonl"), "--set", str(labelled)]
    unchanged = CliRunner().invoke(app, args, env=env)
    assert unchanged.exit_code == 0, unchanged.output
    assert "0 worse, 0 better, 0 changed" in unchanged.output
    (corpus_dir / "theft-claim.md").unlink()
    broken = CliRunner().invoke(app, args, env=env)
    assert broken.exit_code == 1
    assert "[worse] t1" in broken.output and "1 worse" in broken.output
    bad_ref = CliRunner().invoke(app, [*args[:1], "--base", "no-such-ref", *args[1:]], env=env)
    assert bad_ref.exit_code == 2 and "error: git archive" in bad_ref.output
