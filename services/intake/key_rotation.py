"""``sanji keys rotate``: re-encrypt every applicant and 办不成事 report still under an older key-encryption key.

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
from services.intake.failure_reports import FailureReportRecord, reseal_report
from shared.crypto import Keyring
from shared.db import create_db_engine, session_factory


@dataclass(frozen=True)
class RotationResult:
    rotated: dict[str, int]              # table -> rows re-encrypted by this run
    remaining: dict[str, dict[str, int]]  # table -> key id -> rows under it (only the current one after a run)


# Every table of intake that holds sealed personal data, and how to re-encrypt one of its rows.
SEALED_TABLES = {"intake_applicants": (ApplicantRecord, ApplicantRecord.case_id, reseal_applicant),
                 "intake_failure_reports": (FailureReportRecord, FailureReportRecord.report_id, reseal_report)}


def rotate_sealed_rows(database_url: str, keyring: Keyring, *, batch_size: int = 200) -> RotationResult:
    engine = create_db_engine(database_url)
    sessions = session_factory(engine)
    rotated: dict[str, int] = {}
    remaining: dict[str, dict[str, int]] = {}
    try:
        for table, (record_class, order, reseal) in SEALED_TABLES.items():
            rotated[table] = 0
            while True:
                with sessions() as session:
                    query = (select(record_class).where(record_class.key_id != keyring.current_key_id)
                             .order_by(order).limit(batch_size))
                    if engine.dialect.name == "postgresql":
                        query = query.with_for_update(skip_locked=True)
                    batch = session.scalars(query).all()
                    if not batch:
                        break
                    rotated[table] += sum(reseal(keyring, record) for record in batch)
                    session.commit()
            with sessions() as session:
                remaining[table] = dict(session.execute(select(record_class.key_id, func.count())
                                                        .group_by(record_class.key_id)).all())
        return RotationResult(rotated=rotated, remaining=remaining)
    finally:
        engine.dispose()
