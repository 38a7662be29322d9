import pytest

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
from kb_service.querynorm import normalise_query

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


def test_masking_is_idempotent_and_empty_safe() -> None:
    once = mask_personal_data("手机13812345678")
    assert mask_personal_data(once) == once
    assert mask_personal_data("") == ""


def test_normalise_query_groups_surface_variants() -> None:
    assert normalise_query("三者险 赔多少？") == normalise_query("三者险赔多少")
    assert normalise_query("ＡＢＣ，车损险！") == "abc车损险"
    assert normalise_query("  交强险\u200b 。") == "交强险"


def test_normalise_query_keeps_masking_placeholders() -> None:
    masked = mask_personal_data("手机13812345678 怎么改？")
    assert normalise_query(masked) == f"手机{MOBILE}怎么改"
    assert normalise_query(masked) != normalise_query("手机 手机号怎么改")
