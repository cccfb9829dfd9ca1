"""Person mentions out of the seven departments' JSON-lines exports, one flat row each,
cleaned as a competent Splink user would clean them before linking.

Written from the departments' documentation (field names are pinyin abbreviations);
it shares no code with the hub. A row's `unique_id` is
`record_type|source_id|role|index`, the way the hub's feed and the demo's truth.jsonl
name a mention:

| record type         | person mentions (role, index)                                   |
| ------------------- | --------------------------------------------------------------- |
| tax.taxpayer        | the taxpayer (0) when a natural person; the legal representative (0) |
| hrss.insured_person | the insured person (0)                                          |
| market.entity       | the legal representative (0)                                    |
| realestate.title    | every right holder `qlr[i]` that is a person (i)                |
| housingfund.account | the account holder (0)                                          |
| construction.permit | the project manager (0)                                         |
| civil.marriage      | the parties: `nan` (0) and `nv` (1)                             |
| civil.assistance    | every household member `jtcy[i]` (i); the head is the 本人 member |

Of each record only its current version counts: the highest `source_version`, the
first one seen among equal versions (a later copy at the same version is a conflict a
hub refuses), and nothing of a withdrawn (`deleted`) record.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator

COLUMNS = ["unique_id", "full_name", "birth_date", "sex", "id_number", "phone", "address"]

# Codes of the resident identity card in each department's document type table.
RESIDENT_CARD = {
    "tax.taxpayer": "201",
    "hrss.insured_person": "01",
    "market.entity": "10",
    "realestate.title": "1",
    "housingfund.account": "01",
    "civil.marriage": "1",
}
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
NAME_SEPARATORS = re.compile(r"[·•.．・･‧∙⋅]+")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ADDRESS_PREFIXES = ("山东省", "山东", "烟台市", "烟台", "海阳市")


# ---------------------------------------------------------------------------
# Cleaning one value


def text(value) -> str:
    """NFKC (full-width digits and letters, U+3000 → ASCII) and trimmed; '' for
    anything that is not a string."""
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else ""


def name(value) -> str | None:
    """Chinese names without spaces or minority-name separators; Latin names upper
    case with their parts sorted (departments write family and given names in either
    order)."""
    raw = text(value)
    if not raw:
        return None
    if HAN.search(raw):
        return NAME_SEPARATORS.sub("", re.sub(r"\s+", "", raw)) or None
    parts = raw.replace(",", " ").upper().split()
    return " ".join(sorted(parts)) or None


def _check_char(first17: str) -> str:
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def id_number(value, resident_card: bool) -> str | None:
    """Upper case without spaces, hyphens or parentheses; a 15-digit resident identity
    number upgraded to its 18-character form (year 19YY, check character added)."""
    cleaned = re.sub(r"[\s\-()]", "", text(value)).upper()
    if not cleaned:
        return None
    if resident_card and len(cleaned) == 15 and cleaned.isdigit():
        first17 = cleaned[:6] + "19" + cleaned[6:]
        cleaned = first17 + _check_char(first17)
    return cleaned


def _valid_date(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def date(value) -> str | None:
    """`YYYY-MM-DD`, `YYYYMMDD`, `YYYY.MM.DD`, `YYYY/M/D`, `YYYY年M月D日` → ISO date;
    None when absent, partial or impossible."""
    raw = text(value)
    if re.fullmatch(r"\d{8}", raw):
        return _valid_date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    parts = re.findall(r"\d+", raw)
    if len(parts) == 3 and len(parts[0]) == 4:
        return _valid_date(*(int(p) for p in parts))
    return None


def birth_date_from_id(number: str | None) -> str | None:
    if number and len(number) == 18 and number[:17].isdigit():
        return _valid_date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return None


def sex_from_id(number: str | None) -> str | None:
    if number and len(number) == 18 and number[:17].isdigit():
        return "M" if int(number[16]) % 2 else "F"
    return None


def sex(value) -> str | None:
    """GB/T 2261.1 codes or 男 / 女 → M / F; unknown and unstated → None."""
    return {"1": "M", "2": "F", "男": "M", "女": "F"}.get(text(value))


def phone(value) -> str | None:
    """Digits only, without +86 / 0086 and without the local area code 0535."""
    digits = re.sub(r"\D", "", text(value))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if digits.startswith("0535") and 7 <= len(digits) - 4 <= 8:
        digits = digits[4:]
    return digits or None


def address(value) -> str | None:
    """No white space, # read as 号, without the leading 山东省 / 烟台市 / 海阳市."""
    compact = re.sub(r"\s+", "", text(value)).replace("#", "号")
    for prefix in ADDRESS_PREFIXES:
        if compact.startswith(prefix) and len(compact) > len(prefix):
            compact = compact[len(prefix):]
    return compact or None


# ---------------------------------------------------------------------------
# One record → person rows


def _row(record: dict, role: str, index: int, *, name_value, number, resident, birth=None, sex_value=None,
         phone_value=None, address_value=None) -> dict:
    number_clean = id_number(number, resident)
    from_id = number_clean if resident else None
    return {
        "unique_id": f"{record['record_type']}|{record['source_id']}|{role}|{index}",
        "full_name": name(name_value),
        "birth_date": date(birth) or birth_date_from_id(from_id),
        "sex": sex(sex_value) or sex_from_id(from_id),
        "id_number": number_clean,
        "phone": phone(phone_value),
        "address": address(address_value),
    }


def _is_resident(record_type: str, code) -> bool:
    return text(code) == RESIDENT_CARD[record_type]


