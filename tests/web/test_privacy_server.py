"""Privacy of a real server's usage log and output over ≥ 1,000 generated personal-data variants.

Target: 0 clear-text personal data in every column of every table of the SQLite usage log
(KB_LOG_DB) and in the server's captured stdout/stderr.

A seeded generator writes Chinese mobile numbers, 18-digit ID numbers (valid birth dates and check
character, X included), bank cards (16–19 digits, Luhn-valid), plates (ordinary and new-energy),
e-mails, VINs (valid check digit) and policy/claim numbers, each typed with random separators
(space, double space, '-', '.', '/', U+200B, U+2009, NBSP, full-width forms) and embedded in a
customer's Chinese sentence. They reach `python -m kb_service serve` on 127.0.0.1 as search
queries (short, and long pasted messages through `truncate=1`), feedback comments, and in the
fields of events and feedback. After a clean stop (the log is drained on shutdown) every cell of
every table and every output line is scanned: a variant must appear neither as typed nor as its
letters and digits with all separators removed (both sides compacted the same way).

Two more channels are probed in the same run and reported by their own tests: the X-Agent-Id /
X-Session-Id headers of a search (stored as agent_id / session_id) and an article id in the URL
path (the access log writes the path).
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from _service_fixtures import build_corpus_index, corpus_settings, free_port, settings_env, stop_server

SEED = 20261206
MIN_VARIANTS = 1000
VARIANTS = 1260
STARTUP_SECONDS = 90
# The request phase stops sending after this long, whatever is left. Alone it takes about 11 s
# here; a CI run that shared the two cores with another CPU-bound job took 63 s and failed at 60.
RUN_SECONDS = 180
WORKERS = 6
ARTICLE_IDS = ["third-party", "vehicle-damage", "claim-materials", "privacy-check"]

# --- generators -------------------------------------------------------------------------------------

SEPARATORS = [" ", "  ", "-", ".", "/", "\u200b", "\u2009", "\u00a0", ""]
# Full-width forms of '-', '.', '/' are what a Chinese IME in full-width mode types between groups.
FULL_WIDTH_SEPARATORS = {"-": "－", ".": "．", "/": "／"}
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
POLICY_PREFIXES = ["PDAA", "PDZA", "PDDH", "RDAA", "RDZA", "RA", "RC", "CL", "BD"]

SENTENCES = {
    "mobile": ["客户说手机号是{v}，想问三者险赔多少", "您好我电话{v}，车被水淹了能赔吗", "回访电话{v}，客户要补交理赔材料",
               "麻烦打我手机{v}，理赔款什么时候到", "客户留的联系方式 {v} 请回电"],
    "id18": ["我的身份证号是{v}，帮我查一下保单", "投保人身份证{v}，要改联系电话", "客户报了证件号{v}要核实身份",
             "身份证 {v} 的客户问车损险怎么赔", "被保险人证件号码{v}，理赔材料齐了吗"],
    "card": ["理赔款打到我的银行卡{v}了吗", "退保费退到卡号{v}，一直没收到", "客户换了收款卡 {v}，怎么改",
             "银行卡号{v}扣款失败怎么办", "帮我看一下尾号是不是{v}这张卡"],
    "plate": ["我的车牌{v}在高速上追尾了", "车牌号{v}的车被水淹了能赔吗", "新能源车{v}充电时起火怎么报案",
              "{v}昨天被人剐蹭了，三者险赔吗", "客户车牌 {v} 要查出险记录"],
    "email": ["电子保单发到{v}没收到", "请把发票发到我邮箱{v}", "客户邮箱 {v} 收不到理赔通知",
              "我的邮箱是{v}，保单寄错了", "邮箱{v}能改成别的吗"],
    "vin": ["车架号{v}核对一下", "客户报的车架号是{v}，查不到保单", "VIN码 {v} 和行驶证上的不一样",
            "车辆识别代号{v}录错了怎么办", "我车的车架号{v}，能续保吗"],
    "policy": ["保单号{v}查不到", "报案号{v}进度怎么样了", "我的保单{v}想退保", "案件号 {v} 什么时候结案",
               "客户的理赔编号{v}，材料还差什么"],
}
FILLER = ["您好，", "我想问一下，", "客户很着急，", "上周出的险，", "麻烦帮忙看看，", "谢谢！", "我等你们回复。",
          "保险公司一直没人联系我，", "修理厂说要等定损，", "我已经打过好几次电话了。"]


@dataclass(frozen=True)
class Variant:
    kind: str
    typed: str  # as sent
    core: str  # its letters and digits, compacted like the haystack

    def sentence(self, rng: random.Random) -> str:
        return rng.choice(SENTENCES[self.kind]).format(v=self.typed)


def compact(text: str) -> str:
    """Letters and digits only (width and case folded, every separator dropped)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum()).lower()


