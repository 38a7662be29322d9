"""Proposed 相似问 from hand-built logs, and adopting one into a temp articles folder (then `kb check`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from _pg_fixtures import pg_server, pg_url  # noqa: F401 - fixtures
from conftest import write_article
from typer.testing import CliRunner

from kb_service.cli import app
from kb_service.content.articles import load_articles
from kb_service.content.validation import check_knowledge_base
from kb_service.editorial.adopt import AdoptError, adopt_question
from kb_service.editorial.proposals import find_proposals, load_current_articles
from kb_service.reports.build import make_period
from kb_service.reports.data import REPORT_TZ
from kb_service.settings import Settings
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog, open_log_store
from kb_service.usage_log.transfer import copy_log

DAY = dt.datetime(2026, 11, 10, 9, 0, tzinfo=REPORT_TZ).timestamp()
TRANSFER = {
    "过户后保单怎么处理": "车辆过户后，原保单可以办理批改把被保险人变更为新车主，也可以申请退保，退还未到期部分的保费，"
                         "具体以现行条款和保险公司规定为准。",
    "退保手续": "退保需要提供保单、身份证明和车辆转让证明等材料，退还金额按未到期天数计算，以现行条款为准。",
}


@pytest.fixture()
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    write_article(folder, "policy-transfer", "过户与退保", TRANSFER, aliases=["过户", "退保"],
                  questions={"退保手续": ["退保要什么材料"]})
    write_article(folder, "third-party", "第三者责任险", {"三者险赔什么": "三者险赔偿第三方的人身伤亡和财产损失，不赔本车损失，也不赔车上人员。"})
    return folder


def _q(store: SQLiteLogStore, qid: str, text: str, minute: int, confident: bool, shown: list[tuple[str, str]],
       session: str = "s1") -> None:
    store.record_query(QueryLog(
        query_id=qid, ts=DAY + minute * 60, agent_id="a1", session_id=session, query_text=text, confident=confident,
        n_hits=len(shown), latency_ms=4.0, index_version="g",
        impressions=[Impression(r, a, 1, p, 0.5) for r, (a, p) in enumerate(shown, start=1)]))


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    db = tmp_path / "usage.sqlite3"
    with SQLiteLogStore(db) as store:
        # 1. Twice: not confident, article shown second (its 退保手续 passage), opened, resolved.
        for n, qid in enumerate(("q1", "q2")):
            _q(store, qid, "车卖了保险怎么退", n * 30, False, [("third-party", "third-party#0"),
                                                          ("policy-transfer", "policy-transfer#1")], session=f"s{n}")
            store.record_event(qid, "policy-transfer", "open", ts=DAY + n * 1800 + 20)
            store.record_feedback(qid, "policy-transfer", True, ts=DAY + n * 1800 + 60)
        # 2. A gap (voted unresolved), then two minutes later a rephrased query resolved by the article.
        _q(store, "q3", "二手车转给别人保单咋办", 100, False, [("third-party", "third-party#0")], session="s9")
        store.record_feedback("q3", None, False, ts=DAY + 100 * 60 + 30)
        _q(store, "q4", "过户后保单怎么处理", 102, True, [("policy-transfer", "policy-transfer#0")], session="s9")
        store.record_event("q4", "policy-transfer", "open", ts=DAY + 102 * 60 + 10)
        store.record_feedback("q4", "policy-transfer", True, ts=DAY + 102 * 60 + 50)
        # 3. Not proposals: found first and confident; personal data; an existing 相似问.
        _q(store, "q5", "三者险赔什么", 200, True, [("third-party", "third-party#0")])
        store.record_event("q5", "third-party", "open", ts=DAY + 200 * 60 + 5)
        store.record_feedback("q5", "third-party", True, ts=DAY + 200 * 60 + 9)
        _q(store, "q6", "13812345678的车卖了怎么退保", 300, False, [("policy-transfer", "policy-transfer#1")])
        store.record_event("q6", "policy-transfer", "open", ts=DAY + 300 * 60 + 5)
        store.record_feedback("q6", "policy-transfer", True, ts=DAY + 300 * 60 + 9)
        _q(store, "q7", "退保要什么材料", 400, False, [("policy-transfer", "policy-transfer#1")])
        store.record_event("q7", "policy-transfer", "open", ts=DAY + 400 * 60 + 5)
        store.record_feedback("q7", "policy-transfer", True, ts=DAY + 400 * 60 + 9)
    return db


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_service.index.embedding import load_embedder

    return load_embedder("use-multilingual", "onnx-int8", tmp_path_factory.mktemp("models"), 1)


def test_proposals_from_opened_then_resolved_and_after_a_gap(log: Path, articles: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    found = find_proposals(log, make_period(None, None), load_current_articles(articles), embedder=embedder)
    summary = [(p.text, p.article_id, p.section, p.queries, p.in_query, p.after_gap) for p in found]
    assert summary == [
        ("车卖了保险怎么退", "policy-transfer", "退保手续", 2, 2, 0),
        ("二手车转给别人保单咋办", "policy-transfer", "过户后保单怎么处理", 1, 0, 1),
    ]
    assert found[0].proposal_id.startswith("p-") and found[0].query_ids == ["q1", "q2"]
    assert all("1381" not in p.text for p in found)
    # A period without the queries proposes nothing.
    assert find_proposals(log, make_period("2026-12-01", None), load_current_articles(articles)) == []
    # Without an embedder the gap and its follow-up share no content word: not proposed.
    assert [p.text for p in find_proposals(log, make_period(None, None), load_current_articles(articles))] == [
        "车卖了保险怎么退"]


def test_the_same_proposals_from_a_postgresql_log(log: Path, articles: Path, embedder, pg_url: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    store = open_log_store(pg_url)
    try:
        copy_log(log, store)
    finally:
        store.close()
    current = load_current_articles(articles)
    for period in (make_period(None, None), make_period("2026-12-01", None)):
        on_sqlite = find_proposals(log, period, current, embedder=embedder)
        assert find_proposals(pg_url, period, current, embedder=embedder) == on_sqlite


def test_an_unrelated_next_question_is_no_proposal(tmp_path: Path, articles: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "unrelated.sqlite3"
    with SQLiteLogStore(db) as store:
        _q(store, "g1", "工资什么时候发", 0, False, [], session="s1")
        _q(store, "r1", "过户后保单怎么处理", 2, True, [("policy-transfer", "policy-transfer#0")], session="s1")
        store.record_event("r1", "policy-transfer", "open", ts=DAY + 130)
        store.record_feedback("r1", "policy-transfer", True, ts=DAY + 140)
    assert find_proposals(db, make_period(None, None), load_current_articles(articles), embedder=embedder) == []


def test_adopt_writes_front_matter_bumps_version_and_check_stays_clean(articles: Path) -> None:
    before = (articles / "policy-transfer.md").read_text(encoding="utf-8")
    result = adopt_question(articles, "policy-transfer", "退保手续", "车卖了保险怎么退", today=dt.date(2026, 12, 1))
    after = (articles / "policy-transfer.md").read_text(encoding="utf-8")
    assert result.added and result.version == 2 and "+  退保手续: [退保要什么材料, 车卖了保险怎么退]" in result.diff
    assert "version: 2" in after and "updated: 2026-12-01" in after and before.count("\n") == after.count("\n")
    # A section without questions gets its own line; a text YAML would misread gets quoted.
    adopt_question(articles, "policy-transfer", "过户后保单怎么处理", "过户: 保单咋办, 急", today=dt.date(2026, 12, 1))
    (article,) = [a for a in load_articles(articles).articles if a.id == "policy-transfer"]
    asked = {s.heading_path[-1]: s.questions for s in article.sections}
    assert asked == {"过户后保单怎么处理": ("过户: 保单咋办, 急",), "退保手续": ("退保要什么材料", "车卖了保险怎么退")}
    assert article.version == 3
    report = check_knowledge_base(articles, Settings(articles_dir=articles, lexicon_path=articles / "none.yaml"))
    assert report.ok, report.problems
    # Adopting again changes nothing; an article without `questions:` gets the block.
    assert not adopt_question(articles, "policy-transfer", "退保手续", "车卖了 保险怎么退？").added
    adopt_question(articles, "third-party", "三者险赔什么", "撞了人三者险管吗")
    assert "questions:\n  三者险赔什么: [撞了人三者险管吗]\n---" in (articles / "third-party.md").read_text(encoding="utf-8")


def test_adopt_refuses_personal_data_unknown_sections_and_leaves_the_file(articles: Path) -> None:
    before = (articles / "policy-transfer.md").read_text(encoding="utf-8")
    with pytest.raises(AdoptError, match="个人信息"):
        adopt_question(articles, "policy-transfer", "退保手续", "13812345678 退保")
    with pytest.raises(AdoptError, match="没有小节"):
        adopt_question(articles, "policy-transfer", "不存在的小节", "退保")
    with pytest.raises(AdoptError, match="没有这篇文章"):
        adopt_question(articles, "no-such", "退保手续", "退保")
    assert (articles / "policy-transfer.md").read_text(encoding="utf-8") == before


def test_kb_questions_list_and_adopt(log: Path, articles: Path) -> None:
    env = {"KB_LOG_DB": str(log), "KB_ARTICLES_DIR": str(articles), "KB_EMBEDDING_MODEL": "use-multilingual",
           "KB_INDEX_DIR": str(articles.parent / "indexes")}
    runner = CliRunner()
    listed = runner.invoke(app, ["questions", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    first = listed.output.splitlines()[0]
    pid = first.split('"proposal_id": "')[1].split('"')[0]
    adopted = runner.invoke(app, ["questions", "adopt", pid], env=env)
    assert adopted.exit_code == 0, adopted.output
    assert "+  退保手续: [退保要什么材料, 车卖了保险怎么退]" in adopted.output
    assert runner.invoke(app, ["check", str(articles)], env=env).exit_code == 0
    # Now known: no longer proposed. A text for an article without --section that is no proposal: one line.
    assert pid not in runner.invoke(app, ["questions", "list", "--json"], env=env).output
    refused = runner.invoke(app, ["questions", "adopt", "随便问问", "--article", "policy-transfer"], env=env)
    assert refused.exit_code == 1 and refused.output.strip().startswith("error: 请指定小节")
    missing = runner.invoke(app, ["questions", "list"], env={**env, "KB_LOG_DB": str(log) + ".typo"})
    assert missing.exit_code == 2 and "no usage log at" in missing.output
