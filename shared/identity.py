"""Resident identity numbers (居民身份证号码, GB 11643-1999): validation, masking and keyed fingerprints.

An identity number never leaves the intake service in clear (see docs/domain.md). This module gives the
intake service what it needs to keep that promise: error messages that never repeat the number, masks
for display, and an HMAC fingerprint for lookups (bad-credit list, duplicate detection) that does not
require storing or reading the number itself.

Layout of the 18 characters:
    positions 1-6   address code (province, city, district)
    positions 7-14  birth date, YYYYMMDD
    positions 15-17 sequence number (the 17th is odd for men, even for women)
    position  18    check character, ISO 7064 MOD 11-2 over the first 17 digits ("X" stands for 10)
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

IdNumberProblem = Literal["wrong_length", "bad_characters", "bad_birth_date", "bad_checksum"]

ID_NUMBER_LENGTH = 18
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# Weight of position i is 2**(17 - i) mod 11 (ISO 7064 MOD 11-2), written out as the standard lists it.
_CHECKSUM_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"  # indexed by (weighted sum mod 11)

# re.ASCII matters: without it \d would also accept full-width and other Unicode digits.
_ID_NUMBER_SHAPE = re.compile(r"\d{17}[\dX]", re.ASCII)
_SEVENTEEN_DIGITS = re.compile(r"\d{17}", re.ASCII)

# "Today" for the future-birth-date check is the date in China, whatever the server's own time zone.
_CHINA_TIME = ZoneInfo("Asia/Shanghai")

# An HMAC key shorter than this would make the fingerprint of a small number space easy to reverse.
MIN_FINGERPRINT_KEY_BYTES = 16


class InvalidIdNumber(ValueError):
    """An identity number was refused. ``reason`` is machine-readable; the message never holds the number."""

    def __init__(self, reason: IdNumberProblem, message: str) -> None:
        super().__init__(message)
        self.reason: IdNumberProblem = reason

    def __reduce__(self):  # keeps the exception picklable despite the two-argument constructor
        return (type(self), (self.reason, str(self)))


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """Return the normalised number (surrounding whitespace removed, check character "X" upper case).

    Raises InvalidIdNumber, checking in this order: length, characters, birth date, checksum.
    ``today`` bounds the birth date; it defaults to the current date in China.
    Only the 18-character second-generation format is accepted; the address code is not checked against
    the list of administrative divisions.
    """
    if not isinstance(value, str):
        raise TypeError(f"ID number must be a str, got {type(value).__name__}")
    candidate = value.strip().upper()
    if len(candidate) != ID_NUMBER_LENGTH:
        raise InvalidIdNumber(
            "wrong_length", f"ID number must be {ID_NUMBER_LENGTH} characters long, got {len(candidate)}"
        )
    if not _ID_NUMBER_SHAPE.fullmatch(candidate):
        raise InvalidIdNumber(
            "bad_characters", "ID number must be 17 digits followed by a digit or X (GB 11643)"
        )
    _check_birth_date(candidate[6:14], today if today is not None else datetime.now(_CHINA_TIME).date())
    if _check_character(candidate[:17]) != candidate[17]:
        raise InvalidIdNumber("bad_checksum", "ID number checksum does not match (GB 11643)")
    return candidate


def make_valid_id_number(prefix17: str) -> str:
    """Append the check character to 17 digits. The birth date inside is not checked, on purpose:
    tests use this to build numbers whose only defect is the date."""
    if not isinstance(prefix17, str) or not _SEVENTEEN_DIGITS.fullmatch(prefix17):
        raise ValueError("make_valid_id_number needs exactly 17 ASCII digits")
    return prefix17 + _check_character(prefix17)


def mask_id_number(value: str) -> str:
    """Keep the first 4 and the last 2 characters: "3201************3X".

    The first 4 are province and city, enough for staff to see whether the person is local; the last 2
    are what people recognise their own number by. The district, the birth date and most of the sequence
    number stay hidden. A value that is not exactly 18 characters (it cannot be a valid number) is masked
    completely, so a malformed input never leaks through its mask.
    """
    candidate = value.strip().upper()
    if len(candidate) != ID_NUMBER_LENGTH:
        return "*" * len(candidate)
    return candidate[:4] + "*" * (ID_NUMBER_LENGTH - 6) + candidate[-2:]


def mask_phone(value: str) -> str:
    """Keep the first 3 and the last 4 characters: "13812345678" -> "138****5678".

    Values shorter than 11 characters (short local numbers, fragments) are masked completely, because
    keeping 7 characters of them would reveal most of the number.
    """
    candidate = value.strip()
    if len(candidate) < 11:
        return "*" * len(candidate)
    return candidate[:3] + "*" * (len(candidate) - 7) + candidate[-4:]


def mask_name(value: str) -> str:
    """Keep the first character, star the rest, keep the length: "刘金花" -> "刘**", "张三" -> "张*".

    For Chinese names the first character is the surname (or the first half of a compound one). The same
    rule applies to any other script: "Anna Lee" -> "A*******". A one-character value is starred entirely,
    since keeping it would show the whole value.
    """
    candidate = value.strip()
    if len(candidate) <= 1:
        return "*" * len(candidate)
    return candidate[0] + "*" * (len(candidate) - 1)


def id_number_fingerprint(value: str, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the normalised number, for lookups without keeping the number in clear.

    The number is validated first (InvalidIdNumber if it is not valid), so "x" and "X" spellings share
    a fingerprint and garbage never gets one. The birth date is not compared with today here, so that a
    fingerprint never depends on the clock: check that with validate_id_number and the caller's own
    "today" before fingerprinting. The key must stay secret and fixed: there are few enough
    valid numbers that anyone holding the key can recover a number from its fingerprint by trying them
    all, and changing the key orphans every stored fingerprint.
    """
    if not isinstance(key, bytes):
        raise TypeError("fingerprint key must be bytes")
    if len(key) < MIN_FINGERPRINT_KEY_BYTES:
        raise ValueError(f"fingerprint key must be at least {MIN_FINGERPRINT_KEY_BYTES} bytes")
    normalised = validate_id_number(value, today=date.max)
    return hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()


