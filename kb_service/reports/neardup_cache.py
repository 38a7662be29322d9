"""Near-duplicate pairs of query texts kept between reports, so a period only compares its new texts.

Grouping near-duplicate phrasings (textsim.group_near_duplicates) of the ~24k distinct texts of a
million-query log takes ~4 s, nearly all of it finding the pairs. Whether two texts are
near-duplicates depends on those two texts only, never on the period or the counts, so the pairs
found once stay true: this file keeps every text it has seen and every near-duplicate pair among
them, and a report only computes the pairs between the texts it has not seen yet and all the
others (textsim.near_duplicate_edges with first_new). The grouping that follows is the same
function over the same pairs, so the groups are exactly those computed from scratch.

One SQLite file beside the query-vector cache (reports/command.report_vector_cache); a folder that
cannot be written means no cache, not an error.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kb_service.reports.textsim import NEAR_DUP_BLOCKING_DICE, NEAR_DUP_SIMILARITY, near_duplicate_edges

FILE_NAME = "report-near-duplicates.sqlite3"
# The pairs depend on the thresholds and on how texts are compared: a change of either is a new file.
VERSION = f"lcs{NEAR_DUP_SIMILARITY}-dice{NEAR_DUP_BLOCKING_DICE}-v1"


class NearDuplicateCache:
    """textsim.EdgeSource over a file of known texts and their near-duplicate pairs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __call__(self, cores: list[str]) -> list[tuple[int, int, float]]:
        """near_duplicate_edges(cores), from the file plus the pairs of the texts it lacks."""
        try:
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error):
            return near_duplicate_edges(cores)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, version TEXT, core TEXT UNIQUE)")
            conn.execute("CREATE TABLE IF NOT EXISTS pairs (a INTEGER, b INTEGER, similarity REAL)")
            conn.execute("BEGIN IMMEDIATE")  # two reports adding texts at once would miss each other's pairs
            try:
                ids = self._known(conn)
                self._add(conn, ids, [c for c in dict.fromkeys(cores) if c not in ids])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            position = {ids[c]: i for i, c in enumerate(cores)}
            return [(position[a], position[b], similarity)
                    for a, b, similarity in conn.execute("SELECT a, b, similarity FROM pairs")
                    if a in position and b in position]
        except sqlite3.Error:  # e.g. a read-only folder: compute, keep nothing
            return near_duplicate_edges(cores)
        finally:
            conn.close()

    @staticmethod
    def _known(conn: sqlite3.Connection) -> dict[str, int]:
        stale = conn.execute("SELECT 1 FROM texts WHERE version != ? LIMIT 1", (VERSION,)).fetchone()
        if stale:
            conn.execute("DELETE FROM texts")
            conn.execute("DELETE FROM pairs")
        return {core: i for i, core in conn.execute("SELECT id, core FROM texts ORDER BY id")}

    @staticmethod
    def _add(conn: sqlite3.Connection, ids: dict[str, int], new: list[str]) -> None:
        """The new texts, and their pairs with every known text and with each other."""
        if not new:
            return
        known = sorted(ids, key=ids.__getitem__)
        universe = known + new
        first_id = max(ids.values(), default=0) + 1
        for offset, core in enumerate(new):
            ids[core] = first_id + offset
        conn.executemany("INSERT INTO texts (id, version, core) VALUES (?, ?, ?)",
                         [(ids[c], VERSION, c) for c in new])
        edges = near_duplicate_edges(universe, first_new=len(known))
        conn.executemany("INSERT INTO pairs (a, b, similarity) VALUES (?, ?, ?)",
                         [(ids[universe[a]], ids[universe[b]], sim) for a, b, sim in edges])


def near_duplicate_cache(cache_dir: Path | None) -> NearDuplicateCache | None:
    """The cache in a report's cache folder (None: no folder, compute every time)."""
    return NearDuplicateCache(Path(cache_dir) / FILE_NAME) if cache_dir else None
