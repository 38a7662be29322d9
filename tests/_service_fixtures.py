"""A tiny real knowledge base for the service tests: 4 articles, a real index, a real engine.

Building the index and loading the embedder cost seconds, so tests build once per session
(`build_corpus_index`) and copy the built folder when they need to change it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from kb_service.settings import Settings

ARTICLES: dict[str, str] = {
    "third-party.md": """---
id: third-party
title: 第三者责任险：保什么、怎么赔
category: coverage
tags: [商业险, 三者险]
aliases: [三者险, 三者, 三者险赔多少, 撞了别人谁赔]
updated: 2026-11-25
version: 2
owner: 产品知识组
---

# 第三者责任险：保什么、怎么赔

## 三者险赔哪些损失

第三者责任险（简称三者险）赔付被保险车辆发生事故后造成第三方人身伤亡或财产损失、依法应由被保险人承担的赔偿责任。三者险不赔本车损失，也不赔本车司机和乘客的人身伤害，本车损失请看[车损险](vehicle-damage.md)。回答客户时先确认保单是否投保了三者险。

## 三者险限额怎么答

三者险限额以保单载明的保险金额为准，客户询问三者险限额够不够时，应结合车辆使用情况说明，由客户自主选择，不要凭印象报数字。

```script
您好，第三者责任险是商业补充保障，超出交强险限额的部分，可以由三者险按您保单约定的限额承担。
具体以条款为准，我可以帮您查询保单上的限额。
```

| 险种 | 赔谁 |
| --- | --- |
| 三者险 | 第三方 |
| 车损险 | 本车 |
""",
    "vehicle-damage.md": """---
id: vehicle-damage
title: 车辆损失险：车被水淹了能赔吗
category: coverage
tags: [商业险, 车损险]
aliases: [车损险, 车损, 水淹车, 泡水车]
updated: 2026-11-25
version: 1
owner: 产品知识组
---

# 车辆损失险：车被水淹了能赔吗

## 车损险赔什么

车辆损失险（简称车损险）赔付被保险车辆因碰撞、倾覆、火灾、暴雨洪水等原因造成的本车损失。车辆被水淹后，车损险按条款承担施救费用和维修费用，但车辆被水淹后再次启动导致发动机损坏的情况，需要按现行条款确认是否属于责任免除。

## 水淹车报案要点

车辆被水淹时，车损险报案应提醒客户不要再次启动车辆，先拍照留存水位线，再拨打报案电话，等待查勘员到场查勘定损。客户如果已经把车拖到修理厂，也要告诉查勘员车辆所在位置。
""",
    "claim-materials.md": """---
id: claim-materials
title: 理赔材料清单：报案后要交什么
category: claims
tags: [理赔, 材料]
aliases: [理赔材料, 要交什么材料, 理赔要什么资料]
updated: 2026-11-25
version: 1
owner: 理赔服务组
---

# 理赔材料清单：报案后要交什么

## 理赔材料基本清单

理赔材料一般包括：保险单、行驶证、驾驶证、被保险人身份证明、事故认定书、维修发票和损失清单。理赔材料不全时，客服应一次性告知客户还缺哪些理赔材料，避免客户多次往返。

## 理赔材料提交时限

理赔材料应在报案后尽快提交，具体时限以现行条款为准。客户表示材料难以收齐时，可以先提交已有理赔材料，并在理赔工单中注明缺少的材料和预计补交时间。
""",
    "privacy-check.md": """---
id: privacy-check
title: 客户身份核验与隐私保护
category: compliance
tags: [身份核验, 隐私]
aliases: [核实身份, 身份验证, 个人信息保护]
updated: 2026-11-25
version: 1
owner: 合规组
---

# 客户身份核验与隐私保护

## 身份核验步骤

查询或变更保单信息前，客服必须先完成客户身份核验：核对投保人姓名、证件号后四位和预留手机号。身份核验未通过时，不得透露保单、理赔进度等任何个人信息，应引导客户通过官方渠道办理。

## 个人信息不外传

客户的证件号、手机号、银行卡号属于个人信息，客服不得在聊天以外的渠道记录或转发。确需记录时只记录脱敏后的信息，例如手机号只保留后四位，并遵守公司数据最少化要求。
""",
}


@dataclass(frozen=True)
class BuiltCorpus:
    """Folders of one built knowledge base, shared read-only by the tests of a session."""

    articles_dir: Path
    index_dir: Path
    lexicon_path: Path


def write_corpus(articles_dir: Path) -> Path:
    articles_dir.mkdir(parents=True, exist_ok=True)
    for name, text in ARTICLES.items():
        (articles_dir / name).write_text(text, encoding="utf-8")
    return articles_dir


def corpus_settings(corpus: BuiltCorpus, log_db: Path, **overrides: object) -> Settings:
    """Settings for a test: the shared corpus, a private usage log, the fast embedder."""
    values: dict[str, object] = {
        "articles_dir": corpus.articles_dir,
        "index_dir": corpus.index_dir,
        "lexicon_path": corpus.lexicon_path,
        "embedding_model": "use-multilingual",
        "log_db": log_db,
        "agent_keys": "",
        "editor_keys": "",
        "analyst_keys": "",
        "query_id_wait_seconds": 0.2,  # unknown ids are refused after this; keeps error tests fast
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def build_corpus_index(root: Path) -> BuiltCorpus:
    """Write the articles and build a real index with the lead's indexer."""
    from kb_service.index.builder import build_index

    corpus = BuiltCorpus(root / "articles", root / "indexes", root / "lexicon.yaml")
    write_corpus(corpus.articles_dir)
    report = build_index(corpus_settings(corpus, root / "unused.sqlite3"))
    assert report.articles == len(ARTICLES), report.problems
    return corpus


def copy_corpus(corpus: BuiltCorpus, root: Path) -> BuiltCorpus:
    """A private, writable copy (tests that rebuild or switch index generations)."""
    copy = BuiltCorpus(root / "articles", root / "indexes", corpus.lexicon_path)
    shutil.copytree(corpus.articles_dir, copy.articles_dir)
    shutil.copytree(corpus.index_dir, copy.index_dir)
    return copy


def point_current_at(index_dir: Path, generation: str) -> None:
    """Switch which built generation is 'newest' the way the indexer does: atomic rename."""
    from kb_service.index.store import CURRENT

    tmp = index_dir / f".current-{uuid.uuid4().hex}.tmp"
    tmp.write_text(generation, encoding="utf-8")
    os.replace(tmp, index_dir / CURRENT)


def settings_env(settings: Settings) -> dict[str, str]:
    """KB_* variables that make `Settings()` in a subprocess equal `settings`."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        env[f"KB_{name.upper()}"] = str(value)
    return env


def sqlite_rows(path: Path, sql: str, *args: object) -> list[tuple]:
    """Rows from a real SQLite file, read on a fresh connection as an analyst would."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def uvicorn_command(port: int, *extra: str) -> list[str]:
    """The server the end-to-end tests start: the env-configured app factory on loopback."""
    return [sys.executable, "-m", "uvicorn", "kb_service.web.app:create_app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(port), *extra]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (servers in tests bind loopback only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM (the server drains its usage log), then a kill if it does not exit in 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