def _full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else FULL_WIDTH_SEPARATORS.get(ch, ch)


def _typed(rng: random.Random, groups: list[str]) -> str:
    """Groups joined by random separators; sometimes full-width (all of it or some characters)."""
    text = groups[0] + "".join(rng.choice(SEPARATORS) + g for g in groups[1:])
    width = rng.random()
    if width < 0.15:
        return "".join(_full_width(ch) for ch in text)
    if width < 0.3:
        return "".join(_full_width(ch) if rng.random() < 0.5 else ch for ch in text)
    return text


def _split(text: str, sizes: tuple[int, ...]) -> list[str]:
    groups, at = [], 0
    for size in sizes:
        groups.append(text[at : at + size])
        at += size
    if at < len(text):
        groups.append(text[at:])
    return [g for g in groups if g]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def gen_mobile(rng: random.Random) -> str:
    digits = "1" + rng.choice("3456789") + _digits(rng, 9)
    groups = _split(digits, rng.choice([(11,), (3, 4, 4), (3, 8), (4, 4, 3), (7, 4)]))
    if rng.random() < 0.15:
        groups = [rng.choice(["+86", "86"]), *groups]
    return _typed(rng, groups)


def gen_id18(rng: random.Random) -> str:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange((date(2008, 12, 31) - date(1940, 1, 1)).days))
    want_x = rng.random() < 0.25
    while True:
        body = rng.choice("123456789") + _digits(rng, 5) + born.strftime("%Y%m%d") + _digits(rng, 3)
        check = ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]
        if (check == "X") == want_x:
            break
    if check == "X" and rng.random() < 0.3:
        check = "x"
    sizes = rng.choice([(18,), (6, 8, 4), (6, 4, 4, 4), (6, 8, 3, 1), (3, 3, 4, 4, 4)])
    return _typed(rng, _split(body + check, sizes))


def gen_card(rng: random.Random) -> str:
    length = rng.randint(16, 19)
    head = rng.choice(["62", "4", "5", "3"])
    digits = _luhn_complete(head + _digits(rng, length - len(head) - 1))
    sizes = rng.choice([(length,), (4, 4, 4, 4, 4), (6, length - 6)])
    return _typed(rng, _split(digits, sizes))


def gen_plate(rng: random.Random) -> str:
    province, letter = rng.choice(PROVINCES), rng.choice(PLATE_LETTERS)
    numbers = _digits(rng, 5)
    serial = rng.choice([
        numbers,  # ordinary 粤B12345
        numbers[:3] + rng.choice("ABCKXYZ") + numbers[3],  # ordinary 沪C123X4
        rng.choice("DF") + rng.choice("ABC0123") + numbers[:4],  # new energy, small car 粤BD12345
        numbers + rng.choice("DF"),  # new energy, large vehicle 粤B12345D
    ])
    if rng.random() < 0.2:
        letter, serial = letter.lower(), serial.lower()
    # Separators go after the province and after the letter (where people put them), never inside the serial.
    text = province + rng.choice([*SEPARATORS, "·"]) + letter + rng.choice(SEPARATORS) + serial
    return "".join(_full_width(ch) for ch in text) if rng.random() < 0.15 else text


