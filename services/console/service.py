"""The console service: pages for people, composed from mixins that each bring their own entrypoints.

nameko collects entrypoints and dependency providers from base classes too, so each page family is a
mixin class with its ``@http`` methods: accounts (login, logout, admin), staff (queue, item, inbox),
supervisor (desk, report) and, from ``services.console.kiosk``, the kiosk, the resident lookup and the 15-minute
service circle.
Every mixin uses the dependencies declared once on ``ConsolePagesBase``.
"""

from __future__ import annotations

from services.console import production_check  # noqa: F401 - registers the no-development-accounts rule
from services.console.pages_accounts import AccountPages
from services.console.pages_base import ConsolePagesBase
from services.console.pages_staff import StaffPages
from services.console.pages_supervisor import SupervisorPages
from shared.service_base import SanjiService

try:  # the kiosk and resident lookup pages live in their own package
    from services.console.kiosk import CirclePages, KioskPages, LookupPages, RatingPages
    _PAGE_PACKAGES: tuple[type, ...] = (KioskPages, LookupPages, CirclePages, RatingPages)
except ImportError:  # pragma: no cover - only while that package is not there yet
    _PAGE_PACKAGES = ()


class ConsoleService(AccountPages, StaffPages, SupervisorPages, *_PAGE_PACKAGES, ConsolePagesBase, SanjiService):
    name = "console"
