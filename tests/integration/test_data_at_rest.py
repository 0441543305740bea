"""The applicant encrypted at rest, on SQLite and PostgreSQL: nothing in clear in the table, everything
that reads the applicant decrypts, existing clear rows are migrated, and keys rotate."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from services.intake import handlers
from services.intake.adapters.orm import CaseRecord
from services.intake.adapters.personal_data import open_applicant
from services.intake.service import IntakeService
from shared.clock import SystemClock
from shared.config import DEV_KEYS_FILE, REPO_ROOT
from shared.crypto import Keyring, load_key_material
from shared.db import dispose_engines, normalise_url, session_factory, shared_engine
from shared.identity import id_number_fingerprint
from shared.migrate import _alembic_config
from shared.outbox import UnitOfWork
from tests.conftest import POSTGRES_ADMIN_URL, TEST_DATABASES
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_KIOSK, migrant_bundle
from tests.support.personal_data import stored_failure_reports

pytestmark = pytest.mark.integration

NAME, EMAIL = "刘金花", "liu.jinhua@example.cn"
CLEAR = (NAME, APPLICANT_ID_NUMBER, APPLICANT_PHONE, EMAIL)


def dev_keyring() -> Keyring:
    return Keyring.from_material(load_key_material(pii_key=None, data_keys=None, keys_file=DEV_KEYS_FILE))


def rows(database_url, sql):
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def contact(database_url, case_id, keyring):
    """The applicant as intake reads it back (decrypted): its contact look-up, which answers one detail per
    purpose (the phone for an SMS, the e-mail for an e-mail), and the name the case view masks."""
    def uow():
        return UnitOfWork(session_factory(shared_engine(database_url)), source="/sanji/intake", clock=SystemClock())

    sms = handlers.applicant_contact(case_id, "sms", unit_of_work=uow(), keyring=keyring)
    email = handlers.applicant_contact(case_id, "email", unit_of_work=uow(), keyring=keyring)
    with uow() as unit:
        record = unit.session.get(CaseRecord, case_id)
        applicant = open_applicant(keyring, record.applicant)
        opened = {"case_id": record.id, "case_number": record.case_number, "name": applicant.name}
    return {**opened, "phone": sms["phone"], "email": email["email"]}


@pytest.fixture
def submitted(container_factory, make_service_config, web_config_port, web_session, database_url):
    container = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    container.start()
    body = migrant_bundle(applicant={"name": NAME, "id_number": APPLICANT_ID_NUMBER, "phone": APPLICANT_PHONE,
                                     "email": EMAIL})
    response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_applicant_table_holds_no_personal_data_in_clear(submitted, database_url, web_session):
    stored = rows(database_url, "SELECT * FROM intake_applicants")
    assert len(stored) == 1
    dump = repr(stored)
    for value in CLEAR:
        assert value not in dump
    columns = {column["name"] for column in inspect(create_engine(normalise_url(database_url)))
               .get_columns("intake_applicants")}
    assert not columns & {"name", "id_number", "phone", "email"}
    [(key_id, fingerprint)] = rows(database_url, "SELECT key_id, id_fingerprint FROM intake_applicants")
    assert key_id == "dev-1"
    assert fingerprint == id_number_fingerprint(APPLICANT_ID_NUMBER, dev_keyring().blind_index_key)
    # Everything that reads the applicant decrypts: the case view (masked) and the contact look-up.
    assert web_session.get(f"/v1/cases/{submitted['case_id']}", headers=XINHE_KIOSK).json()["applicant_name"] == "刘**"
    assert contact(database_url, submitted["case_id"], dev_keyring()) == {
        "case_id": submitted["case_id"], "case_number": submitted["case_number"], "name": NAME,
        "phone": APPLICANT_PHONE, "email": EMAIL}


def test_keys_rotate_to_the_current_key_and_old_keys_can_then_go(submitted, database_url, tmp_path, web_session):
    report = web_session.post("/v1/failure-reports", data=json.dumps({
        "community_code": "320113003021", "case_id": submitted["case_id"],
        "reporter": {"name": NAME, "phone": APPLICANT_PHONE}, "description": "材料太多"}, ensure_ascii=False),
        headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert report.status_code == 201, report.text
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    old = load_key_material(pii_key=None, data_keys=None, keys_file=DEV_KEYS_FILE)
    old_spec = ",".join(f"{key_id}:{base64.urlsafe_b64encode(key).decode()}" for key_id, key in old.data_keys.items())
    env = {name: value for name, value in os.environ.items() if not name.startswith("SANJI_")}
    env.update(SANJI_INTAKE_DATABASE_URL=database_url, SANJI_PII_KEY=old.blind_index_key.decode(),
               SANJI_DATA_KEYS=f"k2026-12:{new_key},{old_spec}", SANJI_VAR_DIR=str(tmp_path))
    before = rows(database_url, "SELECT wrapped_key, phone_sealed FROM intake_applicants")
    result = subprocess.run([sys.executable, "-m", "sanji.cli", "keys", "rotate"], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "intake_applicants: re-encrypted 1 row(s) under key k2026-12",
        "intake_failure_reports: re-encrypted 1 row(s) under key k2026-12",
        "intake_applicants: 1 row(s) under key k2026-12",
        "intake_failure_reports: 1 row(s) under key k2026-12"]
    assert rows(database_url, "SELECT key_id FROM intake_applicants") == [("k2026-12",)]
    after = rows(database_url, "SELECT wrapped_key, phone_sealed FROM intake_applicants")
    assert after[0][0] != before[0][0] and after[0][1] != before[0][1]  # a fresh data key, fields re-encrypted
    only_new = Keyring({"k2026-12": base64.urlsafe_b64decode(new_key)}, "k2026-12", old.blind_index_key)
    assert contact(database_url, submitted["case_id"], only_new)["phone"] == APPLICANT_PHONE
    assert rows(database_url, "SELECT key_id FROM intake_failure_reports") == [("k2026-12",)]
    # Run again: nothing left to do.
    again = subprocess.run([sys.executable, "-m", "sanji.cli", "keys", "rotate"], env=env, cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.stdout.splitlines()[0] == "intake_applicants: re-encrypted 0 row(s) under key k2026-12"
    # A key id the configuration no longer has is one clear line, not a traceback.
    env["SANJI_DATA_KEYS"] = f"k3:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"
    rows_before = rows(database_url, "SELECT key_id FROM intake_applicants")
    lost = subprocess.run([sys.executable, "-m", "sanji.cli", "keys", "rotate"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert lost.returncode == 1 and "Traceback" not in lost.stderr
    assert lost.stderr.startswith("sanji: keys rotate: key id 'k2026-12' is not configured"), lost.stderr
    assert rows(database_url, "SELECT key_id FROM intake_applicants") == rows_before


@pytest.fixture(params=TEST_DATABASES)
def empty_database_url(request, tmp_path):
    """A database with no tables at all, to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"sanji_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_migration_encrypts_rows_stored_in_clear_and_drops_the_clear_columns(empty_database_url):
    """An intake database at intake_0004 (applicant and 办不成事 reporter in clear) is brought to head with
    the dev keys."""
    url = empty_database_url
    engine = create_engine(normalise_url(url))
    with engine.connect() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "intake_0004")
        connection.execute(text(
            "INSERT INTO intake_cases (id, case_number, community_code, channel, description, catalogue_version,"
            " submitted_by, submitted_at) VALUES ('c1', 'SJ1', '320113003021', 'kiosk', '', 'v', 'k', "
            "'2026-12-01 08:00:00')"))
        connection.execute(text(
            "INSERT INTO intake_applicants (case_id, name, id_number, id_fingerprint, phone, email) VALUES "
            "('c1', :name, :id_number, 'f' , :phone, :email)"),
            {"name": NAME, "id_number": APPLICANT_ID_NUMBER, "phone": "025-12345678", "email": EMAIL})
        connection.execute(text(
            "INSERT INTO intake_failure_reports (report_id, report_number, community_code, reporter_name,"
            " reporter_phone, description, filed_by, filed_at) VALUES ('r1', 'BCS1', '320113003021', :name,"
            " :phone, :words, 'k', '2026-12-01 09:00:00')"), {"name": NAME, "phone": "025-12345678",
                                                             "words": f"请回电 {NAME}"})
        connection.commit()
        command.upgrade(config, "intake@head")
        connection.commit()
    engine.dispose()
    stored = rows(url, "SELECT * FROM intake_applicants")
    for value in (NAME, APPLICANT_ID_NUMBER, "025-12345678", EMAIL):
        assert value not in repr(stored)
    assert contact(url, "c1", dev_keyring()) == {"case_id": "c1", "case_number": "SJ1", "name": NAME,
                                                 "phone": "025-12345678", "email": EMAIL}
    assert stored_failure_reports(url) == [{"reporter_name": NAME, "reporter_phone": "025-12345678",
                                            "description": f"请回电 {NAME}"}]
    # And back: the downgrade decrypts into clear columns.
    dispose_engines()
    engine = create_engine(normalise_url(url))
    with engine.connect() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "intake_0004")
        connection.commit()
    engine.dispose()
    dispose_engines()
    assert rows(url, "SELECT name, id_number, phone, email FROM intake_applicants") == [
        (NAME, APPLICANT_ID_NUMBER, "025-12345678", EMAIL)]
    assert rows(url, "SELECT reporter_name, reporter_phone FROM intake_failure_reports") == [(NAME, "025-12345678")]


