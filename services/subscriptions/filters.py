"""The CloudEvents Subscriptions filter dialect, parsed and evaluated in memory (pure: no I/O, no clock).

A subscription's ``filters`` is a list of filter expressions that must all match (the spec's semantics). Each
expression is one of:

- ``{"exact": {"<attribute>": "<value>"}}``: the attribute equals the value;
- ``{"prefix": {"<attribute>": "<value>"}}``: the attribute starts with the value;
- ``{"suffix": {"<attribute>": "<value>"}}``: the attribute ends with the value;
- ``{"all": [<expression>, ...]}``: every nested expression matches;
- ``{"any": [<expression>, ...]}``: at least one nested expression matches;
- ``{"not": <expression>}``: the nested expression does not match.

exact, prefix and suffix name exactly one attribute (as the spec says). Matching is case-sensitive. An
attribute the event does not carry matches no exact, prefix or suffix expression (so ``not`` of one matches).
The optional CloudEvents SQL dialect is not supported (refused as ``invalid_filter``).

The attributes: the CloudEvents context attributes ``type``, ``source``, ``subject`` and ``id``, and Sanji's
``matter``, ``level``, ``unit``, ``district``, ``department`` and ``case``, read from the event's data (the same
values its routing key is built from: see ``event_attributes``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from shared.event_catalogue import FILTER_ATTRIBUTE_FIELDS

CONTEXT_ATTRIBUTES = ("type", "source", "subject", "id")
OWN_ATTRIBUTES = tuple(FILTER_ATTRIBUTE_FIELDS)   # matter, level, unit, district, department, case
ATTRIBUTES = CONTEXT_ATTRIBUTES + OWN_ATTRIBUTES
VALUE_OPERATORS = ("exact", "prefix", "suffix")
# A subscription's filter is small; anything bigger is a mistake or an attempt to make matching expensive.
MAX_EXPRESSIONS = 64
MAX_VALUE_LENGTH = 200


class FilterInvalid(ValueError):
    """A filter that does not follow the dialect; ``where`` is the JSON path of the offending expression."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class Value:
    operator: str      # exact, prefix or suffix
    attribute: str
    value: str

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        actual = attributes.get(self.attribute)
        if actual is None:
            return False
        if self.operator == "exact":
            return actual == self.value
        if self.operator == "prefix":
            return actual.startswith(self.value)
        return actual.endswith(self.value)


@dataclass(frozen=True)
class All:
    expressions: tuple[Expression, ...]

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        return all(expression.matches(attributes) for expression in self.expressions)


@dataclass(frozen=True)
class Any:
    expressions: tuple[Expression, ...]

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        return any(expression.matches(attributes) for expression in self.expressions)


@dataclass(frozen=True)
class Not:
    expression: Expression

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        return not self.expression.matches(attributes)


Expression = Value | All | Any | Not


def parse_filters(document: object) -> tuple[Expression, ...]:
    """A subscription's ``filters`` (a JSON list, possibly empty: everything in the mandate) to expressions, or
    ``FilterInvalid`` naming where and why."""
    if not isinstance(document, list):
        raise FilterInvalid("filters", "must be a list of filter expressions")
    budget = [MAX_EXPRESSIONS]
    return tuple(_parse(expression, f"filters[{index}]", budget) for index, expression in enumerate(document))


def _parse(document: object, where: str, budget: list[int]) -> Expression:
    budget[0] -= 1
    if budget[0] < 0:
        raise FilterInvalid(where, f"a subscription's filters hold at most {MAX_EXPRESSIONS} expressions")
    if not isinstance(document, dict) or len(document) != 1:
        raise FilterInvalid(where, "a filter expression is an object with exactly one of exact, prefix, suffix, "
                                   "all, any, not")
    ((operator, operand),) = document.items()
    if operator in VALUE_OPERATORS:
        if not isinstance(operand, dict) or len(operand) != 1:
            raise FilterInvalid(where, f"{operator} names exactly one attribute: {{\"{operator}\": "
                                       "{\"type\": \"...\"}}")
        ((attribute, value),) = operand.items()
        if attribute not in ATTRIBUTES:
            raise FilterInvalid(f"{where}.{operator}", f"unknown attribute {attribute!r}; one of "
                                                       f"{', '.join(ATTRIBUTES)}")
        if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH:
            raise FilterInvalid(f"{where}.{operator}.{attribute}",
                                f"the value is a non-empty string of at most {MAX_VALUE_LENGTH} characters")
        return Value(operator, attribute, value)
    if operator in ("all", "any"):
        if not isinstance(operand, list) or not operand:
            raise FilterInvalid(where, f"{operator} takes a non-empty list of filter expressions")
        nested = tuple(_parse(item, f"{where}.{operator}[{index}]", budget) for index, item in enumerate(operand))
        return All(nested) if operator == "all" else Any(nested)
    if operator == "not":
        return Not(_parse(operand, f"{where}.not", budget))
    if operator == "sql":
        raise FilterInvalid(where, "the CloudEvents SQL dialect is not supported; use exact, prefix, suffix, all, "
                                   "any and not")
    raise FilterInvalid(where, f"unknown filter operator {operator!r}; one of exact, prefix, suffix, all, any, not")


def matches(filters: tuple[Expression, ...], attributes: Mapping[str, str | None]) -> bool:
    """Whether an event (its attributes) passes every filter expression (an empty list passes everything)."""
    return all(expression.matches(attributes) for expression in filters)


def values(filters: tuple[Expression, ...], *, positive: bool | None = None) -> Iterator[tuple[Value, bool]]:
    """Every value expression with whether it is positive (under an even number of ``not``): a positive
    exact or prefix is a claim on what the subscriber wants, which its mandate must cover."""

    def walk(expression: Expression, is_positive: bool) -> Iterator[tuple[Value, bool]]:
        if isinstance(expression, Value):
            yield expression, is_positive
        elif isinstance(expression, All | Any):
            for nested in expression.expressions:
                yield from walk(nested, is_positive)
        else:
            yield from walk(expression.expression, not is_positive)

    for expression in filters:
        for value, is_positive in walk(expression, True):
            if positive is None or is_positive is positive:
                yield value, is_positive


def to_document(filters: tuple[Expression, ...]) -> list:
    """The expressions back to the dialect's JSON (as stored and answered)."""

    def one(expression: Expression):
        if isinstance(expression, Value):
            return {expression.operator: {expression.attribute: expression.value}}
        if isinstance(expression, All):
            return {"all": [one(nested) for nested in expression.expressions]}
        if isinstance(expression, Any):
            return {"any": [one(nested) for nested in expression.expressions]}
        return {"not": one(expression.expression)}

    return [one(expression) for expression in filters]


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def event_attributes(event: Mapping) -> dict[str, str | None]:
    """The filterable attributes of a CloudEvent (its JSON document): the context attributes from the envelope,
    Sanji's from ``data``, each from the first of its fields the event carries, as the event catalogue lists them
    (``shared.event_catalogue.FILTER_ATTRIBUTE_FIELDS``): ``unit`` is the unit the event is at, else the case's
    community, else the district; ``district`` the district code, else the district of the unit (its first six
    digits, then zeros). Case events carry no ``department``: a department's mandate never covers them."""
    data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
    attributes = {name: _text(event.get(name)) for name in CONTEXT_ATTRIBUTES}
    for name, fields in FILTER_ATTRIBUTE_FIELDS.items():
        attributes[name] = next((value for value in (_text(data.get(field)) for field in fields) if value), None)
    district = attributes.get("district")
    if district is not None and len(district) == 12:
        attributes["district"] = district[:6] + "000000"
    return attributes
