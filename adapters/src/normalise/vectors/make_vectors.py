#!/usr/bin/env python3
"""Writes check_characters.txt: check-character vectors for the normalisation tests.

The reference is python-stdnum, not our Rust code:
  - stdnum.cn.ric.calc_check_digit for resident identity numbers (GB 11643),
  - stdnum.cn.uscc.calc_check_digit for unified social credit codes (GB 32100),
  - stdnum.iso7064.mod_11_10 for the 15-digit business registration numbers.
stdnum has no GB 11714 (organisation code), so gb11714() below is written from the
standard, apart from the Rust implementation.

Run by hand, never by the tests (they read the committed output):
    python3 -m venv /tmp/stdnum && /tmp/stdnum/bin/pip install python-stdnum
    /tmp/stdnum/bin/python make_vectors.py > check_characters.txt

Lines: kind <TAB> input <TAB> verdict [<TAB> details]
  ric     18 characters   valid <TAB> YYYY-MM-DD <TAB> male|female | wrong_check | bad_date
  ric15   15 digits       the 18-character upgrade
  uscc    18 characters   valid <TAB> organisation code (or - when positions 9-17 fail GB 11714) | wrong_check
  orgcode 9 or 10 chars   valid | wrong_check
  taxid   15 characters   valid | wrong_check
  regno   15 digits       valid | wrong_check
"""

import datetime
import random

from stdnum.cn import ric, uscc
from stdnum.iso7064 import mod_11_10

rng = random.Random(20240305)

REGIONS = ["370687", "370629", "370602", "370611", "370682", "110105", "310104", "650102", "440305", "510107"]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_BODY_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # letters a USCC can carry


def gb11714(body8):
    """GB 11714 check character: weights 3 7 9 10 5 8 4 2, A=10 .. Z=35,
    C = 11 - (sum mod 11), 10 written X and 11 written 0."""
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c, 36) * w for c, w in zip(body8, weights))
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def random_date(first_year=1900, last_year=2020):
    start = datetime.date(first_year, 1, 1).toordinal()
    end = datetime.date(last_year, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(start, end))


def ric_lines():
    lines = []
    for i in range(150):
        born = random_date()
        first17 = f"{rng.choice(REGIONS)}{born:%Y%m%d}{rng.randint(0, 999):03d}"
        check = ric.calc_check_digit(first17 + "?")
        number = first17 + check
        assert ric.get_birth_date(number) == born
        sex = "male" if int(first17[16]) % 2 == 1 else "female"
        typed = number.lower() if check == "X" and i % 2 == 0 else number
        lines.append(f"ric\t{typed}\tvalid\t{born:%Y-%m-%d}\t{sex}")
        if i % 2 == 0:
            wrong = rng.choice([c for c in "0123456789X" if c != check])
            lines.append(f"ric\t{first17}{wrong}\twrong_check")
    # Impossible birth dates with a correct check character.
    for bad in ["19990229", "19000229", "20230230", "19851301", "19850001", "19850100", "19850432",
                "20010631", "19770931", "19851132", "19860000", "19991231"[:4] + "1300"]:
        for _ in range(3):
            first17 = f"{rng.choice(REGIONS)}{bad}{rng.randint(0, 999):03d}"
            try:
                datetime.date(int(bad[:4]), int(bad[4:6]), int(bad[6:]))
                raise SystemExit(f"{bad} is a real date")
            except ValueError:
                pass
            lines.append(f"ric\t{first17}{ric.calc_check_digit(first17 + '?')}\tbad_date")
    return lines


def ric15_lines():
    lines = []
    for _ in range(50):
        born = random_date(1900, 1999)
        number15 = f"{rng.choice(REGIONS)}{born:%y%m%d}{rng.randint(0, 999):03d}"
        first17 = number15[:6] + "19" + number15[6:]
        lines.append(f"ric15\t{number15}\t{first17}{ric.calc_check_digit(first17 + '?')}")
    return lines


def org_body():
    return "".join(rng.choice(ORG_BODY_ALPHABET) for _ in range(8))


def uscc_lines():
    lines = []
    for i in range(120):
        body = org_body()
        # Most codes carry a valid organisation code; some do not (the USCC check alone vouches for them).
        org = body + (gb11714(body) if i % 6 else rng.choice("0123456789X"))
        authority = rng.choice("9915NY")
        category = rng.choice("1231")
        first17 = f"{authority}{category}{rng.choice(REGIONS)}{org}"
        check = uscc.calc_check_digit(first17)
        code = first17 + check
        if authority.isdigit():
            assert uscc.is_valid(code), code
        embedded = org if gb11714(org[:8]) == org[8] else "-"
        typed = code.lower() if i % 10 == 0 else code
        lines.append(f"uscc\t{typed}\tvalid\t{embedded}")
        if i % 2 == 0:
            wrong = rng.choice([c for c in USCC_ALPHABET if c != check])
            if authority.isdigit():
                assert not uscc.is_valid(first17 + wrong)
            lines.append(f"uscc\t{first17}{wrong}\twrong_check")
    return lines


def orgcode_lines():
    lines = []
    for i in range(70):
        body = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        check = gb11714(body)
        typed = f"{body}-{check}" if i % 3 == 0 else body + check
        lines.append(f"orgcode\t{typed}\tvalid")
        if i % 2 == 0:
            wrong = rng.choice([c for c in "0123456789X" if c != check])
            lines.append(f"orgcode\t{body}{wrong}\twrong_check")
    # Hand-computed: D2143569 → 13·3 + 2·7 + 1·9 + 4·10 + 3·5 + 5·8 + 6·4 + 9·2 = 199,
    # 199 mod 11 = 1, 11 - 1 = 10 → X.
    assert gb11714("D2143569") == "X"
    lines.append("orgcode\tD2143569-X\tvalid")
    # 6·3 + 3·5 + 7·8 + 3·4 + 4·2 = 109, 109 mod 11 = 10, 11 - 10 = 1.
    assert gb11714("60003734") == "1"
    lines.append("orgcode\t60003734-1\tvalid")
    return lines


def taxid_lines():
    lines = []
    for i in range(40):
        body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        check = gb11714(body)
        lines.append(f"taxid\t{rng.choice(REGIONS)}{body}{check}\tvalid")
        if i % 2 == 0:
            wrong = rng.choice([c for c in "0123456789X" if c != check])
            lines.append(f"taxid\t{rng.choice(REGIONS)}{body}{wrong}\twrong_check")
    return lines


def regno_lines():
    lines = []
    for _ in range(50):
        body = rng.choice(REGIONS) + "".join(rng.choice("0123456789") for _ in range(8))
        check = mod_11_10.calc_check_digit(body)
        assert mod_11_10.is_valid(body + check)
        lines.append(f"regno\t{body}{check}\tvalid")
        wrong = rng.choice([c for c in "0123456789" if c != check])
        assert not mod_11_10.is_valid(body + wrong)
        lines.append(f"regno\t{body}{wrong}\twrong_check")
    return lines


def main():
    print("# Generated by make_vectors.py from python-stdnum; do not edit by hand.")
    for line in ric_lines() + ric15_lines() + uscc_lines() + orgcode_lines() + taxid_lines() + regno_lines():
        print(line)


if __name__ == "__main__":
    main()
