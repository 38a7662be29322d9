from __future__ import annotations

import re
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_service.masking import (
    BANK_CARD,
    EMAIL,
    ID_CARD,
    MOBILE,
    PLATE,
    POLICY_NUMBER,
    VIN,
    mask_personal_data,
)
from kb_service.usage_log.grouping import grouping_form

# (what an agent pasted, what must be stored)
MASKED = [
    # 身份证号
    ("客户身份证110101199003071234要改投保人信息", f"客户身份证{ID_CARD}要改投保人信息"),
    ("身份证号是11010519851201002X，能查保单吗", f"身份证号是{ID_CARD}，能查保单吗"),
    ("证件号 11010519851201002x 核对一下", f"证件号 {ID_CARD} 核对一下"),
    ("身份证 110101 19900307 1234 的客户来电", f"身份证 {ID_CARD} 的客户来电"),
    ("身份证 110101 1990 0307 1234", f"身份证 {ID_CARD}"),
    ("老一代身份证110101900307123还能用吗", f"老一代身份证{ID_CARD}还能用吗"),
    # 手机号
    ("客户手机13812345678一直打不通怎么办", f"客户手机{MOBILE}一直打不通怎么办"),
    ("回访电话 139 1234 5678 预约明天", f"回访电话 {MOBILE} 预约明天"),
    ("手机号158-1234-5678改成新号码", f"手机号{MOBILE}改成新号码"),
    ("+86 186 0000 1234 境外来电", f"{MOBILE} 境外来电"),
    ("8613712345678是客户号码", f"{MOBILE}是客户号码"),
    ("手机：１３８１２３４５６７８", f"手机：{MOBILE}"),
    # 车牌号
    ("车牌粤B12345在高速追尾", f"车牌{PLATE}在高速追尾"),
    ("京A·88K52的车被水淹了能赔吗", f"{PLATE}的车被水淹了能赔吗"),
    ("沪C 3X721 出险两次了", f"{PLATE} 出险两次了"),
    ("新能源车粤B D12345充电起火", f"新能源车{PLATE}充电起火"),
    ("京AD12345电池进水算不算", f"{PLATE}电池进水算不算"),
    ("货车苏E12345D年检", f"货车{PLATE}年检"),
    ("教练车川A1234学被撞", f"教练车{PLATE}被撞"),
    # 银行卡号
    ("理赔款打到卡号6222021234567890123吗", f"理赔款打到卡号{BANK_CARD}吗"),
    ("银行卡 6222 0212 3456 7890 收不到退保费", f"银行卡 {BANK_CARD} 收不到退保费"),
    ("卡号6217-0012-3456-7890-123", f"卡号{BANK_CARD}"),
    ("信用卡4367421234567890扣款失败", f"信用卡{BANK_CARD}扣款失败"),
    # 保单号 / 报案号
    ("保单号PDAA202411000123456查不到", f"保单号{POLICY_NUMBER}查不到"),
    ("报案号RDAA2024110012345进度", f"报案号{POLICY_NUMBER}进度"),
    ("案件号 RC-2024-1100-1234 什么时候结案", f"案件号 {POLICY_NUMBER} 什么时候结案"),
    ("批单号2024110100123批改", f"批单号{POLICY_NUMBER}批改"),
    # 邮箱
    ("电子保单发到zhang.san@qq.com没收到", f"电子保单发到{EMAIL}没收到"),
    ("邮箱 li_si-88@company.com.cn 发票", f"邮箱 {EMAIL} 发票"),
    # 车架号 (valid check digit)
    ("车架号LFV2A21K0P3012345核对", f"车架号{VIN}核对"),
    # The same data spaced or punctuated the ways a fuzzing pass found getting through.
    ("手机138.1234.5678", f"手机{MOBILE}"),
    ("手机138  1234  5678", f"手机{MOBILE}"),
    ("手机138\u200b1234\u200c5678\u200d", f"手机{MOBILE}"),
    ("手机\u2060138\ufeff1234\u20605678", f"手机{MOBILE}"),
    ("手机138\u20091234\u202f5678", f"手机{MOBILE}"),
    ("手机138\u00a01234\u30005678", f"手机{MOBILE}"),
    ("手机138/1234/5678", f"手机{MOBILE}"),
    ("手机１３８－１２３４－５６７８", f"手机{MOBILE}"),
    ("手机１３８／１２３４．５６７８", f"手机{MOBILE}"),
    ("+86 138-1234-5678境外", f"{MOBILE}境外"),
    ("(+86)138 1234 5678", MOBILE),
    ("手机138，1234，5678", f"手机{MOBILE}"),
    ("手机138:1234:5678", f"手机{MOBILE}"),
    ("手机1 3 8 1 2 3 4 5 6 7 8", f"手机{MOBILE}"),
    ("车牌粤 B12345", f"车牌{PLATE}"),
    ("车牌粤B-12345", f"车牌{PLATE}"),
    ("车牌粤·B12345", f"车牌{PLATE}"),
    ("车牌粤 B 12345", f"车牌{PLATE}"),
    ("车牌粤b12345", f"车牌{PLATE}"),
    ("车牌粤B·D12345", f"车牌{PLATE}"),
    ("车牌粤 b-d12345", f"车牌{PLATE}"),
    ("车牌粤B 12345D", f"车牌{PLATE}"),
    ("卡号6222.0212.3456.7890", f"卡号{BANK_CARD}"),
    ("卡号6222/0212/3456/7890/123", f"卡号{BANK_CARD}"),
    ("卡号6222 - 0212 - 3456 - 7890", f"卡号{BANK_CARD}"),
    ("卡号622202 1234567890123", f"卡号{BANK_CARD}"),
    ("卡号4111，1111，1111，1111", f"卡号{BANK_CARD}"),  # other punctuation: Luhn-valid only
    ("身份证110101 19900307 1234", f"身份证{ID_CARD}"),
    ("身份证110101-1990-0307-1234", f"身份证{ID_CARD}"),
    ("身份证110101.19900307.123X", f"身份证{ID_CARD}"),
    ("身份证110101，19900307，123x", f"身份证{ID_CARD}"),
    ("邮箱zhang.san @ qq.com", f"邮箱{EMAIL}"),
    ("邮箱zhang.san@qq。com", f"邮箱{EMAIL}"),
    ("邮箱zhang.san＠qq．com", f"邮箱{EMAIL}"),
    ("车架号LFV 2A21K 0P3 012345", f"车架号{VIN}"),
    ("车架号LFV-2A21K0P3-012345", f"车架号{VIN}"),
    ("保单号PDAA 2024 1100 0123 456", f"保单号{POLICY_NUMBER}"),
    ("保单号PDAA-2024-1100-0123-456", f"保单号{POLICY_NUMBER}"),
    ("报案号RA 2024071500326", f"报案号{POLICY_NUMBER}"),
    ("报案号RA-20240715-00326", f"报案号{POLICY_NUMBER}"),
    ("报案号RA 2024 0715 00326", f"报案号{POLICY_NUMBER}"),
    ("批单号 2024 1101 00123", f"批单号 {POLICY_NUMBER}"),
]

