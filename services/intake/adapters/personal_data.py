"""The applicant's personal data in and out of ``intake_applicants``: sealed on write, opened on read.

Only this module knows which columns hold which field; handlers see an ``Applicant`` in clear, in memory,
for as long as they need it, and never log it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.adapters.orm import ApplicantRecord
from shared.crypto import Keyring, SealedRecord

FIELDS = ("name", "id_number", "phone", "email")


@dataclass(frozen=True)
class Applicant:
    name: str
    id_number: str
    phone: str
    email: str | None

    def __repr__(self) -> str:  # a stray repr in a traceback must not show personal data
        return "Applicant(<personal data>)"


def _context(case_id: str) -> str:
    return f"intake_applicants:{case_id}"


def seal_applicant(keyring: Keyring, case_id: str, applicant: Applicant, *, id_fingerprint: str) -> ApplicantRecord:
    sealed = keyring.seal({name: getattr(applicant, name) for name in FIELDS}, context=_context(case_id))
    record = ApplicantRecord(case_id=case_id, id_fingerprint=id_fingerprint)
    _store(record, sealed)
    return record


def open_applicant(keyring: Keyring, record: ApplicantRecord) -> Applicant:
    sealed = SealedRecord(key_id=record.key_id, wrapped_key=record.wrapped_key,
                          fields={name: getattr(record, f"{name}_sealed") for name in FIELDS})
    return Applicant(**keyring.open(sealed, context=_context(record.case_id)))


def reseal_applicant(keyring: Keyring, record: ApplicantRecord) -> bool:
    """Re-encrypt a record under a fresh data key wrapped by the current key; False if it already was."""
    if record.key_id == keyring.current_key_id:
        return False
    applicant = open_applicant(keyring, record)
    _store(record, keyring.seal({name: getattr(applicant, name) for name in FIELDS},
                                context=_context(record.case_id)))
    return True


def _store(record: ApplicantRecord, sealed: SealedRecord) -> None:
    record.key_id = sealed.key_id
    record.wrapped_key = sealed.wrapped_key
    for name in FIELDS:
        setattr(record, f"{name}_sealed", sealed.fields[name])
