"""A test's own copy of the calendar overrides file, and the 2027 arrangement loaded into it the way
`sanji calendar load` installs one: the law's days off, plus one Saturday worked (调休)."""

from __future__ import annotations

import os
import shutil
from datetime import date

import pytest

from shared.config import REPO_ROOT
from shared.statutory_holidays import derived_days_off
from shared.workdays import read_calendar_file


@pytest.fixture
def calendar_file(tmp_path):
    path = tmp_path / "calendar-overrides.yaml"
    shutil.copy(REPO_ROOT / "config" / "calendar-overrides.yaml", path)
    return path


def load_2027_arrangement(path, worked_saturday: date) -> None:
    holidays = ", ".join(day.isoformat() for day in derived_days_off(2027))
    source = path.with_name("arrangement-2027.yaml")
    source.write_text(f"years:\n  2027:\n    holidays: [{holidays}]\n    workdays: [{worked_saturday}]\n",
                      encoding="utf-8")
    read_calendar_file(source)  # valid
    stamp = path.stat().st_mtime_ns
    os.replace(source, path)
    os.utime(path, ns=(stamp + 2_000_000_000, stamp + 2_000_000_000))  # a new stamp, whatever the file system
