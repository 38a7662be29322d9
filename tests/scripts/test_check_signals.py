"""scripts/check_signals.py: where a signal fires, and whether its section answers those queries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_article

ROOT = Path(__file__).resolve().parents[2]


def test_it_counts_the_queries_a_signal_fires_on_and_those_its_section_answers(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    write_article(articles, "fraud", "欺诈预警", {"预警信号": "投保后短期内出险、坚持现金赔付不愿修理，要上报反欺诈团队。"},
                  category="compliance", signals={"预警信号": ["刚买的保险 + 不想修"]})
    facts = tmp_path / "facts.jsonl"  # judged by answer facts, as the blind sets are
    facts.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in (
        {"id": "a", "query": "上周刚买的保险，车撞了我不想修了，直接给钱", "kind": "pasted", "facts": [["反欺诈"]]},
        {"id": "b", "query": "刚买的保险，车不想修了，能退保吗", "kind": "pasted", "facts": [["退保手续费"]]},
        {"id": "c", "query": "上周刚买的保险，三者险赔什么", "kind": "short", "facts": [["三者"]]},
    )), encoding="utf-8")
    own = tmp_path / "own.jsonl"  # judged by article, as our own set is
    own.write_text(json.dumps({"id": "q1", "query": "客户刚买的保险就撞了，还说不想修", "kind": "scenario",
                               "relevant": ["fraud"]}, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_signals.py"), "--articles", str(articles),
                             "--set", str(facts), "--set", str(own)], capture_output=True, text=True, check=True, cwd=ROOT)
    lines = result.stdout.splitlines()
    assert lines[0] == "1 signals in 1 sections; 4 labelled queries read"
    assert lines[1] == "fraud › 预警信号: fires on 3, answers 2"  # c says one part only; b is not about fraud
    assert lines[2].startswith("one scan of a 500-character message with no signal: ")
