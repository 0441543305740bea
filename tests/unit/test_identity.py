import hashlib
import hmac
import pickle
import random
from datetime import date, timedelta

import pytest

from shared.identity import (
    InvalidIdNumber,
    id_number_fingerprint,
    make_valid_id_number,
    mask_id_number,
    mask_name,
    mask_phone,
    validate_id_number,
)

TODAY = date(2026, 11, 29)
PUBLIC_SAMPLE = "11010519491231002X"  # the sample number printed in GB 11643 explanations
QIXIA_SAMPLE = make_valid_id_number("32011319900307123")
FINGERPRINT_KEY = b"k" * 32


def rejection(value: str, today: date = TODAY) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number(value, today=today)
    return caught.value


# --- valid numbers ---------------------------------------------------------------------------------


def test_public_sample_is_valid():
    assert validate_id_number(PUBLIC_SAMPLE, today=TODAY) == PUBLIC_SAMPLE


def test_check_character_is_computed_with_mod_11_2():
    # 3,2,0,1,1,3,1,9,9,0,0,3,0,7,1,2,3 weighted by 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2 sums to 213;
    # 213 mod 11 = 4, which maps to "8".
    assert make_valid_id_number("32011319900307123") == "320113199003071238"
    assert make_valid_id_number("11010519491231002") == PUBLIC_SAMPLE


@pytest.mark.parametrize(
    "prefix17",
    ["32011319900307123", "32010219851111004", "32011520000229567", "32011119000101001"],
)
def test_generated_numbers_are_valid(prefix17):
    number = make_valid_id_number(prefix17)
    assert validate_id_number(number, today=TODAY) == number


def test_lowercase_x_is_accepted_and_normalised():
    assert validate_id_number("11010519491231002x", today=TODAY) == PUBLIC_SAMPLE


def test_surrounding_whitespace_is_removed():
    assert validate_id_number(f"  {QIXIA_SAMPLE}\n", today=TODAY) == QIXIA_SAMPLE


def test_birth_today_is_accepted():
    number = make_valid_id_number("320113" + TODAY.strftime("%Y%m%d") + "001")
    assert validate_id_number(number, today=TODAY) == number


def test_today_defaults_to_the_current_date():
    assert validate_id_number(PUBLIC_SAMPLE) == PUBLIC_SAMPLE
    far_future = make_valid_id_number("32011321990101001")
    assert rejection(far_future, today=None).reason == "bad_birth_date"


# --- refused numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        PUBLIC_SAMPLE[:17],
        PUBLIC_SAMPLE + "0",
        "110105491231002",  # first-generation 15-digit number
    ],
)
def test_wrong_length(value):
    assert rejection(value).reason == "wrong_length"


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231A02X",  # letter inside
        "1101051949123100X2",  # X anywhere but last
        "11010519491231002Y",  # check character that is neither digit nor X
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits: Unicode digits, but not ASCII ones
        "１１０１０５１９４９１２３１００２X",  # the same with an ASCII X, which int() alone would accept
        "110105 9491231002X",
    ],
)
def test_bad_characters(value):
    assert rejection(value).reason == "bad_characters"


@pytest.mark.parametrize(
    "birth_yyyymmdd",
    [
        "20230230",  # 30 February
        "20231301",  # month 13
        "20230100",  # day 0
        "18991231",  # before 1900
        (TODAY + timedelta(days=1)).strftime("%Y%m%d"),  # born tomorrow
    ],
)
def test_bad_birth_date_with_otherwise_correct_checksum(birth_yyyymmdd):
    number = make_valid_id_number("320113" + birth_yyyymmdd + "123")
    assert rejection(number).reason == "bad_birth_date"


def test_wrong_checksum():
    flipped = PUBLIC_SAMPLE[:17] + "1"
    assert rejection(flipped).reason == "bad_checksum"
    assert str(rejection(flipped)) == "ID number checksum does not match (GB 11643)"


@pytest.mark.parametrize(
    "value",
    [
        PUBLIC_SAMPLE[:17] + "1",
        "11010519491231A02X",
        make_valid_id_number("32011320230230123"),
        PUBLIC_SAMPLE + "9",
    ],
)
def test_messages_never_contain_the_number(value):
    message = str(rejection(value))
    assert value not in message
    assert value[:17] not in message
    assert value[6:14] not in message  # nor the birth date on its own
    assert message.startswith("ID number")


def test_rejection_is_a_value_error_and_survives_pickling():
    error = rejection(PUBLIC_SAMPLE[:17] + "1")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, str(copy)) == ("bad_checksum", str(error))


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        validate_id_number(110105194912310020)


def test_make_valid_id_number_needs_17_ascii_digits():
    for bad_prefix in ["1101051949123100", "110105194912310020", "1101051949123100X", "１" * 17]:
        with pytest.raises(ValueError):
            make_valid_id_number(bad_prefix)


def test_any_single_character_change_is_detected():
    rng = random.Random(11643)
    earliest, span = date(1900, 1, 1), (TODAY - date(1900, 1, 1)).days
    for _ in range(200):
        birth = earliest + timedelta(days=rng.randrange(span + 1))
        prefix17 = f"{rng.randrange(110000, 660000):06d}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        number = make_valid_id_number(prefix17)
        assert validate_id_number(number, today=TODAY) == number
        for position in range(18):
            alphabet = "0123456789X" if position == 17 else "0123456789"
            for replacement in alphabet:
                if replacement == number[position]:
                    continue
                changed = number[:position] + replacement + number[position + 1 :]
                with pytest.raises(InvalidIdNumber) as caught:
                    validate_id_number(changed, today=TODAY)
                assert caught.value.reason in {"bad_checksum", "bad_birth_date"}, (number, position)


