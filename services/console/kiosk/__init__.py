"""The kiosk (``/kiosk...``) and the resident lookup (``/lookup``) of the console service."""

from services.console.kiosk.circle_pages import CirclePages
from services.console.kiosk.pages import KioskPages, LookupPages

__all__ = ["CirclePages", "KioskPages", "LookupPages"]
