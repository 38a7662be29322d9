"""Near-duplicate groups with kept pairs equal the groups computed from scratch, whatever was kept before."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from kb_service.reports.neardup_cache import NearDuplicateCache
from kb_service.reports.textsim import group_near_duplicates

STEMS = ("三者险赔多少", "交强险保额是多少", "车被偷了怎么办", "玻璃碎了能赔吗", "新能源车电池坏了赔吗", "代驾撞车了谁来赔",
         "理赔需要什么材料", "定损要多久", "退保能退多少钱", "港澳自驾保险怎么买")


def _texts(seed: int, n: int) -> list[tuple[str, int]]:
    """Phrasings of a few questions: fillers, tails, a dropped or doubled character."""
    rng = random.Random(seed)
    found: dict[str, int] = {}
    for _ in range(n):
        text = rng.choice(STEMS)
        if rng.random() < 0.4:
            text = rng.choice(("请问", "客户问", "")) + text + rng.choice(("吗", "呢", "要多久", ""))
        if rng.random() < 0.3:
            i = rng.randrange(len(text))
            text = text[:i] + text[i + 1 :] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]
        found[text] = found.get(text, 0) + rng.randint(1, 9)
    return list(found.items())


def test_groups_with_the_cache_equal_groups_without(tmp_path: Path) -> None:
    cache = NearDuplicateCache(tmp_path / "pairs.sqlite3")
    first, later = _texts(1, 150), _texts(2, 300)  # overlapping sets: the later one has new texts
    assert len({t for t, _ in later} - {t for t, _ in first}) > 10
    for counts in (first, later, first[:40]):  # from an empty file, adding texts, a subset
        groups = group_near_duplicates(counts, edge_source=cache)
        assert groups == group_near_duplicates(counts)
    assert any(len(g) > 1 for g in groups), "the texts have near-duplicates to find"
    conn = sqlite3.connect(tmp_path / "pairs.sqlite3")
    (kept,) = conn.execute("SELECT COUNT(*) FROM texts").fetchone()
    conn.close()
    assert kept >= len({t for t, _ in first} | {t for t, _ in later}) // 2  # cores, not raw texts


def test_an_unwritable_cache_computes_the_groups(tmp_path: Path) -> None:
    counts = _texts(3, 80)
    cache = NearDuplicateCache(tmp_path / "missing-folder" / "pairs.sqlite3")
    assert group_near_duplicates(counts, edge_source=cache) == group_near_duplicates(counts)