def _tax(record: dict, p: dict) -> Iterator[dict]:
    rt = record["record_type"]
    if text(p.get("nsrlx")) == "3":
        yield _row(record, "taxpayer", 0, name_value=p.get("nsrmc"), number=p.get("nsrsbh"),
                   resident=_is_resident(rt, p.get("zjlx_dm")), phone_value=p.get("lxdh"),
                   address_value=p.get("zcdz"))
    if text(p.get("fddbrxm")) or text(p.get("fddbr_zjhm")):
        yield _row(record, "legal_representative", 0, name_value=p.get("fddbrxm"), number=p.get("fddbr_zjhm"),
                   resident=_is_resident(rt, p.get("fddbr_zjlx_dm")))


def _hrss(record: dict, p: dict) -> Iterator[dict]:
    yield _row(record, "insured", 0, name_value=p.get("xm"), number=p.get("sfzhm"),
               resident=_is_resident(record["record_type"], p.get("zjlx")), birth=p.get("csrq"),
               sex_value=p.get("xb"), phone_value=p.get("lxdh"),
               address_value=text(p.get("jzdz")) or p.get("hjdz"))


def _market(record: dict, p: dict) -> Iterator[dict]:
    if text(p.get("fddbr")) or text(p.get("fddbr_zjhm")):
        yield _row(record, "legal_representative", 0, name_value=p.get("fddbr"), number=p.get("fddbr_zjhm"),
                   resident=_is_resident(record["record_type"], p.get("fddbr_zjlx")))


def _realestate(record: dict, p: dict) -> Iterator[dict]:
    for i, holder in enumerate(p.get("qlr") or []):
        if isinstance(holder, dict) and text(holder.get("qlrlx")) == "1":
            yield _row(record, "right_holder", i, name_value=holder.get("qlrmc"), number=holder.get("zjh"),
                       resident=_is_resident(record["record_type"], holder.get("zjzl")),
                       phone_value=holder.get("dh"), address_value=holder.get("dz"))


def _housingfund(record: dict, p: dict) -> Iterator[dict]:
    # csny is a year and month only: the full date comes from the identity number.
    yield _row(record, "account_holder", 0, name_value=p.get("xingming"), number=p.get("zjhm"),
               resident=_is_resident(record["record_type"], p.get("zjlx")), phone_value=p.get("sjhm"))


def _construction(record: dict, p: dict) -> Iterator[dict]:
    manager = p.get("xmjl")
    if isinstance(manager, dict):
        yield _row(record, "project_manager", 0, name_value=manager.get("xm"), number=manager.get("zjhm"),
                   resident=True, phone_value=manager.get("lxdh"))


def _marriage(record: dict, p: dict) -> Iterator[dict]:
    for index, (field, sex_value) in enumerate((("nan", "男"), ("nv", "女"))):
        party = p.get(field)
        if isinstance(party, dict):
            yield _row(record, "party", index, name_value=party.get("xm"), number=party.get("zjhm"),
                       resident=_is_resident(record["record_type"], party.get("zjlx")), birth=party.get("csrq"),
                       sex_value=sex_value, address_value=party.get("hjdz"))


def _assistance(record: dict, p: dict) -> Iterator[dict]:
    for i, member in enumerate(p.get("jtcy") or []):
        if not isinstance(member, dict):
            continue
        head = text(member.get("yhzgx")) == "本人"
        yield _row(record, "member", i,
                   name_value=text(member.get("xm")) or (p.get("hzxm") if head else ""),
                   number=text(member.get("sfzh")) or (p.get("hzsfzh") if head else ""),
                   resident=True, birth=member.get("csrq"), sex_value=member.get("xb"),
                   phone_value=p.get("lxdh") if head else None, address_value=p.get("jzdz"))


READERS = {
    "tax.taxpayer": _tax,
    "hrss.insured_person": _hrss,
    "market.entity": _market,
    "realestate.title": _realestate,
    "housingfund.account": _housingfund,
    "construction.permit": _construction,
    "civil.marriage": _marriage,
    "civil.assistance": _assistance,
}


# ---------------------------------------------------------------------------
# Files → rows


def current_records(files: Iterable[Path]) -> Iterator[dict]:
    """The current version of every record in the files (see the module's doc)."""
    current: dict[tuple[str, str], dict] = {}
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                    key = (record["record_type"], record["source_id"])
                    version = int(record["source_version"])
                except (ValueError, KeyError, TypeError):
                    continue
                if not isinstance(record.get("payload"), dict) or record["record_type"] not in READERS:
                    continue
                held = current.get(key)
                if held is None or version > int(held["source_version"]):
                    current[key] = record
    for record in current.values():
        if not record.get("deleted"):
            yield record


def person_rows(files: Iterable[Path]) -> list[dict]:
    rows = []
    for record in current_records(files):
        rows.extend(READERS[record["record_type"]](record, record["payload"]))
    return rows


def _self_test() -> None:
    assert name(" 王　伟 ") == "王伟" and name("买买提．吐尔逊") == "买买提吐尔逊"
    assert name("Kim, Min Jun") == name("MIN JUN KIM") == "JUN KIM MIN"
    assert id_number(" 37068719960425644x ", True) == "37068719960425644X"
    assert id_number("370629870611512", True) == "370629198706115123"[:17] + _check_char("37062919870611512")
    assert date("1992-01-29") == date("19920129") == date("1992.01.29") == date("1992/1/29") == "1992-01-29"
    assert date("1992年1月29日") == "1992-01-29" and date("199201") is None and date("1992-02-30") is None
    assert phone("+86 189-3367-7316") == phone("008618933677316") == "18933677316"
    assert phone("0535-8691705") == phone("8691705") == "8691705"
    assert address("山东省烟台市海阳市发城镇东方村９０#") == address("发城镇东方村90号") == "发城镇东方村90号"


if __name__ == "__main__":
    _self_test()
    print("extract: self-test passed")