def gen_email(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    local = rng.choice(letters) + "".join(rng.choice(letters + "0123456789") for _ in range(rng.randint(3, 9)))
    if rng.random() < 0.4:
        local += rng.choice("._") + "".join(rng.choice(letters + "0123456789") for _ in range(rng.randint(2, 5)))
    domain = rng.choice(["qq", "163", "126", "sina", "gmail", "company", "foxmail"])
    tld = rng.choice(["com", "cn", "net", "com.cn"])
    around_at = rng.choice(["", "", " ", "  ", "\u00a0", "\u2009", "\u200b"])
    dot = rng.choice([".", ".", " . ", "。", "．"])
    at = rng.choice(["@", "@", "＠"])
    text = f"{local}{around_at}{at}{around_at}{domain}{dot}{tld}"
    return "".join(_full_width(ch) for ch in text) if rng.random() < 0.15 else text


def gen_vin(rng: random.Random) -> str:
    while True:
        chars = [rng.choice(VIN_ALPHABET) for _ in range(13)] + list(_digits(rng, 4))  # ISO 3779: serial digits last
        total = sum(VIN_VALUES[c] * w for c, w in zip(chars, VIN_WEIGHTS, strict=True))
        chars[8] = "X" if total % 11 == 10 else str(total % 11)
        vin = "".join(chars)
        if not vin.isdigit() and any(c.isdigit() for c in vin):
            break
    if rng.random() < 0.1:
        vin = vin.lower()
    return _typed(rng, _split(vin, rng.choice([(17,), (3, 6, 8), (3, 5, 1, 8), (4, 4, 4, 5)])))


def gen_policy(rng: random.Random) -> str:
    prefix = rng.choice(POLICY_PREFIXES)
    year = str(rng.randint(2018, 2026))
    digits = year + _digits(rng, rng.choice([9, 11, 13]))
    groups = rng.choice([[prefix + digits], [prefix, *_split(digits, (4, 4, 4))], [prefix, digits],
                         [prefix, *_split(digits, (8,))]])
    return _typed(rng, groups)


GENERATORS = {"mobile": gen_mobile, "id18": gen_id18, "card": gen_card, "plate": gen_plate,
              "email": gen_email, "vin": gen_vin, "policy": gen_policy}


def generate_variants(rng: random.Random, n: int) -> list[Variant]:
    kinds = list(GENERATORS)
    seen: set[str] = set()
    variants: list[Variant] = []
    while len(variants) < n:
        kind = kinds[len(variants) % len(kinds)]
        typed = GENERATORS[kind](rng)
        core = compact(typed)
        if core in seen:
            continue
        seen.add(core)
        variants.append(Variant(kind, typed, core))
    rng.shuffle(variants)
    return variants


# --- the server -------------------------------------------------------------------------------------



@dataclass
class Channel:
    """Which variants were sent how, and what came back."""

    variants: dict[str, list[Variant]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


@dataclass
class PrivacyRun:
    sent: Channel
    probes: Channel
    cells: list[tuple[str, str, str]]  # (table, column, text) of every non-null cell
    output_lines: list[str]
    db_bytes: bytes
    elapsed: float
    row_counts: dict[str, int]


def _start(root: Path) -> tuple[subprocess.Popen, str, Path, Path]:
    settings = corpus_settings(build_corpus_index(root), root / "var" / "usage.sqlite3")
    port = free_port()
    log_path = root / "server.log"
    env = {**os.environ, **settings_env(settings), "KB_HOST": "127.0.0.1", "KB_PORT": str(port)}
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kb_service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url, log_path, Path(settings.log_db)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server not ready:\n{log_path.read_text()}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    stop_server(process)


def _long_message(rng: random.Random, group: list[Variant]) -> str:
    """A pasted chat transcript over the 1,000-character limit, personal data spread through it."""
    parts: list[str] = []
    for v in group:
        parts += [rng.choice(FILLER) for _ in range(rng.randint(2, 5))] + [v.sentence(rng) + "。"]
    text = "".join(parts)
    while len(text) < 1100:
        text += rng.choice(FILLER)
    return text + "三者险赔多少？"


def _plan(rng: random.Random, variants: list[Variant]) -> tuple[list[tuple], Channel]:
    """(channel, payload, variants) requests; every variant goes to exactly one channel."""
    sent = Channel()
    plan: list[tuple] = []
    i = 0
    n = len(variants)

    def take(count: int) -> list[Variant]:
        nonlocal i
        group = variants[i : i + count]
        i += count
        return group

    # ~45 % short searches (1–2 variants), ~20 % long pasted messages via truncate=1 (8 each),
    # ~35 % feedback comments (1–3 each) on a search of their own.
    while i < int(n * 0.45):
        group = take(rng.choice([1, 1, 2]))
        plan.append(("search", "，".join(v.sentence(rng) for v in group), group))
    while i < int(n * 0.65):
        group = take(8)
        plan.append(("truncate", _long_message(rng, group), group))
    while i < n:
        group = take(rng.choice([1, 2, 3]))
        plan.append(("feedback", "回访记录：" + "；".join(v.sentence(rng) for v in group), group))
    for kind, _, group in plan:
        sent.variants[kind] += group
    return plan, sent


def _send(http: httpx.Client, item: tuple, sent: Channel, rng: random.Random) -> None:
    kind, text, _ = item
    if kind in ("search", "truncate"):
        params = {"q": text, "k": str(rng.randint(1, 5))}
        if kind == "truncate":
            params["truncate"] = "1"
        r = http.get("/api/search", params=params)
        sent.statuses[(kind, r.status_code)] += 1
        if r.status_code != 200:
            sent.problems.append(f"{kind}: {r.status_code} {r.text[:200]}")
            return
        qid = r.json()["query_id"]
        hits = [h["article_id"] for h in r.json()["hits"]]
        # Events and an article open for some searches: every field of those tables gets rows.
        if hits and rng.random() < 0.3:
            r = http.post("/api/events", json={"query_id": qid, "article_id": hits[0], "type": rng.choice(["open", "copy"])})
            sent.statuses[("event", r.status_code)] += 1
        if hits and rng.random() < 0.1:
            r = http.get(f"/api/articles/{hits[0]}", params={"query_id": qid})
            sent.statuses[("article", r.status_code)] += 1
        return
    # feedback: a search first (its query mentions no personal data), then the comment.
    r = http.get("/api/search", params={"q": rng.choice(["理赔材料", "三者险赔多少", "车被水淹了能赔吗"])})
    sent.statuses[("feedback-search", r.status_code)] += 1
    qid = r.json()["query_id"]
    body = {"query_id": qid, "article_id": rng.choice([*ARTICLE_IDS, None]), "resolved": rng.random() < 0.5,
            "comment": text[:1000]}
    r = http.post("/api/feedback", json=body)
    sent.statuses[("feedback", r.status_code)] += 1
    if r.status_code != 200:
        sent.problems.append(f"feedback: {r.status_code} {r.text[:200]}")


def _probe(http: httpx.Client, rng: random.Random, variants: list[Variant], probes: Channel) -> None:
    """Free text a client controls outside q and comment: the agent/session headers of a search (latin-1
    only, so ASCII-typed variants), an article id in the URL path, unknown ids in events and feedback."""
    ascii_variants = [v for v in variants if v.typed.isascii() and v.kind in ("mobile", "id18", "card", "email")]
    for v in ascii_variants[:10]:
        header = rng.choice(["X-Agent-Id", "X-Session-Id"])
        r = http.get("/api/search", params={"q": "三者险赔多少"}, headers={header: v.typed})
        probes.statuses[("header", r.status_code)] += 1
        probes.variants["header"].append(v)
    for v in ascii_variants[10:20]:
        r = http.get(f"/api/articles/{v.typed}")
        probes.statuses[("article-path", r.status_code)] += 1
        probes.variants["article-path"].append(v)
    for v in variants[-20:]:  # ids the server refuses (404): must not reach the log or the output either
        route = rng.choice(["/api/events", "/api/feedback"])
        body = ({"query_id": v.typed, "article_id": "third-party", "type": "open"} if route == "/api/events"
                else {"query_id": v.typed[:128], "article_id": None, "resolved": False, "comment": v.typed})
        r = http.post(route, json=body)
        probes.statuses[("unknown-id", r.status_code)] += 1
        probes.variants["unknown-id"].append(v)


def _read_log_db(path: Path) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cells: list[tuple[str, str, str]] = []
        counts: dict[str, int] = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            counts[table] = len(rows)
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    cells.append((table, column, text))
        return cells, counts
    finally:
        conn.close()


@pytest.fixture(scope="module")
def privacy_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivacyRun]:
    rng = random.Random(SEED)
    variants = generate_variants(rng, VARIANTS)
    plan, sent = _plan(rng, variants)
    probes = Channel()
    root = tmp_path_factory.mktemp("privacy")
    process, url, log_path, log_db = _start(root)
    started = time.monotonic()
    try:
        deadline = started + RUN_SECONDS
        with httpx.Client(base_url=url, timeout=30) as http:
            seeds = [rng.random() for _ in plan]

            def run(job: tuple[tuple, float]) -> None:
                if time.monotonic() > deadline:
                    sent.statuses[("skipped", 0)] += 1
                    return
                item, seed = job
                try:
                    _send(http, item, sent, random.Random(seed))
                except httpx.HTTPError as exc:
                    sent.problems.append(f"{item[0]}: {type(exc).__name__}")

            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(run, zip(plan, seeds, strict=True)))
            main_cores = {v.core for v in variants}
            extra = [v for v in generate_variants(random.Random(SEED + 1), 200) if v.core not in main_cores]
            _probe(http, random.Random(SEED + 2), extra, probes)
        elapsed = time.monotonic() - started
    finally:
        _stop(process)  # SIGTERM: uvicorn's lifespan drains and closes the usage log
    cells, counts = _read_log_db(log_db)
    db_bytes = b"".join(p.read_bytes() for p in log_db.parent.glob(log_db.name + "*"))
    output = log_path.read_text(encoding="utf-8", errors="replace")
    yield PrivacyRun(sent, probes, cells, output.splitlines(), db_bytes, elapsed, counts)


