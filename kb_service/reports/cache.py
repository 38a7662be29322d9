"""A small time-bounded cache of built report sections for the workbench.

On a million-query log one report section takes seconds to aggregate, while an analyst flips
between pages, sorts and drills into rows of the same period many times a minute. Sections are
kept for `ttl_seconds` per (section, period, log file): numbers at most that old, which is stated
on every page (generated_at). A different period, or a replaced log file, is a new key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any


class SectionCache:
    def __init__(self, ttl_seconds: float = 300.0, max_entries: int = 32) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    @staticmethod
    def log_identity(path: Path | str) -> tuple[str, int]:
        """The log file's path and inode: a log replaced by another file is not the same log."""
        try:
            return str(path), Path(path).stat().st_ino
        except OSError:
            return str(path), -1

    def forget(self, predicate: Callable[[Hashable], bool]) -> None:
        """Drop the entries whose key matches (e.g. proposals after an article changed)."""
        with self._lock:
            for key in [k for k in self._entries if predicate(k)]:
                del self._entries[key]

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The cached value for key, or build() it once (concurrent callers of one key wait for it)."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                self._entries.move_to_end(key)
                return hit[1]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                hit = self._entries.get(key)
                if hit is not None and time.monotonic() - hit[0] < self.ttl:
                    return hit[1]
            value = build()
            with self._lock:
                self._entries[key] = (time.monotonic(), value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
                self._building.pop(key, None)
            return value
