"""Personal data at rest: envelope encryption (AES-256-GCM) and keyed blind indexes (HMAC-SHA256).

Each record gets its own random 256-bit *data key*. The record's fields are encrypted with it, and the
data key itself is stored beside them *wrapped* (encrypted) by a *key-encryption key* (KEK) named by a
key id. Rotating the KEK means re-encrypting each record under the current key id
(``sanji keys rotate``); old key ids stay in the configuration until no record uses them.

Every ciphertext is bound to where it belongs through AES-GCM's associated data: a field to its table,
row and column, a wrapped data key to its row and key id. A ciphertext copied into another row or
column does not decrypt, it fails loudly.

Keys come from configuration only (``Keyring.from_settings``): the environment, or a keys file. This
module holds no key. The development keys file ``config/dev-keys.yaml`` is public and is refused by
the production profile (``shared.production``).

Stored text formats (ASCII, so the same column type works on SQLite and PostgreSQL):

- a field:        ``v1.`` + base64url(12-byte nonce || ciphertext || 16-byte tag)
- a wrapped key:  ``v1.`` + base64url(12-byte nonce || encrypted 32-byte data key || tag)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_PREFIX = "v1."
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256
MIN_BLIND_INDEX_KEY_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyConfigError(ValueError):
    """The key configuration is missing or malformed; the message names the variable, never a key."""


class DecryptionFailed(Exception):
    """A stored ciphertext does not decrypt: wrong key, unknown key id, or data moved or tampered with."""


def new_data_key_material() -> str:
    """A fresh key, base64url-encoded, for a keys file or a secret (``sanji keys generate``)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def parse_key(name: str, text: str) -> bytes:
    """A 256-bit key written in base64 (standard or url-safe alphabet)."""
    try:
        raw = _b64decode(text.strip().replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise KeyConfigError(f"{name}: not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{name}: must be {KEY_BYTES} bytes (base64 of 256 random bits), got {len(raw)}")
    return raw


def parse_data_keys(name: str, spec: str) -> tuple[str, dict[str, bytes]]:
    """``id:base64key[,id:base64key...]``: the first is the current key; the others only decrypt."""
    keys: dict[str, bytes] = {}
    current = None
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        key_id, sep, material = part.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise KeyConfigError(f"{name}: write id:base64key[,id:base64key...] (ids of letters, digits, . _ -)")
        if key_id in keys:
            raise KeyConfigError(f"{name}: key id {key_id!r} listed twice")
        keys[key_id] = parse_key(f"{name} (key id {key_id})", material)
        current = current or key_id
    if current is None:
        raise KeyConfigError(f"{name}: no key given")
    return current, keys


@dataclass(frozen=True)
class KeyMaterial:
    """What the configuration says about keys, before use; ``source`` says where each came from."""

    blind_index_key: bytes | None
    current_key_id: str | None
    data_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    blind_index_source: str = "unset"
    data_keys_source: str = "unset"
    development_file: Path | None = None  # the keys file in use, when it is marked development


def read_keys_file(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KeyConfigError(f"SANJI_KEYS_FILE {path}: {exc}") from None
    if not isinstance(document, dict):
        raise KeyConfigError(f"SANJI_KEYS_FILE {path}: expected a mapping")
    return document


def load_key_material(*, pii_key: str | None, data_keys: str | None, keys_file: Path | None) -> KeyMaterial:
    """Keys from the environment (``SANJI_PII_KEY``, ``SANJI_DATA_KEYS``), else from the keys file.

    The keys file (``SANJI_KEYS_FILE``) is YAML::

        development: true            # only in the public development file
        pii_key: <text, at least 16 bytes>
        data_keys:                   # the first is current
          - {id: k2026-12, key: <base64 of 32 bytes>}
    """
    document: dict = {}
    if keys_file is not None and (not pii_key or not data_keys) and keys_file.exists():
        document = read_keys_file(keys_file)
    development_file = keys_file if document.get("development") is True else None

    blind_source, data_source = "SANJI_PII_KEY", "SANJI_DATA_KEYS"
    if not pii_key and document.get("pii_key"):
        pii_key, blind_source = str(document["pii_key"]), f"SANJI_KEYS_FILE {keys_file}"
    blind_key = None
    if pii_key:
        blind_key = pii_key.encode("utf-8")
        if len(blind_key) < MIN_BLIND_INDEX_KEY_BYTES:
            raise KeyConfigError(f"{blind_source}: the PII key must be at least {MIN_BLIND_INDEX_KEY_BYTES} bytes")

    current, keys = None, {}
    if data_keys:
        current, keys = parse_data_keys("SANJI_DATA_KEYS", data_keys)
    elif document.get("data_keys"):
        data_source = f"SANJI_KEYS_FILE {keys_file}"
        entries = document["data_keys"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e and "key" in e
                                                    for e in entries):
            raise KeyConfigError(f"{data_source}: data_keys must list {{id, key}} entries")
        current, keys = parse_data_keys(data_source, ",".join(f"{e['id']}:{e['key']}" for e in entries))
    return KeyMaterial(blind_index_key=blind_key, current_key_id=current, data_keys=keys,
                       blind_index_source=blind_source if blind_key else "unset",
                       data_keys_source=data_source if keys else "unset", development_file=development_file)


@dataclass(frozen=True)
class SealedRecord:
    """A record's encrypted fields, the data key they were encrypted with (wrapped), and its key id."""

    key_id: str
    wrapped_key: str
    fields: dict[str, str | None]


class Keyring:
    """The key-encryption keys (by id, one current) and the blind-index key of one service."""

    def __init__(self, data_keys: Mapping[str, bytes], current_key_id: str, blind_index_key: bytes):
        if current_key_id not in data_keys:
            raise KeyConfigError(f"current key id {current_key_id!r} is not among the data keys")
        if len(blind_index_key) < MIN_BLIND_INDEX_KEY_BYTES:
            raise KeyConfigError(f"the blind-index key must be at least {MIN_BLIND_INDEX_KEY_BYTES} bytes")
        self._keks = {key_id: AESGCM(key) for key_id, key in data_keys.items()}
        self.current_key_id = current_key_id
        self.blind_index_key = blind_index_key

    def __repr__(self) -> str:  # never show a key
        return f"Keyring(current={self.current_key_id!r}, key_ids={sorted(self._keks)!r})"

    @classmethod
    def from_material(cls, material: KeyMaterial) -> Keyring:
        missing = [name for name, ok in (("SANJI_PII_KEY", material.blind_index_key),
                                         ("SANJI_DATA_KEYS", material.current_key_id)) if not ok]
        if missing:
            raise KeyConfigError(f"no key configured: set {' and '.join(missing)} (or SANJI_KEYS_FILE)")
        return cls(material.data_keys, material.current_key_id, material.blind_index_key)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keks)

    def blind_index(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 (hex) of a normalised value, separated by purpose, for equality look-ups."""
        return hmac.new(self.blind_index_key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def seal(self, fields: Mapping[str, str | None], *, context: str) -> SealedRecord:
        """Encrypt ``fields`` (None stays None) under a fresh data key wrapped by the current KEK."""
        data_key = AESGCM.generate_key(bit_length=256)
        cipher = AESGCM(data_key)
        sealed = {name: None if value is None else _encrypt(cipher, value.encode("utf-8"),
                                                            _field_aad(context, name))
                  for name, value in fields.items()}
        wrapped = _encrypt(self._keks[self.current_key_id], data_key, _key_aad(context, self.current_key_id))
        return SealedRecord(key_id=self.current_key_id, wrapped_key=wrapped, fields=sealed)

    def open(self, sealed: SealedRecord, *, context: str) -> dict[str, str | None]:
        kek = self._keks.get(sealed.key_id)
        if kek is None:
            raise DecryptionFailed(f"key id {sealed.key_id!r} is not configured (SANJI_DATA_KEYS)")
        data_key = _decrypt(kek, sealed.wrapped_key, _key_aad(context, sealed.key_id))
        cipher = AESGCM(data_key)
        return {name: None if value is None else _decrypt(cipher, value, _field_aad(context, name)).decode("utf-8")
                for name, value in sealed.fields.items()}


def _field_aad(context: str, name: str) -> bytes:
    return f"sanji-field\0{context}\0{name}".encode()


def _key_aad(context: str, key_id: str) -> bytes:
    return f"sanji-data-key\0{context}\0{key_id}".encode()


def _encrypt(cipher: AESGCM, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    blob = nonce + cipher.encrypt(nonce, plaintext, aad)
    return FORMAT_PREFIX + base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")


def _decrypt(cipher: AESGCM, text: str, aad: bytes) -> bytes:
    if not isinstance(text, str) or not text.startswith(FORMAT_PREFIX):
        raise DecryptionFailed("not a v1 ciphertext")
    try:
        blob = _b64decode(text[len(FORMAT_PREFIX):])
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, binascii.Error, ValueError):
        raise DecryptionFailed("ciphertext does not decrypt with this key and context") from None


def key_material_from_config(config: Mapping) -> KeyMaterial:
    """The key material named by a nameko container config (or any mapping of the same variables)."""
    keys_file = str(config.get("SANJI_KEYS_FILE") or "").strip()
    return load_key_material(pii_key=str(config.get("SANJI_PII_KEY") or "").strip() or None,
                             data_keys=str(config.get("SANJI_DATA_KEYS") or "").strip() or None,
                             keys_file=Path(keys_file) if keys_file else None)


def keyring_from_config(config: Mapping) -> Keyring:
    return Keyring.from_material(key_material_from_config(config))