# --- the scan ---------------------------------------------------------------------------------------


def _windows(core: str, size: int = 8, min_digits: int = 6) -> set[str]:
    """A variant leaks partly when a long run of its digits survives (a number masked only in part):
    every run of `size` characters of a long core holding at least `min_digits` digits. (A policy
    number's letter prefix and year, 「RDZA2018」, identify nobody and are not counted.)"""
    if len(core) < 10:
        return set()
    runs = (core[i : i + size] for i in range(len(core) - size + 1))
    return {run for run in runs if sum(c.isdigit() for c in run) >= min_digits}


# A server-made random id (a query id is uuid4().hex): its digits are random, like a number cell's,
# so a card's 8-digit run turning up inside one is chance (1 run in ~1,300 variants did), not a leak.
_RANDOM_ID = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{32}(?![0-9A-Fa-f])|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_leaks(variants: list[Variant], haystacks: list[tuple[str, str]], raw: bytes = b"") -> list[str]:
    """`haystacks`: (where, text). A variant leaks when its typed form is in a text, or its compacted
    letters and digits (whole, or a run of 8 of a long number) are in the compacted text."""
    # Numeric cells (ts, latency_ms, score …) are only checked whole: their digits are random; so are
    # random ids inside a text, which the search for a run of 8 digits skips (partial text: None).
    compacted = [(where, text, compact(text), None if _is_number(text) else compact(_RANDOM_ID.sub(" ", text)))
                 for where, text in haystacks]
    raw_text = raw.decode("utf-8", "replace")
    leaks: list[str] = []
    for v in variants:
        windows = _windows(v.core)
        for where, text, flat, partial_text in compacted:
            if v.typed in text or v.core in flat:
                leaks.append(f"{v.kind} {v.typed!r} in clear in {where}: {text[:160]!r}")
                break
            partial = next((w for w in windows if w in partial_text), None) if partial_text is not None else None
            if partial:
                leaks.append(f"{v.kind} {v.typed!r} partly ({partial}) in {where}: {text[:160]!r}")
                break
        else:
            if raw and v.typed.isascii() and len(v.typed) >= 7 and v.typed in raw_text:
                leaks.append(f"{v.kind} {v.typed!r} in the raw bytes of the log database")
    return leaks


