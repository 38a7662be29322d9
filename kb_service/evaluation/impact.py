"""Search impact of an article change, before it goes live (`kb impact`).

An editor rewording a section cannot see which questions it will win or lose. This builds the
knowledge base twice in scratch folders — the articles as of a git ref, and as they are in the
working tree — replays the labelled sets and the most frequent real (masked) queries from the usage
log against both, and lists every query whose top answer, top section or confidence verdict
changes. Labelled queries are judged as `kb eval` judges them, so a change is «better» or «worse»
for them; `kb impact` exits non-zero when any labelled query gets worse, which is what a CI job on
the articles wants.

Both builds reuse the main index's embedding cache and exported model (copied, never written), so
only the texts the change touched are embedded.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from kb_service.evaluation.runner import LabelledQuery, answers
from kb_service.index.builder import build_index
from kb_service.search.engine import SearchEngine
from kb_service.settings import Settings

NOT_FOUND = 11  # rank of an answer outside the top 10


@dataclass(frozen=True)
class ReplayQuery:
    text: str
    label: LabelledQuery | None = None  # None: a real query from the log (no judgement)
    asked: int = 0  # how often the log holds it


@dataclass(frozen=True)
class Outcome:
    """What one query shows on one build."""

    article_id: str | None
    heading: str | None
    confident: bool
    confidence: float
    answer_rank: int = NOT_FOUND  # labelled queries: rank of the first answering hit


@dataclass(frozen=True)
class Change:
    query: ReplayQuery
    before: Outcome
    after: Outcome
    verdict: str  # better, worse or changed

    def describe(self) -> str:
        who = self.query.label.id if self.query.label else f"log ×{self.query.asked}"

        def shown(o: Outcome) -> str:
            state = "" if o.confident else " (not confident)"
            rank = f", answer at {o.answer_rank}" if self.query.label and o.answer_rank < NOT_FOUND else (
                ", no answer in top 10" if self.query.label and not self.query.label.negative else "")
            return f"{o.article_id} › {o.heading}{state}{rank}"

        return f"[{self.verdict}] {who} 「{self.query.text[:60]}」: {shown(self.before)} → {shown(self.after)}"


@dataclass
class ImpactReport:
    base: str
    replayed: int
    changes: list[Change] = field(default_factory=list)

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "worse"]


def outcome(engine: SearchEngine, query: ReplayQuery) -> Outcome:
    response = engine.search(query.text, k=10, truncate=len(query.text.strip()) > engine.settings.max_query_chars)
    top = response.hits[0] if response.hits else None
    rank = NOT_FOUND
    if query.label is not None and not query.label.negative:
        rank = next((i for i, hit in enumerate(response.hits, start=1) if answers(query.label, hit)), NOT_FOUND)
    return Outcome(top.article_id if top else None, top.heading if top else None, response.confident,
                   round(response.confidence, 3), rank)


def verdict(query: ReplayQuery, before: Outcome, after: Outcome) -> str | None:
    """better / worse for a labelled query, changed for anything else that moved; None if nothing did."""
    moved = (before.article_id, before.heading, before.confident) != (after.article_id, after.heading, after.confident)
    label = query.label
    if label is None:
        return "changed" if moved else None
    if label.negative:  # out of scope: only the confidence verdict matters
        if before.confident != after.confident:
            return "better" if not after.confident else "worse"
        return "changed" if moved else None
    was = (before.answer_rank, not before.confident)
    now = (after.answer_rank, not after.confident)
    if now != was:
        return "better" if now < was else "worse"
    return "changed" if moved else None


def compare(queries: list[ReplayQuery], before: list[Outcome], after: list[Outcome]) -> list[Change]:
    changes = []
    for query, old, new in zip(queries, before, after, strict=True):
        found = verdict(query, old, new)
        if found:
            changes.append(Change(query, old, new, found))
    order = {"worse": 0, "better": 1, "changed": 2}
    return sorted(changes, key=lambda c: (order[c.verdict], -c.query.asked))


def logged_queries(log_db: Path | str, limit: int) -> list[ReplayQuery]:
    """The most frequent real queries (stored masked) from the usage log: a SQLite file or a
    postgresql:// URL (the same table and columns)."""
    from kb_service.usage_log.postgres import is_postgres_url

    sql = ("SELECT query_masked, COUNT(*) FROM queries WHERE query_masked <> '' "
           "GROUP BY query_masked ORDER BY COUNT(*) DESC, query_masked {collate} LIMIT {param}")
    if limit <= 0:
        return []
    if is_postgres_url(log_db):
        import psycopg

        with psycopg.connect(str(log_db)) as db:  # bytewise ties, like SQLite
            rows = db.execute(sql.format(collate='COLLATE "C"', param="%s"), (limit,)).fetchall()
        return [ReplayQuery(text, None, count) for text, count in rows]
    if not Path(log_db).exists():
        return []
    with sqlite3.connect(f"file:{log_db}?mode=ro", uri=True) as db:
        rows = db.execute(sql.format(collate="", param="?"), (limit,)).fetchall()
    return [ReplayQuery(text, None, count) for text, count in rows]


def articles_at(ref: str, articles_dir: Path, dest: Path) -> Path:
    """The articles folder as of git `ref`, extracted into `dest`; raises ValueError on a bad ref."""
    articles_dir = Path(articles_dir).resolve()
    top = _git(articles_dir, "rev-parse", "--show-toplevel").decode().strip()
    inside = articles_dir.relative_to(Path(top).resolve()).as_posix()
    archive = _git(Path(top), "archive", "--format=tar", ref, inside)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / inside


def _git(cwd: Path, *args: str) -> bytes:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)
    if result.returncode != 0:
        raise ValueError(f"git {' '.join(args[:2])}: {result.stderr.decode(errors='replace').strip()[:200]}")
    return result.stdout


def scratch_engine(settings: Settings, articles_dir: Path, lexicon_path: Path, index_dir: Path) -> SearchEngine:
    """Build the knowledge base in `articles_dir` into `index_dir`, reusing the main index's
    embedding cache and exported model, and open it."""
    main = Path(settings.index_dir)
    for name in ("cache", "models"):
        if (main / name).is_dir():
            shutil.copytree(main / name, index_dir / name, dirs_exist_ok=True)
    scoped = settings.with_overrides(articles_dir=articles_dir, lexicon_path=lexicon_path, index_dir=index_dir)
    build_index(scoped)
    return SearchEngine.open(scoped)


def run_impact(settings: Settings, base: str, queries: Iterable[ReplayQuery]) -> ImpactReport:
    """Replay `queries` on the articles as of `base` and as in the working tree."""
    queries = list(queries)
    articles_dir = Path(settings.articles_dir)
    lexicon = Path(settings.lexicon_path)
    with tempfile.TemporaryDirectory(prefix="kb-impact-") as tmp:
        root = Path(tmp)
        old_articles = articles_at(base, articles_dir, root / "base")
        old_lexicon = old_articles / lexicon.name if lexicon.parent.resolve() == articles_dir.resolve() else lexicon
        outcomes = []
        for folder, lexicon_path, name in ((old_articles, old_lexicon, "before"), (articles_dir, lexicon, "after")):
            engine = scratch_engine(settings, folder, lexicon_path, root / f"index-{name}")
            try:
                outcomes.append([outcome(engine, q) for q in queries])
            finally:
                engine.close()
    return ImpactReport(base, len(queries), compare(queries, outcomes[0], outcomes[1]))
