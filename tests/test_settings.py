"""The settings object: values it derives from others."""

from __future__ import annotations

import os

import pytest

from kb_service.settings import Settings


@pytest.mark.parametrize(("cores", "workers", "threads"), [(4, 1, 4), (4, 2, 2), (2, 1, 2), (2, 2, 1), (2, 8, 1), (1, 1, 1)])
def test_query_embedding_threads_share_the_cores_among_the_workers(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert Settings(workers=workers).query_embedding_threads() == threads


def test_query_embedding_threads_set_explicitly_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert Settings(workers=1, embedding_threads=3).query_embedding_threads() == 3
    monkeypatch.setenv("KB_EMBEDDING_THREADS", "1")
    monkeypatch.setenv("KB_WORKERS", "2")
    settings = Settings()
    assert (settings.workers, settings.query_embedding_threads()) == (2, 1)


def test_workers_and_threads_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        Settings(workers=0)
    with pytest.raises(ValueError):
        Settings(embedding_threads=-1)