# Ordinary service text that must survive untouched.
NOT_MASKED = [
    "理赔款一般3-7个工作日到账",
    "退保费5-10个工作日退回",
    "出险后24小时内报案",
    "2024年的保单能续保吗",
    "话术控制在120-150字",
    "30秒内响应客户",
    "质检80分算合格吗",
    "1-3个工作日审核",
    "60天内补齐材料",
    "续保优惠5-10%",
    "拨打95518报案",
    "三者险赔100万够吗",
    "交强险2000元医疗费用限额",
    "2024-11-25出的险",
    "2024-11-25 2024-12-31 两次出险",
    "iPhone15ProMax 摔坏能不能保",
    "新Model3 的车损险",
    "车损险 A1 条款",
    "第3条第2款",
    "3-7个工作日",
    "2024年",
    "2024-07-15",
    "2024.07.15 和 2024/07/15",
    "2024年7月15日出险",
    "5-10%",
    "120-150字",
    "3.8万元",
    "24小时",
    "48小时",
    "第12个工作日",
    "4S店",
    "12378",
    "95519",
    "11:30",
    "9:30-13:30，14:00-17:30",
    "2024-11-25 13:30:45出险",
    "KPI",
    "VIP",
    "新Model",
    "新Model Y",
    "第13、15、16、17、18条",
    "2022 2023 2024年都出过险",
    "2021、2022、2023、2024年",
    "1000 2000 3000元三档",
    "3000、5000、6000、8000元",
    "金额13,800,000,000元",
    "文章 claim-traffic-accident 第2节",
    "iPhone 15 Pro 摔坏",
    "拨打95519转1号键",
    "0.5%的手续费",
    "1.5倍",
]


@pytest.mark.parametrize(("raw", "expected"), MASKED)
def test_masks_personal_data(raw: str, expected: str) -> None:
    assert mask_personal_data(raw) == expected