# --- masks -----------------------------------------------------------------------------------------


def test_mask_id_number_keeps_first_four_and_last_two():
    assert mask_id_number(PUBLIC_SAMPLE) == "1101************2X"
    assert mask_id_number("11010519491231002x") == "1101************2X"


def test_mask_id_number_hides_the_middle_digits():
    for number in [PUBLIC_SAMPLE, QIXIA_SAMPLE, make_valid_id_number("32010219851111004")]:
        masked = mask_id_number(number)
        assert len(masked) == 18
        assert masked[4:16] == "*" * 12
        assert number[6:14] not in masked  # birth date


@pytest.mark.parametrize("value", ["110105491231002", PUBLIC_SAMPLE + "7", "abc", ""])
def test_mask_id_number_masks_malformed_values_completely(value):
    assert mask_id_number(value) == "*" * len(value)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        (" 13812345678 ", "138****5678"),
        ("025-83456789", "025*****6789"),
        ("83456789", "********"),
        ("", ""),
    ],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("刘金花", "刘**"),
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("买买提·艾力", "买*****"),
        ("Anna Lee", "A*******"),
        ("张", "*"),
        ("", ""),
    ],
)
def test_mask_name(value, masked):
    assert mask_name(value) == masked


# --- fingerprints ----------------------------------------------------------------------------------


def test_fingerprint_is_hmac_sha256_of_the_normalised_number():
    expected = hmac.new(FINGERPRINT_KEY, PUBLIC_SAMPLE.encode(), hashlib.sha256).hexdigest()
    assert id_number_fingerprint(PUBLIC_SAMPLE, FINGERPRINT_KEY) == expected
    assert id_number_fingerprint(" 11010519491231002x", FINGERPRINT_KEY) == expected


def test_fingerprint_is_stable_and_depends_on_key_and_number():
    first = id_number_fingerprint(QIXIA_SAMPLE, FINGERPRINT_KEY)
    assert id_number_fingerprint(QIXIA_SAMPLE, FINGERPRINT_KEY) == first
    assert id_number_fingerprint(QIXIA_SAMPLE, b"q" * 32) != first
    assert id_number_fingerprint(PUBLIC_SAMPLE, FINGERPRINT_KEY) != first
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")


def test_fingerprint_does_not_depend_on_the_clock():
    # Valid for a caller whose injected clock says 2099; the real date must not make it fail.
    born_in_2098 = make_valid_id_number("32011320980101001")
    assert validate_id_number(born_in_2098, today=date(2099, 1, 1)) == born_in_2098
    assert len(id_number_fingerprint(born_in_2098, FINGERPRINT_KEY)) == 64
    with pytest.raises(InvalidIdNumber):
        id_number_fingerprint(make_valid_id_number("32011320980230001"), FINGERPRINT_KEY)  # 30 February


def test_fingerprint_refuses_invalid_numbers_and_weak_keys():
    with pytest.raises(InvalidIdNumber):
        id_number_fingerprint(PUBLIC_SAMPLE[:17] + "1", FINGERPRINT_KEY)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        id_number_fingerprint(PUBLIC_SAMPLE, b"short")
    with pytest.raises(TypeError):
        id_number_fingerprint(PUBLIC_SAMPLE, "k" * 32)


# ── 统一社会信用代码 (GB 32100-2015) ─────────────────────────────────────────────────────────────────

from shared.identity import USCC_CHARSET, InvalidUscc, uscc_check_character, validate_uscc  # noqa: E402


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",   # the example printed in GB 32100-2015
    "91110108551385082Q",   # a business licence in 北京市海淀区
    "91320113MA1N00000" + uscc_check_character("91320113MA1N00000"),
])
def test_valid_usccs_pass_and_are_normalised(code):
    assert validate_uscc(code) == code
    assert validate_uscc(" " + code.lower() + " ") == code


def test_the_check_character_is_31_minus_the_weighted_sum_mod_31_and_31_is_written_0():
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    first17 = "91350100M000100Y4"
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, weights, strict=True))
    assert USCC_CHARSET[(31 - total % 31) % 31] == "3" == uscc_check_character(first17)
    # Find a prefix whose sum is a multiple of 31: its check character is "0", not the 32nd character.
    for last in USCC_CHARSET:
        prefix = "9132011300000000" + last
        if sum(USCC_CHARSET.index(c) * w for c, w in zip(prefix, weights, strict=True)) % 31 == 0:
            assert uscc_check_character(prefix) == "0"
            break
    else:
        pytest.fail("no prefix with a sum divisible by 31 among 31 consecutive values")


@pytest.mark.parametrize(("code", "reason"), [
    ("91350100M000100Y44", "bad_checksum"),
    ("91350100M000100Y4", "wrong_length"),
    ("91350100M000100Y433", "wrong_length"),
    ("91350100I000100Y43", "bad_characters"),   # I is not in the set (nor O, Z, S, V)
    ("9135O100M000100Y43", "bad_characters"),
    ("9135A100M000100Y43", "bad_characters"),   # the division code is digits
])
def test_bad_usccs_are_refused_with_a_reason(code, reason):
    with pytest.raises(InvalidUscc) as refused:
        validate_uscc(code)
    assert refused.value.reason == reason
