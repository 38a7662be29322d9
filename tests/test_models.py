"""The stored forms of the pipeline's records."""

from __future__ import annotations

from kb_service.models import Hit, Passage


def test_a_stored_passage_round_trips_and_a_newer_field_is_ignored() -> None:
    passage = Passage("gifts#0", "gifts", "送礼", "能不能收", "一律婉拒。", "compliance", ("红线",), ("收礼",), 2, 9,
                      scripts=("您好，心意领了。",), questions=("客户要送礼",), signals=("红包",))
    stored = passage.to_dict()
    assert Passage.from_dict(stored) == passage
    # A generation written by a newer indexer, read by a replica not yet upgraded.
    assert Passage.from_dict({**stored, "written_by_a_later_version": [1, 2]}) == passage
    older = {key: value for key, value in stored.items() if key != "signals"}
    assert Passage.from_dict(older).signals == ()


def test_a_passage_shown_as_a_hit_keeps_what_the_panel_needs() -> None:
    passage = Passage("gifts#0", "gifts", "送礼", "能不能收", "红包一律婉拒。", "compliance", (), (), 2, 9,
                      scripts=("您好，心意领了。",))
    hit = Hit.of(passage, 0.5, ["红包"], signal="红包")
    assert (hit.article_id, hit.passage_id, hit.heading, hit.version, hit.score) == ("gifts", "gifts#0", "能不能收", 2, 0.5)
    assert (hit.highlights, hit.scripts, hit.signal) == (["红包"], ["您好，心意领了。"], "红包")
    assert Hit.of(passage).highlights == [] and Hit.of(passage).signal is None