@pytest.mark.parametrize("text", NOT_MASKED)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert mask_personal_data(text) == text


def test_several_kinds_in_one_message() -> None:
    pasted = "客户王先生，身份证110101199003071234，电话13812345678，车牌粤B12345，保单PDAA202411000123456"
    masked = mask_personal_data(pasted)
    assert masked == f"客户王先生，身份证{ID_CARD}，电话{MOBILE}，车牌{PLATE}，保单{POLICY_NUMBER}"
    assert not any(ch.isdigit() for ch in masked)


def test_id_number_is_not_taken_for_phone_or_card() -> None:
    # 18-digit ID contains an 11-digit substring starting with 13; ID must win.
    assert mask_personal_data("110101198013812345") != f"{MOBILE}"
    assert mask_personal_data("身份证110101198001138123") == f"身份证{ID_CARD}"


def test_invalid_vin_falls_back_to_long_code() -> None:
    # Same shape as a VIN but wrong check digit: still masked, as a generic number.
    assert mask_personal_data("LFV2A21K1P3012345") == POLICY_NUMBER


def test_check_character_after_card_groups_is_no_card_digit() -> None:
    # 「X」 closes an ID number; after card-shaped groups it must not be taken for a Luhn digit.
    text = "4111，1111，1111，111X"
    assert mask_personal_data(grouping_form(mask_personal_data(text))) == POLICY_NUMBER


def test_masking_is_idempotent_and_empty_safe() -> None:
    once = mask_personal_data("手机13812345678")
    assert mask_personal_data(once) == once
    assert mask_personal_data("") == ""


def test_normalise_query_groups_surface_variants() -> None:
    assert grouping_form("三者险 赔多少？") == grouping_form("三者险赔多少")
    assert grouping_form("ＡＢＣ，车损险！") == "abc车损险"
    assert grouping_form("  交强险\u200b 。") == "交强险"


def test_normalise_query_keeps_masking_placeholders() -> None:
    masked = mask_personal_data("手机13812345678 怎么改？")
    assert grouping_form(masked) == f"手机{MOBILE}怎么改"
    assert grouping_form(masked) != grouping_form("手机 手机号怎么改")


# --- property-based: personal data typed every which way --------------------------------------
# Separators the fuzzing pass used: spaces (double too), zero-width and thin/narrow spaces,
# dashes, dots, slashes, middle dots, full-width forms.
SEPARATORS = [
    "", " ", "  ", "-", ".", "/", "·", "_", " - ", " / ", "—", "－", "．", "／", "。",
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200b\u200b",
    "\u2009", "\u202f", "\u00a0", "\u3000",
]
# Phones and IDs: any punctuation between groups.
WIDE_SEPARATORS = [*SEPARATORS, "，", "、", ":", "~", "*", "|", " , ", "--"]
CONTEXT = st.text(alphabet="客户的手机号码是请帮忙查一下保单理赔车牌电话邮箱身份证银行卡了吗，。：！？、（） ", max_size=10)
PLACEHOLDER = re.compile(r"〔[^〔〕\s]{1,8}〕")
FAST = settings(max_examples=200, deadline=None, database=None)


def _full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if ch.isascii() and (ch.isalnum() or ch in "-./@+") else ch


@st.composite
def _typed(draw: st.DrawFn, groups: list[str], separators: list[str]) -> str:
    """Groups joined by random separators, each character randomly full-width."""
    text = groups[0] + "".join(draw(st.sampled_from(separators)) + g for g in groups[1:])
    wide = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(_full_width(ch) if w else ch for ch, w in zip(text, wide, strict=True))


def _split(digits: str, sizes: tuple[int, ...]) -> list[str]:
    groups, at = [], 0
    for size in sizes:
        groups.append(digits[at : at + size])
        at += size
    return [g for g in groups if g]


@st.composite
def phones(draw: st.DrawFn) -> str:
    digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    sizes = draw(st.sampled_from([(11,), (3, 4, 4), (3, 8), (7, 4), (4, 4, 3), (3, 4, 2, 2), (1,) * 11]))
    prefix = draw(st.sampled_from(["", "+86", "86", "0086", "(+86)"]))
    groups = _split(digits, sizes)
    return draw(_typed([prefix, *groups] if prefix else groups, WIDE_SEPARATORS))


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2023, 12, 31)))
    digits = (
        draw(st.sampled_from("123456789"))
        + draw(st.text("0123456789", min_size=5, max_size=5))
        + born.strftime("%Y%m%d")
        + draw(st.text("0123456789", min_size=3, max_size=3))
        + draw(st.sampled_from("0123456789Xx"))
    )
    sizes = draw(st.sampled_from([(18,), (6, 8, 4), (6, 4, 4, 4), (3, 3, 4, 4, 4), (6, 4, 2, 2, 4), (6, 8, 3, 1)]))
    return draw(_typed(_split(digits, sizes), WIDE_SEPARATORS))