def _haystacks(run: PrivacyRun) -> list[tuple[str, str]]:
    stacks = [(f"{table}.{column}", text) for table, column, text in run.cells]
    stacks += [(f"output line {i + 1}", line) for i, line in enumerate(run.output_lines)]
    return stacks


def _sent_variants(channel: Channel, kinds: list[str] | None = None) -> list[Variant]:
    return [v for kind, group in channel.variants.items() if kinds is None or kind in kinds for v in group]


def test_no_clear_personal_data_in_log_tables_or_output(privacy_run: PrivacyRun) -> None:
    run = privacy_run
    variants = _sent_variants(run.sent)
    print(f"privacy: {len(variants)} variants ({dict(Counter(v.kind for v in variants))}) "
          f"sent in {run.elapsed:.1f}s; statuses {dict(sorted(run.sent.statuses.items()))}; "
          f"rows {run.row_counts}; {len(run.cells)} cells; {len(run.output_lines)} output lines")
    assert len(variants) >= MIN_VARIANTS
    assert not run.sent.problems, run.sent.problems[:20]
    assert run.sent.statuses[("skipped", 0)] == 0, "the request phase ran out of time"
    assert run.elapsed < RUN_SECONDS
    # Everything sent was logged: one row per search (feedback ones too), one per feedback comment.
    searches = sum(n for (kind, status), n in run.sent.statuses.items()
                   if kind in ("search", "truncate", "feedback-search") and status == 200)
    searches += run.probes.statuses[("header", 200)]
    assert run.row_counts["queries"] == searches, (run.row_counts, searches)
    assert run.row_counts["feedback"] == run.sent.statuses[("feedback", 200)]
    assert run.row_counts["events"] > 0 and run.row_counts["impressions"] > 0
    masked_cells = [text for table, column, text in run.cells if (table, column) == ("queries", "query_masked")]
    assert sum("〔" in text for text in masked_cells) >= len(run.sent.variants["search"]) // 2  # masking did run

    leaks = find_leaks(variants, _haystacks(run), run.db_bytes)
    assert not leaks, f"{len(leaks)} of {len(variants)} variants leaked:\n" + "\n".join(leaks[:40])


