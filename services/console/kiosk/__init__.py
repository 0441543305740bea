"""The kiosk (``/kiosk...``), the resident lookup (``/lookup``) and 好差评 (``/rate``, ``/lookup/rate``,
``/kiosk/rate``) of the console service."""

from services.console.kiosk.circle_pages import CirclePages
from services.console.kiosk.pages import KioskPages, LookupPages
from services.console.kiosk.rating_pages import RatingPages

__all__ = ["CirclePages", "KioskPages", "LookupPages", "RatingPages"]
