"""Personal data as intake stores it: encrypted. Tests read it back through the development keys."""

from __future__ import annotations

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.intake.failure_reports import FailureReportRecord, open_report
from shared.config import DEV_KEYS_FILE
from shared.crypto import Keyring, load_key_material
from shared.db import normalise_url


def development_keyring() -> Keyring:
    return Keyring.from_material(load_key_material(pii_key=None, data_keys=None, keys_file=DEV_KEYS_FILE))


def stored_failure_reports(database_url: str) -> list[dict]:
    """Every 办不成事 report's reporter name, phone and description, decrypted; and none of them in clear."""
    engine = create_engine(normalise_url(database_url))
    try:
        with Session(engine) as session:
            records = session.scalars(select(FailureReportRecord).order_by(FailureReportRecord.filed_at)).all()
            opened = [open_report(development_keyring(), record) for record in records]
            raw = repr([tuple(row) for row in session.execute(select(FailureReportRecord.__table__))])
    finally:
        engine.dispose()
    for report in opened:
        for value in report.values():
            assert value not in raw, "a 办不成事 report holds personal data in clear"
    return opened
