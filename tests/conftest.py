"""Tiny real article corpora written into temporary folders."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kb_service.settings import Settings


class CountingEmbedder:
    """A real embedder that records every text it is asked to embed (to prove what a cache saved)."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.dim, self.name, self.texts = real, real.dim, real.name, []

    def encode(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.texts += texts
        return self.real.encode(texts)


def article_text(
    article_id: str,
    title: str,
    sections: dict[str, str],
    category: str = "coverage",
    aliases: list[str] | None = None,
    version: int = 1,
    questions: dict[str, list[str]] | None = None,
    signals: dict[str, list[str]] | None = None,
) -> str:
    body = "\n\n".join(f"## {heading}\n\n{text.strip()}" for heading, text in sections.items())
    asked = "".join(f"\n  {heading}: [{', '.join(qs)}]" for heading, qs in (questions or {}).items())
    said = "".join(f"\n  {heading}: [{', '.join(words)}]" for heading, words in (signals or {}).items())
    return textwrap.dedent(
        f"""\
        ---
        id: {article_id}
        title: {title}
        category: {category}
        tags: [测试]
        aliases: [{", ".join(aliases or [])}]
        updated: 2026-11-25
        version: {version}
        owner: 测试组{{asked}}
        ---
        # {title}

        """
    ).replace("{asked}", (f"\nquestions:{asked}" if asked else "") + (f"\nsignals:{said}" if said else "")) + body + "\n"


def write_article(folder: Path, article_id: str, title: str, sections: dict[str, str], **kwargs: object) -> Path:
    path = folder / f"{article_id}.md"
    path.write_text(article_text(article_id, title, sections, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path


SMALL_CORPUS = {
    "third-party": ("第三者责任险说明", {
        "三者险赔什么": "第三者责任险（三者险）赔偿被保险车辆发生事故造成第三方的人身伤亡和财产损失，不赔本车损失。",
        "三者险与交强险": "交强险是法定强制保险，赔偿限额固定；三者险是商业险，可在交强险之外提供更高保障。",
    }, ["三者险", "三者"]),
    "theft-claim": ("车辆盗抢理赔", {
        "盗抢理赔材料": "车辆被盗抢后需要报警证明和未找回证明，警方立案后进入等待期，满60天仍未找回再处理理赔。",
    }, ["丢车", "被偷"]),
    "flood-claim": ("自然灾害理赔", {
        "水淹车理赔材料": "暴雨水淹等自然灾害理赔一般需要灾害证明和损失清单，并提供灾前灾后照片，处理时限5-10个工作日。",
    }, ["水淹车", "泡水"]),
    "complaint-grading": ("投诉分级与处理时限", {
        "投诉分几级": "一级投诉由接收客服直接处理，24小时内解决；二级投诉如理赔争议转专职团队，48小时内解决；三级投诉上报主管并启动应急预案。",
    }, ["客诉"]),
}


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    for article_id, (title, sections, aliases) in SMALL_CORPUS.items():
        write_article(folder, article_id, title, sections, aliases=aliases)
    (folder / "lexicon.yaml").write_text(
        "terms: [三者险, 第三者责任险, 交强险, 盗抢]\nsynonyms:\n  第三者责任险: [三者险, 三者]\n  盗抢: [丢车, 被偷]\ntypos:\n  理陪: 理赔\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture()
def corpus_settings(corpus_dir: Path, tmp_path: Path) -> Settings:
    """Settings for the small corpus, with the fast numpy USE embedder (a real model)."""
    return Settings(
        articles_dir=corpus_dir,
        lexicon_path=corpus_dir / "lexicon.yaml",
        index_dir=tmp_path / "indexes",
        embedding_model="use-multilingual",
        log_db=tmp_path / "usage.sqlite3",
        confidence_path=tmp_path / "confidence.json",
    )
