"""The staff queue's page cursor: opaque to clients, the sort key of the last item of a page (its promised
deadline and id), so that the next page is one index range whatever page it is (keyset pagination)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from services.routing.item_actions import QueuePosition

_ITEM_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
MAX_CURSOR = 120


class BadCursor(ValueError):
    """Not a cursor this service gave out."""


def encode_cursor(position: QueuePosition) -> str:
    text = f"{position.promised_deadline.isoformat()}|{position.item_id}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> QueuePosition:
    if not 0 < len(cursor) <= MAX_CURSOR:
        raise BadCursor("cursor of the wrong length")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        moment, item_id = text.split("|")
        deadline = datetime.fromisoformat(moment)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor("not a cursor of this queue") from exc
    if deadline.tzinfo is None or not _ITEM_ID.fullmatch(item_id):
        raise BadCursor("not a cursor of this queue")
    return QueuePosition(deadline, item_id)
