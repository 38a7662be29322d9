"""What a build writes: which articles are new, changed, removed or kept, and into which segments.

Pure decisions over the serving manifest and the checked articles; the builder executes them.
Article paths are compared relative to the articles folder, so a broken article keeps its last
good version even when the index was built from another checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kb_service.index.integrity import IndexDamagedError
from kb_service.index.records import ArticleEntry, ArticleRecord, Manifest
from kb_service.index.segments import read_segment_articles, read_segment_passages, verify_segment
from kb_service.index.store import FORMAT, current_generation, verify_generation
from kb_service.models import Passage


@dataclass
class PreviousIndex:
    """The serving generation as a build finds it; no generation when it is absent, damaged or old."""

    generation: Path | None = None
    manifest: Manifest | None = None
    damaged_segments: set[str] = field(default_factory=set)
    damage: list[str] = field(default_factory=list)  # one line per damaged file


@dataclass
class BuildPlan:
    """What one build writes: the new segment's passages and records, and the live map."""

    passages: list[Passage]
    records: dict[str, ArticleRecord]
    entries: dict[str, ArticleEntry]  # manifest article entries carried over unchanged
    segments: list[str]  # previous segments still referenced
    delete_from_whoosh: list[str]
    add_to_whoosh: list[Passage] | None = None  # None: all of `passages`
    checksums: dict[str, str] = field(default_factory=dict)  # segment id → its checksum file's digest


@dataclass
class Changes:
    incremental: bool
    added: list[str]
    changed: list[str]
    removed: list[str]
    kept: dict[str, ArticleEntry]  # broken now, served in their last good version


def previous_index(index_dir: Path) -> PreviousIndex:
    """The serving generation, its manifest, its damaged segments and what is damaged.

    A damaged generation counts as no previous index: the build is full."""
    generation = current_generation(index_dir)
    if generation is None:
        return PreviousIndex()
    try:
        manifest = verify_generation(generation)
    except IndexDamagedError as exc:
        return PreviousIndex(damage=[str(exc)])
    if manifest.format != FORMAT:
        return PreviousIndex()  # an older layout: rebuild from the articles
    found = PreviousIndex(generation, manifest)
    for segment_id in manifest.segments if manifest.segment_checksums else ():
        try:
            verify_segment(index_dir, segment_id, manifest.segment_checksums.get(segment_id, ""))
        except IndexDamagedError as exc:
            found.damaged_segments.add(segment_id)
            found.damage.append(str(exc))
    return found


def find_changes(previous: PreviousIndex, signature: dict, full: bool, digests: dict[str, str],
                 broken_paths: set[str]) -> Changes:
    """Compare the checked articles (`digests`: id → content hash) with the serving manifest."""
    manifest = previous.manifest
    known = manifest.articles if manifest else {}
    # Damaged segments, or none with checksums (written before they existed): rebuild everything.
    incremental = (manifest is not None and not full and manifest.signature == signature and not previous.damage
                   and bool(manifest.segment_checksums))
    kept = {aid: entry for aid, entry in known.items()
            if entry.path in broken_paths and aid not in digests and entry.segment not in previous.damaged_segments}
    before = known if incremental else {}
    return Changes(
        incremental=incremental,
        added=sorted(a for a in digests if a not in before),
        changed=sorted(a for a in digests if a in before and before[a].hash != digests[a]),
        removed=sorted(a for a in before if a not in digests and a not in kept),
        kept=kept,
    )


def plan_update(index_dir: Path, manifest: Manifest, changes: Changes, by_article: dict[str, list[Passage]],
                records: dict[str, ArticleRecord], max_segments: int) -> tuple[BuildPlan, bool]:
    """An incremental build: fresh articles into a new segment; True when small segments were folded in."""
    fresh = changes.added + changes.changed
    gone = set(fresh) | set(changes.removed)
    plan = BuildPlan(
        passages=[p for aid in fresh for p in by_article.get(aid, [])],
        records={aid: records[aid] for aid in fresh},
        entries={aid: e for aid, e in manifest.articles.items() if aid not in gone},
        segments=list(manifest.segments),
        delete_from_whoosh=changes.changed + changes.removed,
    )
    plan.checksums = {sid: manifest.segment_checksums[sid] for sid in plan.segments}
    plan.add_to_whoosh = list(plan.passages)  # folded articles are in the Whoosh index already
    if len(plan.segments) + 1 <= max_segments:
        return plan, False
    fold_small_segments(index_dir, manifest, plan)
    return plan, True


def plan_full(index_dir: Path, changes: Changes, by_article: dict[str, list[Passage]],
              records: dict[str, ArticleRecord]) -> BuildPlan:
    """A full build: every article, plus the last good version of those broken now."""
    plan = BuildPlan(passages=[p for aid in sorted(records) for p in by_article.get(aid, [])],
                     records=dict(records), entries={}, segments=[], delete_from_whoosh=[])
    by_segment: dict[str, set[str]] = {}
    for aid, entry in changes.kept.items():
        by_segment.setdefault(entry.segment, set()).add(aid)
    for segment_id, ids in by_segment.items():
        copy_articles(index_dir, segment_id, ids, plan)
    return plan


def fold_small_segments(index_dir: Path, manifest: Manifest, plan: BuildPlan) -> None:
    """Tiered merge: the live articles of every segment but the largest move into the new one.

    The cost is the size of the small segments, not of the knowledge base, so a merge never
    delays an edit by a full rebuild; the large segment is rebuilt only by a full build.
    """
    sizes = manifest.segment_rows
    base = max(plan.segments, key=lambda sid: sizes.get(sid, 0))
    moving: dict[str, set[str]] = {sid: set() for sid in plan.segments if sid != base}
    for aid, entry in list(plan.entries.items()):
        if entry.segment in moving:
            moving[entry.segment].add(aid)
            del plan.entries[aid]
    for sid, ids in moving.items():
        copy_articles(index_dir, sid, ids, plan)
    plan.segments = [base]
    plan.checksums = {base: plan.checksums[base]}


def copy_articles(index_dir: Path, segment_id: str, ids: set[str], plan: BuildPlan) -> None:
    """Add these articles' passages and records, as stored in an older segment, to the new one."""
    if ids:
        plan.passages += [p for p in read_segment_passages(index_dir, segment_id) if p.article_id in ids]
        plan.records.update({aid: r for aid, r in read_segment_articles(index_dir, segment_id).items() if aid in ids})


def full_merge_due(manifest: Manifest, max_dead_fraction: float) -> bool:
    """Too many outdated rows: queries skip them and idf ignores them, but they cost memory."""
    rows = sum(manifest.segment_rows.values())
    return rows > 0 and (rows - manifest.passages) / rows > max_dead_fraction
