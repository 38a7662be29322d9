"""The content-gap section of a report: gap queries grouped into topics, with the articles shown and opened.

Split from build.py; the grouping itself is gap_topics.py (by meaning) or textsim.py (bigrams).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kb_service.reports import bigram_topics
from kb_service.reports.data import GapCluster, QueryVariant, ReportOptions, ShownArticle
from kb_service.reports.neardup_cache import near_duplicate_cache
from kb_service.reports.sqlite_reader import LogReader

Catalog = Mapping[str, Mapping[str, Any]]


def _title(catalog: Catalog, article_id: str) -> str:
    entry = catalog.get(article_id)
    return str((entry or {}).get("title") or article_id)



def _topics(items: list[tuple[str, int]], reference: list[str], embedder: Any, lexicon: Any,
            display: dict[str, tuple[int, str]], cache_dir: Path | None = None,
            ) -> tuple[list[tuple[list[int], str, list[str]]], str]:
    """(member indices, label, keywords) per topic, and which method grouped them.

    With the engine's embedder: gap_topics (meaning plus lexicon, named by the medoid). Without
    one (no index built, model missing): the character-bigram grouping, said so in the report.
    """
    if embedder is not None:
        from kb_service.reports.gap_topics import ContentWords, cluster_gap_queries, vector_cache_path

        clustering = cluster_gap_queries([n for n, _ in items], [c for _, c in items], embedder,
                                         ContentWords(lexicon, cache_dir), reference,
                                         vector_cache=vector_cache_path(cache_dir, embedder) if cache_dir else None,
                                         edge_source=near_duplicate_cache(cache_dir))
        return ([(t.members, display[items[t.medoid][0]][1], t.keywords) for t in clustering.topics],
                f"语义向量（{clustering.method}）+ 领域词典")
    topics = bigram_topics.cluster_topics(items, reference, edge_source=near_duplicate_cache(cache_dir))
    return [(t.members, display[items[t.members[0]][0]][1], t.keywords) for t in topics], "字二元组（未加载向量模型）"


def gap_clusters(reader: LogReader, catalog: Catalog, options: ReportOptions, embedder: Any = None,
          lexicon: Any = None, cache_dir: Path | None = None) -> tuple[list[GapCluster], int, str]:
    rows = reader.gap_text_counts()
    if not rows:
        return [], 0, ""
    per_norm: dict[str, list[int]] = {}
    display: dict[str, tuple[int, str]] = {}
    for normalised, masked, count, non_conf, unresolved in rows:
        slot = per_norm.setdefault(normalised, [0, 0, 0])
        slot[0] += count
        slot[1] += non_conf or 0
        slot[2] += unresolved or 0
        best = display.get(normalised)
        if best is None or (count, -len(masked), masked) > (best[0], -len(best[1]), best[1]):
            display[normalised] = (count, masked)
    # IDF comes from every distinct query of the period, so words common to all questions
    # (怎么, 多少) weigh little and topic words (新能源, 网约车) weigh a lot.
    items = sorted(((n, s[0]) for n, s in per_norm.items()), key=lambda kv: (-kv[1], kv[0]))
    topics, method = _topics(items, reader.distinct_normalised(), embedder, lexicon, display, cache_dir)
    shown = _per_text(reader.gap_articles())
    opened = _per_text(reader.gap_opens())
    clusters = []
    total = sum(s[0] for s in per_norm.values())
    for members, label, keywords in topics[: options.max_gap_clusters]:
        norms = [items[i][0] for i in members]
        clusters.append(
            GapCluster(
                rank=len(clusters) + 1,
                label=label,
                keywords=keywords,
                queries=sum(per_norm[n][0] for n in norms),
                non_confident=sum(per_norm[n][1] for n in norms),
                unresolved=sum(per_norm[n][2] for n in norms),
                distinct_phrasings=len(norms),
                examples=[QueryVariant(display[n][1], n, per_norm[n][0]) for n in norms[: options.examples_per_cluster]],
                articles_shown=_top_articles(norms, shown, catalog, options.articles_per_cluster),
                articles_opened=_top_articles(norms, opened, catalog, options.articles_per_cluster),
                members=norms,
            )
        )
    return clusters, total, method


def _per_text(rows: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for normalised, article_id, n in rows:
        found.setdefault(normalised, []).append((article_id, n))
    return found


def _top_articles(norms: list[str], per_text: dict[str, list[tuple[str, int]]], catalog: Catalog,
                  limit: int) -> list[ShownArticle]:
    counts: dict[str, int] = {}
    for n in norms:
        for article_id, c in per_text.get(n, ()):
            counts[article_id] = counts.get(article_id, 0) + c
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [ShownArticle(a, _title(catalog, a), c) for a, c in top]
