"""Envelope encryption of personal data: round trips, binding to row and column, key ids, configuration."""

from __future__ import annotations

import base64
import os

import pytest

from shared.crypto import (
    DecryptionFailed,
    KeyConfigError,
    Keyring,
    SealedRecord,
    load_key_material,
    new_data_key_material,
    parse_data_keys,
)

K1, K2 = os.urandom(32), os.urandom(32)
BLIND = b"b" * 32
FIELDS = {"name": "刘金花", "id_number": "11010519491231002X", "phone": "13812345678", "email": None}


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def test_a_sealed_record_opens_to_what_went_in_and_shows_none_of_it():
    keyring = Keyring({"k1": K1}, "k1", BLIND)
    sealed = keyring.seal(FIELDS, context="intake_applicants:case-1")
    assert sealed.key_id == "k1" and sealed.fields["email"] is None
    stored = repr(sealed)
    for value in ("刘金花", "11010519491231002X", "13812345678"):
        assert value not in stored
    assert keyring.open(sealed, context="intake_applicants:case-1") == FIELDS


def test_same_value_twice_gives_different_ciphertexts():
    keyring = Keyring({"k1": K1}, "k1", BLIND)
    first, second = (keyring.seal(FIELDS, context="c") for _ in range(2))
    assert first.fields["phone"] != second.fields["phone"] and first.wrapped_key != second.wrapped_key


def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt():
    keyring = Keyring({"k1": K1}, "k1", BLIND)
    sealed = keyring.seal(FIELDS, context="row-1")
    with pytest.raises(DecryptionFailed):
        keyring.open(sealed, context="row-2")
    swapped = SealedRecord(sealed.key_id, sealed.wrapped_key,
                           {**sealed.fields, "name": sealed.fields["phone"], "phone": sealed.fields["name"]})
    with pytest.raises(DecryptionFailed):
        keyring.open(swapped, context="row-1")
    tampered = SealedRecord(sealed.key_id, sealed.wrapped_key, {**sealed.fields, "name": sealed.fields["name"][:-2]})
    with pytest.raises(DecryptionFailed):
        keyring.open(tampered, context="row-1")


def test_old_key_ids_decrypt_after_rotation_and_unknown_ones_fail_cleanly():
    old = Keyring({"k1": K1}, "k1", BLIND).seal(FIELDS, context="r")
    rotated = Keyring({"k2": K2, "k1": K1}, "k2", BLIND)
    assert rotated.open(old, context="r") == FIELDS
    assert rotated.seal(FIELDS, context="r").key_id == "k2"
    with pytest.raises(DecryptionFailed, match="k1"):
        Keyring({"k2": K2}, "k2", BLIND).open(old, context="r")
    with pytest.raises(DecryptionFailed):  # same id, another key
        Keyring({"k1": K2}, "k1", BLIND).open(old, context="r")


def test_blind_index_is_keyed_and_separated_by_purpose():
    keyring = Keyring({"k1": K1}, "k1", BLIND)
    assert keyring.blind_index("phone", "13812345678") == keyring.blind_index("phone", "13812345678")
    assert keyring.blind_index("phone", "13812345678") != keyring.blind_index("email", "13812345678")
    assert Keyring({"k1": K1}, "k1", b"c" * 32).blind_index("phone", "1") != keyring.blind_index("phone", "1")


def test_data_keys_setting_first_is_current():
    current, keys = parse_data_keys("SANJI_DATA_KEYS", f"k2:{_b64(K2)}, k1:{_b64(K1)}")
    assert current == "k2" and keys == {"k2": K2, "k1": K1}
    assert len(base64.urlsafe_b64decode(new_data_key_material())) == 32


@pytest.mark.parametrize("spec, message", [
    ("", "no key"), ("k1", "id:base64key"), (f"k1:{_b64(b'short')}", "32 bytes"), ("k1:!!!", "base64"),
    (f"k1:{_b64(K1)},k1:{_b64(K2)}", "twice"), (f"bad id:{_b64(K1)}", "id:base64key")])
def test_malformed_data_keys_are_refused_without_showing_a_key(spec, message):
    with pytest.raises(KeyConfigError, match=message) as refused:
        parse_data_keys("SANJI_DATA_KEYS", spec)
    assert _b64(K1) not in str(refused.value)


def test_no_key_anywhere_is_an_error_not_a_default(tmp_path):
    material = load_key_material(pii_key=None, data_keys=None, keys_file=tmp_path / "absent.yaml")
    with pytest.raises(KeyConfigError, match="SANJI_PII_KEY and SANJI_DATA_KEYS"):
        Keyring.from_material(material)
    with pytest.raises(KeyConfigError, match="at least 16 bytes"):
        load_key_material(pii_key="change-me", data_keys=None, keys_file=None)


def test_environment_wins_over_the_keys_file_and_the_file_says_whether_it_is_development(tmp_path):
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(f"development: true\npii_key: {'f' * 20}\ndata_keys:\n  - {{id: f1, key: {_b64(K1)}}}\n")
    from_file = load_key_material(pii_key=None, data_keys=None, keys_file=keys_file)
    assert from_file.current_key_id == "f1" and from_file.development_file == keys_file
    from_env = load_key_material(pii_key="e" * 20, data_keys=f"e1:{_b64(K2)}", keys_file=keys_file)
    assert from_env.current_key_id == "e1" and from_env.blind_index_key == b"e" * 20
    assert from_env.development_file is None
