"""The blind labelled sets stay checkable: schema, verbatim evidence, facts that match it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kb_service.settings import PROJECT_ROOT

COURSEWARE = PROJECT_ROOT.parent / "shared" / "seed" / "courseware.txt"


def _checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_blind_set", PROJECT_ROOT / "scripts" / "check_blind_set.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_a_fact_group_that_cannot_match_its_evidence_is_reported() -> None:
    check = _checker()
    courseware = check.flat("盗抢案件需等待60天，期满仍未找回再赔付。")
    good = {"id": "x1", "query": "盗抢多久赔", "kind": "short", "topic": "盗抢", "evidence": "盗抢案件需等待60天",
            "facts": [["盗抢"], ["60天|六十天"]]}
    assert check.problems_in(good, courseware) == []
    wrong = dict(good, facts=[["盗抢"], ["30天"]])
    assert check.problems_in(wrong, courseware) == ["fact group 1 matches nothing in its evidence"]
    invented = dict(good, evidence="盗抢案件需等待90天")
    assert "evidence is not a verbatim excerpt of the courseware" in check.problems_in(invented, courseware)
    assert check.problems_in(dict(good, facts=[], evidence=""), courseware) == [
        "an out-of-scope query needs scope out-insurance or out-near"]


@pytest.mark.skipif(not COURSEWARE.exists(), reason="../shared/seed/courseware.txt is not beside the project")
@pytest.mark.parametrize("half", ["selection", "report", "selection-2"])
def test_the_bundled_blind_halves_pass_the_check(half: str) -> None:
    import json

    check = _checker()
    courseware = check.flat(COURSEWARE.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in Path(PROJECT_ROOT / "eval" / "blind" / f"{half}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 288 and {r["kind"] for r in rows} == {"short", "colloquial", "scenario", "pasted", "multi", "voice", "trad", "mixed"}
    assert [(r["id"], p) for r in rows for p in check.problems_in(r, courseware)] == []
    assert sum(not r["facts"] for r in rows) / len(rows) >= 0.15