def test_an_enterprise_applicants_legal_representative_is_sealed_like_a_resident(
        container_factory, make_service_config, web_config_port, web_session, database_url):
    """Issue 14: the person acting for an enterprise is personal data; the organisation's USCC is public."""
    from tests.support.cases import ENTERPRISE_USCC, REPRESENTATIVE_ID_NUMBER, XUANWU_KIOSK, enterprise_startup

    container = container_factory(IntakeService, make_service_config("intake", web_port=web_config_port))
    container.start()
    response = web_session.post("/v1/cases", data=json.dumps(enterprise_startup(), ensure_ascii=False),
                                headers={"Content-Type": "application/json", **XUANWU_KIOSK})
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    dump = repr(rows(database_url, "SELECT * FROM intake_applicants"))
    for value in ("徐明", REPRESENTATIVE_ID_NUMBER, "13951234567"):
        assert value not in dump
    [(kind, uscc, role, fingerprint)] = rows(
        database_url, "SELECT kind, uscc, representative_role, id_fingerprint FROM intake_applicants")
    assert (kind, uscc, role) == ("enterprise", ENTERPRISE_USCC, "legal_representative")
    assert fingerprint == id_number_fingerprint(REPRESENTATIVE_ID_NUMBER, dev_keyring().blind_index_key)
    assert contact(database_url, case_id, dev_keyring())["phone"] == "13951234567"