def _check_character(first17: str) -> str:
    weighted_sum = sum(int(digit) * weight for digit, weight in zip(first17, _CHECKSUM_WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[weighted_sum % 11]


def _check_birth_date(yyyymmdd: str, today: date) -> None:
    try:
        birth_date = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise InvalidIdNumber(
            "bad_birth_date", "ID number birth date (characters 7-14) is not a real date"
        ) from None
    if birth_date > today:
        raise InvalidIdNumber("bad_birth_date", "ID number birth date (characters 7-14) is in the future")
    if birth_date < EARLIEST_BIRTH_DATE:
        raise InvalidIdNumber("bad_birth_date", "ID number birth date (characters 7-14) is before 1900")


# ── Organisations: 统一社会信用代码 (GB 32100-2015) ──────────────────────────────────────────────────
#
#     position 1     registration authority (1 机构编制, 5 民政, 9 工商/市场监管, Y 其他 …)
#     position 2     kind of organisation within that authority (1 企业, 2 个体工商户, 3 农民专业合作社 …)
#     positions 3-8  administrative division code of the registering authority
#     positions 9-17 organisation code (GB 11714)
#     position 18    check character: 31 - (Σ value·weight mod 31), 31 written as 0
# The USCC identifies an organisation and is public (printed on the business licence): it is not personal
# data, so it may appear in clear where an ID number may not.

UsccProblem = Literal["wrong_length", "bad_characters", "bad_checksum"]

USCC_LENGTH = 18
# 31 characters: the digits and the capital letters without I, O, Z, S, V (GB 32100-2015, table 1).
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {character: value for value, character in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_DIVISION = re.compile(r"\d{6}", re.ASCII)


class InvalidUscc(ValueError):
    """A 统一社会信用代码 was refused. ``reason`` is machine-readable."""

    def __init__(self, reason: UsccProblem, message: str) -> None:
        super().__init__(message)
        self.reason: UsccProblem = reason

    def __reduce__(self):
        return (type(self), (self.reason, str(self)))


def validate_uscc(value: str) -> str:
    """Return the normalised code (whitespace removed, upper case); raise InvalidUscc checking length,
    characters (the GB 32100 set, digits for the division code), then the check character."""
    if not isinstance(value, str):
        raise TypeError(f"USCC must be a str, got {type(value).__name__}")
    candidate = value.strip().upper()
    if len(candidate) != USCC_LENGTH:
        raise InvalidUscc("wrong_length",
                          f"统一社会信用代码 must be {USCC_LENGTH} characters long, got {len(candidate)}")
    bad = sorted({character for character in candidate if character not in _USCC_VALUE})
    if bad:
        raise InvalidUscc("bad_characters", "统一社会信用代码 uses only 0-9 and A-H J-N P Q R T U W X Y "
                                            f"(GB 32100); not {''.join(bad)!r}")
    if not _USCC_DIVISION.fullmatch(candidate[2:8]):
        raise InvalidUscc("bad_characters", "统一社会信用代码 characters 3-8 are a division code of 6 digits")
    if uscc_check_character(candidate[:17]) != candidate[17]:
        raise InvalidUscc("bad_checksum", "统一社会信用代码 check character does not match (GB 32100)")
    return candidate


def uscc_check_character(first17: str) -> str:
    """The 18th character for the first 17 (which must be in the GB 32100 character set)."""
    if len(first17) != USCC_LENGTH - 1 or any(character not in _USCC_VALUE for character in first17):
        raise ValueError("uscc_check_character needs 17 characters of the GB 32100 set")
    weighted = sum(_USCC_VALUE[character] * weight for character, weight in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - weighted % 31) % 31]
