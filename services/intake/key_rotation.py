"""``sanji keys rotate``: re-encrypt every applicant still under an older key-encryption key.

Put the new key first in SANJI_DATA_KEYS (it becomes current: new records use it at once), keep the old
ones after it (they still decrypt), run this, then remove the old keys: ``remaining`` tells when no row
needs them any more. Each row gets a fresh data key, so a data key that ever sat under a retired key
is gone too. Rows are done in small committed batches under row locks, so it can run beside the
live service and be interrupted and run again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from services.intake.adapters.orm import ApplicantRecord
from services.intake.adapters.personal_data import reseal_applicant
from shared.crypto import Keyring
from shared.db import create_db_engine, session_factory


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    remaining: dict[str, int]  # key id -> rows still under it (only the current one after a full run)


def rotate_applicant_keys(database_url: str, keyring: Keyring, *, batch_size: int = 200) -> RotationResult:
    engine = create_db_engine(database_url)
    sessions = session_factory(engine)
    rotated = 0
    try:
        while True:
            with sessions() as session:
                query = (select(ApplicantRecord).where(ApplicantRecord.key_id != keyring.current_key_id)
                         .order_by(ApplicantRecord.case_id).limit(batch_size))
                if engine.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                batch = session.scalars(query).all()
                if not batch:
                    break
                rotated += sum(reseal_applicant(keyring, record) for record in batch)
                session.commit()
        with sessions() as session:
            remaining = dict(session.execute(select(ApplicantRecord.key_id, func.count())
                                             .group_by(ApplicantRecord.key_id)).all())
        return RotationResult(rotated=rotated, remaining=remaining)
    finally:
        engine.dispose()
