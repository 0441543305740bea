"""Whose events a subscriber may receive: the scope comes from the mandate, never from the filters (pure).

- A **department system** (a department token) sees the events of its own department at its unit and below:
  a district's 公安 every police event of the district, a street's 住建 desk the housing events of the street
  and its communities. The jurisdiction is the division code's prefix (6 digits for a district, 9 for a street,
  12 for a community), as the bus permissions of ``shared.bus.DepartmentDesk`` draw it.
- A **supervising level** (staff of a street or a district) may hold read-only subscriptions over its whole
  jurisdiction, every department.
- Nobody else subscribes (kiosks, community staff, specialists, the console).

Filters only narrow. A filter that claims more than the mandate (a positive exact or prefix value on ``unit``,
``district`` or ``department`` outside it, or an event type that can never be in it) is **refused**
(``outside_mandate``, 403), never silently narrowed: a department that asks for another district's events must
learn that it will not get them. A filter that says nothing of them means "everything in my mandate". Suffix
values are patterns, not claims of territory: they are accepted and, like every filter, applied inside the
mandate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.subscriptions import filters as dialect
from shared.auth import Principal
from shared.refusal import Refusal


@dataclass(frozen=True)
class Mandate:
    kind: str                   # "department" or "supervisor"
    department: str | None      # a department system's own; None: every department (a supervisor)
    unit_code: str
    unit_prefix: str
    district_code: str

    def covers(self, attributes: Mapping[str, str | None]) -> bool:
        """Whether an event (its attributes, ``filters.event_attributes``) lies inside the mandate."""
        unit = attributes.get("unit")
        if unit is None or not unit.startswith(self.unit_prefix):
            return False
        if self.department is not None and attributes.get("department") != self.department:
            return False
        return True

    def as_scope(self) -> dict:
        return {"kind": self.kind, "department": self.department, "unit_code": self.unit_code,
                "unit_prefix": self.unit_prefix, "district_code": self.district_code}


def jurisdiction_prefix(unit_code: str) -> str:
    """Division codes are hierarchical: a district's jurisdiction is its first 6 digits, a street's 9, a
    community's whole code."""
    if unit_code[6:] == "000000":
        return unit_code[:6]
    if unit_code[9:] == "000":
        return unit_code[:9]
    return unit_code


def mandate_of(principal: Principal) -> Mandate:
    """The mandate a principal subscribes under, or a 403 ``subscriber_forbidden`` saying who may."""
    unit = principal.unit_code
    prefix = jurisdiction_prefix(unit)
    district = unit[:6] + "000000"
    if principal.kind == "department":
        if not principal.department:
            raise Refusal("subscriber_forbidden", "this department token names no department, so it has no "
                          "mandate to subscribe under", status=403)
        return Mandate("department", principal.department, unit, prefix, district)
    if principal.kind == "staff" and len(prefix) < 12:
        return Mandate("supervisor", None, unit, prefix, district)
    raise Refusal("subscriber_forbidden", "only department systems and the staff of a street or a district "
                  "(supervising levels) hold subscriptions", status=403)


@dataclass(frozen=True)
class EventTypes:
    """What the filters are checked against: the known event types, and which can carry a department."""

    types: frozenset[str]
    with_department: frozenset[str]
    departments: frozenset[str]


def check_filters(mandate: Mandate, expressions: tuple, known: EventTypes) -> None:
    """Refuse filters that name unknown event types (400 ``unknown_event_type``) or claim more than the mandate
    (403 ``outside_mandate``, with the attribute and the mandate in the problem)."""
    for value, positive in dialect.values(expressions):
        if value.attribute == "type":
            matching = _types_matching(value, known.types)
            if not matching:
                raise Refusal("unknown_event_type", f"no event type matches {value.operator} {value.value!r}; the "
                              "event types are listed in docs/asyncapi.json", status=400,
                              attribute="type", operator=value.operator)
            if positive and mandate.department is not None and not matching & known.with_department:
                raise _outside(mandate, "type", f"events of {value.value!r} carry no department, so no department's "
                               "mandate covers them")
    for value, _ in dialect.values(expressions, positive=True):
        if value.operator == "suffix":
            continue
        problem = _claim_problem(mandate, value, known)
        if problem:
            raise _outside(mandate, value.attribute, problem)


def _types_matching(value, types: frozenset[str]) -> frozenset[str]:
    return frozenset(name for name in types if value.matches({"type": name}))


def _claim_problem(mandate: Mandate, value, known: EventTypes) -> str | None:
    text, operator = value.value, value.operator
    if value.attribute == "unit":
        if text.startswith(mandate.unit_prefix):
            return None
        return f"unit {operator} {text!r} reaches outside the jurisdiction of {mandate.unit_code}"
    if value.attribute == "district":
        fits = text == mandate.district_code if operator == "exact" else (
            len(text) >= 6 and mandate.district_code.startswith(text))
        return None if fits else f"district {operator} {text!r} is not the district {mandate.district_code}"
    if value.attribute == "department" and mandate.department is not None:
        if operator == "exact":
            fits = text == mandate.department
        else:
            named = {code for code in known.departments if code.startswith(text)} | {mandate.department}
            fits = mandate.department.startswith(text) and named == {mandate.department}
        return None if fits else (f"department {operator} {text!r} is not this system's department "
                                  f"{mandate.department!r}")
    return None


def _outside(mandate: Mandate, attribute: str, problem: str) -> Refusal:
    return Refusal("outside_mandate", f"the filter asks for more than the mandate: {problem}", status=403,
                   attribute=attribute, scope=mandate.as_scope())
