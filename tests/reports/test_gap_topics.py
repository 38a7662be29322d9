"""Gap topics by meaning (reports/gap_topics.py) on hand-built logs, with a real embedder.

The embedder is the small real "use-multilingual" model (the engine's default m3e-small is
checked by hand in docs/reports.md); the lexicon is the project's own.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from kb_service.content.lexicon import load_lexicon
from kb_service.reports import build_report, render_html
from kb_service.reports.data import REPORT_TZ
from kb_service.reports.gap_topics import ContentWords, cluster_gap_queries
from kb_service.usage_log.sqlite import SQLiteLogStore
from kb_service.usage_log.store import Impression, QueryLog

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from simulate_usage import GAP_TOPICS, OUT_OF_SCOPE  # noqa: E402

DAY = dt.datetime(2026, 11, 10, 10, 0, tzinfo=REPORT_TZ).timestamp()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_service.index.embedding import load_embedder

    return load_embedder("use-multilingual", "onnx-int8", tmp_path_factory.mktemp("models"), 1)


@pytest.fixture(scope="module")
def words() -> ContentWords:
    return ContentWords(load_lexicon(ROOT / "articles" / "lexicon.yaml"))


def _topic_of(clustering, texts: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {texts[m]: k for k, t in enumerate(clustering.topics) for m in t.members}


def test_function_word_pairs_stay_apart(embedder, words: ContentWords) -> None:  # type: ignore[no-untyped-def]
    texts = ["港澳自驾保险怎么买", "车卖了保险怎么退保", "工资什么时候发", "什么时候提醒续保"]
    topic = _topic_of(cluster_gap_queries(texts, [5, 4, 3, 2], embedder, words), texts)
    assert topic["港澳自驾保险怎么买"] != topic["车卖了保险怎么退保"]
    assert topic["工资什么时候发"] != topic["什么时候提醒续保"]


def test_planted_topics_come_out_separate_and_whole(embedder, words: ContentWords) -> None:  # type: ignore[no-untyped-def]
    texts, planted = [], {}
    for gap in GAP_TOPICS:
        for phrasing in gap.phrasings:
            texts.append(phrasing)
            planted[phrasing] = gap.name
    texts += [*OUT_OF_SCOPE, "什么时候提醒续保"]
    counts = [len(t) % 5 + 1 for t in texts]
    clustering = cluster_gap_queries(texts, counts, embedder, words)
    for topic in clustering.topics:  # no topic mixes two planted gaps, or a gap with chatter
        names = {planted.get(texts[m], "chatter:" + texts[m]) for m in topic.members}
        assert len(names) == 1 or all(n.startswith("chatter:") for n in names), [texts[m] for m in topic.members]
    for gap in GAP_TOPICS:  # each planted gap's largest topic holds most of its phrasings
        sizes: dict[int, int] = {}
        for k, topic in enumerate(clustering.topics):
            sizes[k] = sum(planted.get(texts[m]) == gap.name for m in topic.members)
        assert max(sizes.values()) / len(gap.phrasings) >= 0.5, (gap.name, sizes)
    # 新能源车电池 is planted with the most phrasings and comes out whole, named by its medoid.
    (battery,) = [t for t in clustering.topics if planted.get(texts[t.medoid]) == "新能源车电池"]
    assert len(battery.members) == len(GAP_TOPICS[0].phrasings) and "新能源" in battery.keywords


def _log(db: Path) -> None:
    """Gap queries of two topics; one was opened and shown an article."""
    rows = [("q1", "港澳自驾保险怎么买", []), ("q2", "自驾去香港车险管用吗", [("art-a", 1)]),
            ("q3", "车卖了保险怎么退保", [("art-b", 2)]), ("q4", "卖车了保险能退吗", [("art-b", 2)]),
            ("q5", "车卖了保险怎么退保", [("art-b", 2)]), ("q6", "三者险赔多少", [("art-c", 1)])]
    with SQLiteLogStore(db) as store:
        for n, (qid, text, shown) in enumerate(rows):
            store.record_query(QueryLog(
                query_id=qid, ts=DAY + n * 60, agent_id="a1", session_id="s1", query_text=text,
                confident=qid == "q6", n_hits=len(shown), latency_ms=5.0, index_version="g",
                impressions=[Impression(r, a, v, f"{a}#0", 0.5) for r, (a, v) in enumerate(shown, start=1)]))
        store.record_event("q3", "art-b", "open", ts=DAY + 200)
        store.record_feedback("q3", None, False, ts=DAY + 260)


def test_report_uses_the_embedder_and_says_so(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "usage.sqlite3"
    _log(db)
    lexicon = load_lexicon(ROOT / "articles" / "lexicon.yaml")
    report = build_report(db, embedder=embedder, lexicon=lexicon)
    assert report.gap_method.startswith("语义向量") and "use-multilingual" in report.gap_method
    labels = {g.label: g for g in report.gaps}
    assert set(labels) == {"车卖了保险怎么退保", "港澳自驾保险怎么买"}, labels
    sold = labels["车卖了保险怎么退保"]
    assert sold.queries == 3 and set(sold.members) == {"车卖了保险怎么退保", "卖车了保险能退吗"}
    assert [(a.article_id, a.queries) for a in sold.articles_shown] == [("art-b", 3)]
    assert [(a.article_id, a.queries) for a in sold.articles_opened] == [("art-b", 1)]
    assert "主题分组方式：语义向量" in render_html(report)
    fallback = build_report(db)
    assert fallback.gap_method.startswith("字二元组")


def _gap_texts() -> list[str]:
    return [p for topic in GAP_TOPICS for p in topic.phrasings] + list(OUT_OF_SCOPE) + ["跑网约车出事故保险赔吗"]


def test_content_words_from_the_cache_equal_the_computed_ones(tmp_path: Path) -> None:
    lexicon = load_lexicon(ROOT / "articles" / "lexicon.yaml")
    texts = _gap_texts()
    computed = ContentWords(lexicon)
    expected = {t: computed(t) for t in texts}
    for _ in range(2):  # an empty cache file, then a full one
        cached = ContentWords(lexicon, tmp_path)
        cached.prefetch(texts)
        assert {t: cached(t) for t in texts} == expected
        assert cached.words_seen == computed.words_seen
    assert list(tmp_path.glob("report-content-words-*.sqlite3"))


def test_content_words_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Question and generic words are cut out in one fixed order (it once followed string hashes)."""
    import json
    import os
    import subprocess

    script = ("import json, sys; from kb_service.reports.gap_topics import ContentWords; "
              "print(json.dumps(sorted(ContentWords()(sys.argv[1])), ensure_ascii=False))")
    found = set()
    for seed in ("1", "2", "3", "4", "5", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", script, "跑网约车出事故保险赔吗"], env=env, check=True,
                             capture_output=True, text=True).stdout
        found.add(tuple(json.loads(out)))
    assert len(found) == 1