def test_refused_ids_leave_no_personal_data(privacy_run: PrivacyRun) -> None:
    """Unknown query ids spelling personal data (404) reach neither the log nor the output."""
    variants = privacy_run.probes.variants["unknown-id"]
    assert variants and set(s for (k, s) in privacy_run.probes.statuses if k == "unknown-id") <= {404, 422}
    leaks = find_leaks(variants, _haystacks(privacy_run), privacy_run.db_bytes)
    assert not leaks, "\n".join(leaks)


def test_agent_and_session_headers_are_not_stored_in_clear(privacy_run: PrivacyRun) -> None:
    """X-Agent-Id / X-Session-Id are free text the client controls; queries.agent_id / session_id."""
    variants = privacy_run.probes.variants["header"]
    assert variants
    leaks = find_leaks(variants, _haystacks(privacy_run))
    assert not leaks, "\n".join(leaks)


def test_article_id_in_url_path_is_not_logged_in_clear(privacy_run: PrivacyRun) -> None:
    """GET /api/articles/<personal data> answers 404; the access log line carries the path."""
    variants = privacy_run.probes.variants["article-path"]
    assert variants
    leaks = find_leaks(variants, _haystacks(privacy_run))
    assert not leaks, "\n".join(leaks)


def test_generator_makes_valid_variants() -> None:
    """The generated data has the shapes the brief asks for (valid dates, check digits, Luhn)."""
    variants = generate_variants(random.Random(SEED), VARIANTS)
    assert len(variants) >= MIN_VARIANTS and len({v.core for v in variants}) == len(variants)
    kinds = Counter(v.kind for v in variants)
    assert set(kinds) == set(GENERATORS) and min(kinds.values()) >= 150
    for v in variants:
        core = v.core.upper()
        if v.kind == "id18":
            date(int(core[6:10]), int(core[10:12]), int(core[12:14]))
            assert ID_CHECK[sum(int(c) * w for c, w in zip(core[:17], ID_WEIGHTS, strict=True)) % 11] == core[17]
        elif v.kind == "card":
            assert 16 <= len(core) <= 19 and _luhn_complete(core[:-1]) == core
        elif v.kind == "vin":
            total = sum(VIN_VALUES[c] * w for c, w in zip(core, VIN_WEIGHTS, strict=True))
            assert core[8] == ("X" if total % 11 == 10 else str(total % 11))
        elif v.kind == "mobile":
            assert re.fullmatch(r"(?:86)?1[3-9][0-9]{9}", core)
    assert any(v.kind == "id18" and v.core.endswith("x") for v in variants)
    assert any("\u200b" in v.typed for v in variants) and any("\u2009" in v.typed for v in variants)
    assert any("\u00a0" in v.typed for v in variants) and any("１" in v.typed or "２" in v.typed for v in variants)


def test_the_scan_finds_a_partly_masked_number_but_not_chance_digits_in_a_random_id() -> None:
    """The scan itself: 8 digits of a card left in a text are a leak; the same 8 digits inside a
    query id (uuid4 hex, random) are chance, as in a CI run where 30924054 turned up in one."""
    card = Variant("card", "388716-9701730924054", "3887169701730924054")
    assert find_leaks([card], [("queries.query_masked", "卡号〔银行卡号〕尾号30924054")])
    assert not find_leaks([card], [("queries.query_id", "fb9de82630924054bc2f4d73972981a3")])
    assert not find_leaks([card], [("output line 1", "POST /api/events query_id=fb9de82630924054bc2f4d73972981a3 200")])
    assert find_leaks([card], [("queries.query_id", "3887169701730924054")])  # the whole number still counts
