"""One valid payload of every event type, placed in a given district (its community, street and units), built
from the payload models' own field types, so that a new event type is covered without a change here."""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from shared.events import PAYLOAD_TYPES, EventPayload

MOMENT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _value(annotation: Any, name: str, place: dict[str, str]) -> Any:
    origin = get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _value(options[0], name, place)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin is tuple:
        return (_value(get_args(annotation)[0], name, place),)
    if origin is typing.Annotated:
        return _value(get_args(annotation)[0], name, place)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model(annotation, place)
    if annotation is datetime:
        return MOMENT
    if annotation is date:
        return MOMENT.date()
    if annotation is bool:
        return False
    if annotation is int:
        return 1
    if annotation is float:
        return 0.8
    if annotation is dict:
        return {}
    if name in place:
        return place[name]
    if name.endswith("_code") and name not in ("matter_code", "material_code", "reason_code", "bundle_code"):
        return place["unit_code"]  # any other twelve-digit unit code (from_unit_code, supervising_unit_code …)
    return f"sample-{name}"


def _model(model: type[BaseModel], place: dict[str, str]) -> BaseModel:
    values = {}
    for name, field in model.model_fields.items():
        if name in place:
            values[name] = place[name]
        elif field.is_required() or name in ("place", "agent_id"):
            values[name] = _value(field.annotation, name, place)
    return model(**values)


def sample_payload(payload_type: type[EventPayload], *, district_code: str, community_code: str,
                   level: str = "community") -> EventPayload:
    """A valid payload of the type, in the district (unit codes at the community, or at the level named)."""
    unit = {"community": community_code, "street": community_code[:9] + "000", "district": district_code}[level]
    place = {"district_code": district_code, "community_code": community_code, "unit_code": unit, "level": level,
             "department_code": "police", "matter_code": "residence-permit", "method": "pickup"}
    return _model(payload_type, place)


def every_payload(*, district_code: str, community_code: str) -> list[EventPayload]:
    return [sample_payload(payload_type, district_code=district_code, community_code=community_code)
            for payload_type in PAYLOAD_TYPES.values()]