@st.composite
def bank_cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(16, 19))
    digits = draw(st.sampled_from("3456")) + draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    sizes = draw(st.sampled_from([(length,), (4, 4, 4, 4, 4), (6, length - 6)]))
    return draw(_typed(_split(digits, sizes), SEPARATORS))


@st.composite
def plates(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"))
    letter = draw(st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"))
    numbers = draw(st.text("0123456789", min_size=5, max_size=5))
    serial = draw(
        st.sampled_from(
            [
                numbers,  # ordinary: 粤B12345
                numbers[:3] + draw(st.sampled_from("ABCKXYZ")) + numbers[3:4],  # ordinary: 沪C123X4
                draw(st.sampled_from("DFdf")) + draw(st.sampled_from("ABC0123")) + numbers[:4],  # new energy
                numbers + draw(st.sampled_from("DFdf")),  # new energy, large vehicle
            ]
        )
    )
    return draw(_typed([province, letter, serial], SEPARATORS))


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[a-z][a-z0-9]{1,8}(?:[._][a-z0-9]{1,6})?", fullmatch=True))
    domain = draw(st.from_regex(r"[a-z0-9]{2,8}", fullmatch=True))
    tld = draw(st.sampled_from(["com", "cn", "net", "org"]))
    around_at = draw(st.sampled_from(["", " ", "  ", "\u3000", "\u00a0"]))
    at = draw(st.sampled_from(["@", "＠"]))
    dot = draw(st.sampled_from([".", "。", "．", " . ", "｡"]))
    text = f"{local}{around_at}{at}{around_at}{domain}{dot}{tld}"
    return "".join(_full_width(ch) if ch.isalnum() and draw(st.booleans()) else ch for ch in text)


def _letters_and_digits(text: str) -> str:
    """What is left of a value once every separator is dropped (width and case folded)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum()).lower()


def _assert_hidden(value: str, masked: str) -> None:
    # Digits left outside the placeholders, all together (a number masked only in its middle
    # would leave digits on both sides), must not make up a long number.
    left = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", PLACEHOLDER.sub("", masked)))
    assert len(left) < 7, (value, masked)
    assert _letters_and_digits(value) not in _letters_and_digits(masked), (value, masked)


@FAST
@given(st.one_of(phones(), id_numbers(), bank_cards(), plates(), emails()), CONTEXT, CONTEXT)
def test_personal_data_is_masked_however_it_is_typed(value: str, before: str, after: str) -> None:
    masked = mask_personal_data(before + value + after)
    _assert_hidden(value, masked)
    # Masking what is stored again (the log masks the normalised form once more) changes nothing.
    assert mask_personal_data(masked) == masked


@FAST
@given(st.one_of(phones(), id_numbers(), bank_cards(), plates(), emails()), CONTEXT, CONTEXT)
def test_normalised_masked_text_holds_no_personal_data(value: str, before: str, after: str) -> None:
    normalised = grouping_form(mask_personal_data(before + value + after))
    _assert_hidden(value, normalised)


# Ordinary service sentences: short numbers, ranges, dates, times, percentages and amounts,
# always with words between them (two numbers side by side can add up to a long run).
ORDINARY_NUMBERS = st.one_of(
    st.integers(0, 9999).map(str),
    st.tuples(st.integers(1, 120), st.integers(1, 150)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(
        st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
        st.sampled_from(["%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d", "%Y年%m月%d日"]),
    ).map(lambda t: t[0].strftime(t[1])),
    st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]}:{t[1]:02d}"),
    st.tuples(st.integers(0, 99), st.integers(0, 9)).map(lambda t: f"{t[0]}.{t[1]}%"),
)
ORDINARY_WORDS = st.sampled_from(["个工作日", "年内", "小时", "万元", "天内", "字", "倍", "号键", "次", "出险后", "理赔"])


@FAST
@given(st.lists(st.tuples(ORDINARY_NUMBERS, ORDINARY_WORDS), min_size=1, max_size=6))
def test_ordinary_numbers_in_sentences_are_untouched(pieces: list[tuple[str, str]]) -> None:
    text = "".join(number + word for number, word in pieces)
    assert mask_personal_data(text) == text
