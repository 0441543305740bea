"""A 办不成事 report filed, or acted on, is answered as such even if the database is lost the moment after the commit
(services/escalation/failure_reports.py). Its answer (the report with its history) used to be read after the
commit: a database lost just then turned a filing that was made into a 500, and the filer would file it again,
as the fault suite's staff once returned an item twice in routing (tests/integration/
test_routing_answer_after_commit.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.escalation import failure_reports
from services.escalation.adapters.orm import FailureReport
from services.escalation.domain import ReportAction
from services.escalation.records import EscalationRules
from services.escalation.schemas import Closure, FailureReportFiling
from services.escalation.settings import DEFAULT_CAUSES_FILE, load_causes, settings_from_config
from shared.auth import Principal
from shared.catalogue import load_catalogue
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.workdays import WorkdayCalendar
from tests.support.db import DatabaseLostAfterCommit
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

XINHE = "320113003021"
AT = at(2026, 11, 30, 9, 0)
CLERK = Principal(name="staff-xinhe-community", kind="staff", unit_code=XINHE)


def rules() -> EscalationRules:
    return EscalationRules(catalogue=load_catalogue(REPO_ROOT / "catalogue" / "nanjing"),
                           calendar=WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml"),
                           settings=settings_from_config({}), causes=load_causes(DEFAULT_CAUSES_FILE))


@pytest.fixture
def database(database_url):
    database = DatabaseLostAfterCommit(database_url, source="/sanji/escalation", clock=FrozenClock(AT))
    yield database
    database.close()


def test_a_filing_committed_just_before_the_database_is_lost_is_answered_with_its_history(database):
    body = FailureReportFiling(community_code=XINHE, report_class="simple", cause_code="unclear-guidance",
                               note="不清楚要带哪些材料")

    view = failure_reports.file_report(CLERK, body, unit_of_work=database.unit_of_work(), rules=rules(), now=AT)

    assert (view.status, [entry.action for entry in view.history]) == ("open", ["file", "classify"])
    database.restore()
    with database.factory() as session:
        assert session.scalar(select(FailureReport.status).where(FailureReport.report_id == view.report_id)) == "open"


def test_an_action_committed_just_before_the_database_is_lost_is_answered_with_its_effect(database):
    body = FailureReportFiling(community_code=XINHE, report_class="simple", cause_code="unclear-guidance")
    filed = failure_reports.file_report(CLERK, body, unit_of_work=database.plain_unit_of_work(), rules=rules(),
                                        now=AT)

    view = failure_reports.act(filed.report_id, ReportAction.CLOSE, CLERK, Closure(outcome="solved", note="当场告知"),
                               unit_of_work=database.unit_of_work(), rules=rules(), now=AT)

    assert (view.status, view.history[-1].action) == ("closed", "close")
    database.restore()
    with database.factory() as session:
        assert session.scalar(select(FailureReport.status).where(FailureReport.report_id == filed.report_id)) == \
            "closed"
