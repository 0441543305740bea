"""The service catalogue: jurisdictions, departments, matters and bundles, loaded from versioned YAML.

The catalogue is data, not code (routing follows the catalogue, never code), so everything a city may
change lives in ``catalogue/<city>/*.yaml`` and this module only loads and checks it. It is pure: stdlib,
pyyaml and pydantic, no I/O beyond reading the directory it is given.

Every problem found while loading raises :class:`CatalogueError` naming the file and the entry, so a
catalogue editor can fix the YAML without reading this code. Lookups on a loaded catalogue raise
:class:`UnknownCode`, which callers turn into a 4xx with a machine-readable reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

__all__ = [
    "MANIFEST_FILE",
    "SHIPPED_CATALOGUE_DIR",
    "Bundle",
    "Catalogue",
    "CatalogueError",
    "Department",
    "ApplicantKind",
    "CodeSource",
    "Level",
    "Material",
    "Matter",
    "MatterKind",
    "UnknownCode",
    "Unit",
    "load_catalogue",
]

MANIFEST_FILE = "catalogue.yaml"
# The repository's own Nanjing catalogue (present in a source checkout or an editable install).
SHIPPED_CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "catalogue" / "nanjing"

# About a year of working days: a longer limit is a typo (days entered as hours, an extra digit), not a rule.
MAX_WORKING_DAYS = 250


# ── Levels ─────────────────────────────────────────────────────────────────────────────────────────


class Level(StrEnum):
    """A level of the jurisdiction tree. Members are declared bottom-up; that order is the ranking."""

    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"

    @property
    def rank(self) -> int:
        """0 for community, 1 for street, 2 for district."""
        return _BOTTOM_UP.index(self)

    def above(self) -> Level | None:
        """The next level up (where an item escalates to), or None at the district."""
        rank = self.rank
        return _BOTTOM_UP[rank + 1] if rank + 1 < len(_BOTTOM_UP) else None

    def below(self) -> Level | None:
        """The next level down, or None at the community."""
        rank = self.rank
        return _BOTTOM_UP[rank - 1] if rank > 0 else None

    @classmethod
    def bottom_up(cls) -> tuple[Level, ...]:
        return _BOTTOM_UP


_BOTTOM_UP: tuple[Level, ...] = tuple(Level)
_JURISDICTION_PREFIX_LENGTH = {Level.DISTRICT: 6, Level.STREET: 9, Level.COMMUNITY: 12}


class ApplicantKind(StrEnum):
    """Who applies for a matter: a resident, or an organisation (统一社会信用代码) acting through its legal
    representative or an authorised agent."""

    PERSON = "person"
    ENTERPRISE = "enterprise"


class CodeSource(StrEnum):
    """Where a unit's 12-digit code comes from (the catalogue says so, so nobody mistakes a sample for fact)."""

    OFFICIAL = "official"  # the national statistical division code
    UNVERIFIED = "unverified"  # believed to follow the published list, not checked against it
    INVENTED = "invented"  # a plausible sample code; the real one is to be filled in by the city


class MatterKind(StrEnum):
    IMMEDIATE = "immediate"  # 即办件: done on the spot
    PROMISED = "promised"  # 承诺件: done within the promised limit


# ── Errors ─────────────────────────────────────────────────────────────────────────────────────────


class CatalogueError(Exception):
    """The catalogue on disk is not usable. ``str()`` reads ``"<file>: <entry>: <problem>"``."""

    def __init__(self, file: str, entry: str | None, problem: str) -> None:
        # Passing every field to Exception keeps the error picklable (args rebuild the instance).
        super().__init__(file, entry, problem)
        self.file = file
        self.entry = entry
        self.problem = problem

    def __str__(self) -> str:
        if self.entry:
            return f"{self.file}: {self.entry}: {self.problem}"
        return f"{self.file}: {self.problem}"


class UnknownCode(LookupError):
    """A lookup named a code the catalogue does not hold (or holds as something else)."""

    def __init__(self, kind: str, code: str, detail: str | None = None) -> None:
        super().__init__(kind, code, detail)
        self.kind = kind
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        message = f"unknown {self.kind} code {self.code!r}"
        return f"{message} ({self.detail})" if self.detail else message


# ── Field types ────────────────────────────────────────────────────────────────────────────────────

_KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_TWELVE_DIGITS = re.compile(r"\d{12}")


def _kebab_code(value: str) -> str:
    if not _KEBAB.fullmatch(value):
        raise ValueError(f"{value!r} is not a lower-case ascii kebab code (like 'residence-permit')")
    return value


def _twelve_digit_code(value: str) -> str:
    if not _TWELVE_DIGITS.fullmatch(value):
        raise ValueError(f"{value!r} is not a 12-digit division code (quote it in YAML)")
    return value


def _working_days(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} is not a positive number of working days")
    if value > MAX_WORKING_DAYS:
        raise ValueError(
            f"{value} working days is more than {MAX_WORKING_DAYS} (about a year): not plausible"
        )
    return value


Code = Annotated[StrictStr, AfterValidator(_kebab_code)]
UnitCode = Annotated[StrictStr, AfterValidator(_twelve_digit_code)]
Name = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]
WorkingDays = Annotated[StrictInt, AfterValidator(_working_days)]


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


class _Frozen(BaseModel):
    # extra="forbid" turns a misspelt key (promise_days) into an error instead of a silent default.
    model_config = ConfigDict(frozen=True, extra="forbid")


# ── Catalogue entries ──────────────────────────────────────────────────────────────────────────────


def _level_of_code(code: str) -> Level | None:
    """The level a 12-digit code has the shape of, or None when it fits no level."""
    county, street, community = code[:6], code[6:9], code[9:]
    if county.endswith("00"):  # a province or city code, not a county
        return None
    if street == "000":
        return Level.DISTRICT if community == "000" else None
    return Level.STREET if community == "000" else Level.COMMUNITY


def _parent_code_for(code: str, level: Level) -> str | None:
    """The only parent code a unit's own code allows: the code with its lowest part zeroed."""
    if level is Level.COMMUNITY:
        return code[:9] + "000"
    if level is Level.STREET:
        return code[:6] + "000000"
    return None


class Unit(_Frozen):
    """A district, street or community."""

    code: UnitCode
    name: Name
    level: Level
    parent_code: UnitCode | None
    code_source: CodeSource = CodeSource.UNVERIFIED

    @model_validator(mode="after")
    def _code_fits_level(self) -> Unit:
        shape = _level_of_code(self.code)
        if shape is None:
            raise ValueError(
                f"code '{self.code}' fits no level (district = 6 digits + 000000, "
                "street = 9 digits + 000, community = 12 digits not ending in 000)"
            )
        if shape is not self.level:
            raise ValueError(f"code '{self.code}' has the shape of a {shape} code, but level is {self.level}")
        if self.level is Level.DISTRICT and self.parent_code is not None:
            raise ValueError(f"a district has no parent_code (got '{self.parent_code}')")
        if self.level is not Level.DISTRICT and self.parent_code is None:
            raise ValueError(f"a {self.level} needs a parent_code")
        return self


class Department(_Frozen):
    code: Code
    name: Name
    levels: tuple[Level, ...]

    @model_validator(mode="after")
    def _levels_listed_once(self) -> Department:
        if not self.levels:
            raise ValueError("levels is empty: a department needs a desk at one level at least")
        if repeated := _duplicates(self.levels):
            raise ValueError(f"levels lists {', '.join(repeated)} more than once")
        return self

    def has_desk_at(self, level: Level) -> bool:
        return level in self.levels


class Material(_Frozen):
    code: Code
    name: Name
    deferrable: StrictBool  # may be supplied after acceptance (容缺受理)


class Matter(_Frozen):
    code: Code
    name: Name
    department: Code
    lowest_level: Level
    legal_days: WorkingDays
    promised_days: WorkingDays
    kind: MatterKind
    materials: tuple[Material, ...]
    proxy_allowed: StrictBool
    applicant_kind: ApplicantKind = ApplicantKind.PERSON
    prerequisites: tuple[Code, ...] = ()
    internal_loop_days: WorkingDays | None = None
    supplement_pauses_clock: StrictBool = True
    return_limit_days: WorkingDays = 2
    # 吹哨: departments called in when an item of this matter reaches the street or the district by escalation.
    call_in_departments: tuple[Code, ...] = ()

    @model_validator(mode="after")
    def _limits_consistent(self) -> Matter:
        if self.promised_days > self.legal_days:
            raise ValueError(
                f"promised_days {self.promised_days} is longer than legal_days {self.legal_days}"
            )
        if self.kind is MatterKind.IMMEDIATE and self.promised_days > 1:
            raise ValueError(
                f"an immediate matter (即办件) promises at most 1 working day, not {self.promised_days}"
            )
        if self.internal_loop_days is not None:
            if self.lowest_level is not Level.COMMUNITY:
                raise ValueError(
                    "internal_loop_days is only for community-level matters, "
                    f"but lowest_level is {self.lowest_level}"
                )
            if self.internal_loop_days >= self.promised_days:
                raise ValueError(
                    f"internal_loop_days {self.internal_loop_days} leaves the levels above no time "
                    f"within promised_days {self.promised_days}"
                )
        if repeated := _duplicates(material.code for material in self.materials):
            raise ValueError(f"material {', '.join(map(repr, repeated))} is listed more than once")
        if repeated := _duplicates(self.prerequisites):
            raise ValueError(f"prerequisite {', '.join(map(repr, repeated))} is listed more than once")
        if repeated := _duplicates(self.call_in_departments):
            raise ValueError(f"call_in_departments lists {', '.join(map(repr, repeated))} more than once")
        if self.department in self.call_in_departments:
            raise ValueError(f"call_in_departments names the matter's own department '{self.department}'")
        return self

    @property
    def main_materials(self) -> tuple[Material, ...]:
        """Materials that must be present at acceptance."""
        return tuple(material for material in self.materials if not material.deferrable)

    @property
    def deferrable_materials(self) -> tuple[Material, ...]:
        """Materials that may follow after acceptance (容缺受理)."""
        return tuple(material for material in self.materials if material.deferrable)


class Bundle(_Frozen):
    code: Code
    name: Name
    matters: tuple[Code, ...]
    # Matters a case of this bundle may add on request (e.g. flexible-employment insurance for a migrant).
    optional_matters: tuple[Code, ...] = ()

    @model_validator(mode="after")
    def _joint_handling_makes_sense(self) -> Bundle:
        if len(self.matters) < 2:
            raise ValueError(f"a bundle joins at least 2 matters, this one has {len(self.matters)}")
        if repeated := _duplicates((*self.matters, *self.optional_matters)):
            raise ValueError(f"matter {', '.join(map(repr, repeated))} is listed more than once")
        return self


class _City(_Frozen):
    code: UnitCode
    name: Name


class _ManifestFiles(_Frozen):
    jurisdictions: Name
    departments: Name
    matters: Name
    bundles: Name
    reasons: Name


class Reason(_Frozen):
    """A coded reason staff give when they reject or return an item (so the reasons can be counted)."""

    code: Code
    name: Name


class _Reasons(_Frozen):
    reject: tuple[Reason, ...]
    return_: tuple[Reason, ...] = Field(alias="return")


def _release_version(value: str) -> str:
    if "+" in value:
        raise ValueError(f"{value!r} contains '+': the loader appends '+<content hash>' itself")
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.\-]*", value):
        raise ValueError(f"{value!r} is not a version like '2026.11.1'")
    return value


class _Manifest(_Frozen):
    version: Annotated[StrictStr, AfterValidator(_release_version)]
    name: Name
    files: _ManifestFiles


# ── The loaded catalogue ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A loaded, checked catalogue. Immutable; safe to share between workers."""

    version: str  # manifest version + "+" + first 12 hex chars of sha256 over the files' bytes
    name: str
    units: Mapping[str, Unit]
    departments: Mapping[str, Department]
    matters: Mapping[str, Matter]
    bundles: Mapping[str, Bundle]
    reject_reasons: Mapping[str, Reason]
    return_reasons: Mapping[str, Reason]

    # Lookups ------------------------------------------------------------------------------------

    def unit(self, code: str) -> Unit:
        try:
            return self.units[code]
        except KeyError:
            raise UnknownCode("unit", code) from None

    def community(self, code: str) -> Unit:
        unit = self.units.get(code)
        if unit is None:
            raise UnknownCode("community", code)
        if unit.level is not Level.COMMUNITY:
            raise UnknownCode("community", code, f"it is the {unit.level} {unit.name}")
        return unit

    def department(self, code: str) -> Department:
        try:
            return self.departments[code]
        except KeyError:
            raise UnknownCode("department", code) from None

    def matter(self, code: str) -> Matter:
        try:
            return self.matters[code]
        except KeyError:
            raise UnknownCode("matter", code) from None

    def bundle(self, code: str) -> Bundle:
        try:
            return self.bundles[code]
        except KeyError:
            raise UnknownCode("bundle", code) from None

    # Jurisdiction ---------------------------------------------------------------------------------

    def line_of(self, community_code: str) -> dict[Level, Unit]:
        """The community, its street and its district: the line its items are routed and escalated in."""
        community = self.community(community_code)
        street = self.units[community.parent_code]  # parents are checked on load
        district = self.units[street.parent_code]
        return {Level.COMMUNITY: community, Level.STREET: street, Level.DISTRICT: district}

    def unit_at(self, community_code: str, level: Level | str) -> Unit:
        """The unit at ``level`` in the community's own line."""
        return self.line_of(community_code)[Level(level)]

    def desk_level_above(self, matter: Matter, level: Level) -> Level | None:
        """The next level up the line where the matter's department has a desk (where an item can move
        when it is returned or escalated), or None at the top."""
        department = self.department(matter.department)
        above = level.above()
        while above is not None and not department.has_desk_at(above):
            above = above.above()
        return above

    def jurisdiction_prefix(self, unit_code: str) -> str:
        """Division codes are hierarchical: a unit's jurisdiction is every code that starts with this
        prefix (6 digits for a district, 9 for a street, the whole code for a community)."""
        return unit_code[:_JURISDICTION_PREFIX_LENGTH[self.unit(unit_code).level]]

    def is_within(self, unit_code: str, scope_code: str) -> bool:
        """True if the unit is the scope or lies below it (e.g. a kiosk's community inside a street)."""
        unit = self.unit(unit_code)
        self.unit(scope_code)  # an unknown scope is a caller's mistake, not a plain "no"
        while True:
            if unit.code == scope_code:
                return True
            if unit.parent_code is None:
                return False
            unit = self.units[unit.parent_code]

    # Bundles ------------------------------------------------------------------------------------

    def expand(
        self, *, matter_codes: Iterable[str] = (), bundle_code: str | None = None
    ) -> tuple[Matter, ...]:
        """The matters of a case: the bundle's matters, then the extra ones, each once.

        Ordered so a matter's prerequisites come before it (also through a prerequisite that was not
        asked for); otherwise the requested order is kept. A prerequisite that was not asked for is not
        added: the applicant may already hold it (a migrant with a residence permit).
        """
        if isinstance(matter_codes, str):
            raise TypeError("matter_codes takes a sequence of codes, not a single string")
        requested: list[str] = []
        if bundle_code is not None:
            requested.extend(self.bundle(bundle_code).matters)
        for code in matter_codes:
            requested.append(self.matter(code).code)
        wanted = dict.fromkeys(requested)  # de-duplicated, first occurrence wins

        ordered: list[Matter] = []
        visited: set[str] = set()

        def place(code: str) -> None:
            if code in visited:
                return
            visited.add(code)
            matter = self.matters[code]
            for prerequisite in matter.prerequisites:  # acyclic: checked on load
                place(prerequisite)
            if code in wanted:
                ordered.append(matter)

        for code in wanted:
            place(code)
        return tuple(ordered)


# ── Loading ────────────────────────────────────────────────────────────────────────────────────────


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            except TypeError:  # unhashable key: let the base class report it
                pass
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(file: str, data: bytes) -> Any:
    try:
        return yaml.load(data, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise CatalogueError(file, None, f"not valid YAML: {exc}") from None


def _describe(error: ValidationError) -> str:
    """One line per problem, ``field.path: message``, without pydantic's URLs and class names."""
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] not in ("missing", "value_error") and not isinstance(detail["input"], dict | list):
            message += f" (got {detail['input']!r})"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


_Model = TypeVar("_Model", bound=BaseModel)


def _build(model: type[_Model], raw: Any, file: str, entry: str | None) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(file, entry, _describe(exc)) from None


def _entry_label(kind: str, raw: Any, position: int) -> str:
    """How an error names an entry: by its code when it has one, else by its position (1-based)."""
    code = raw.get("code") if isinstance(raw, dict) else None
    if not isinstance(code, str | int) or isinstance(code, bool):
        return f"{kind} #{position}"
    if kind == "unit" and isinstance(raw.get("name"), str):
        return f"unit '{code}' ({raw['name']})"
    return f"{kind} '{code}'"


_EntryModel = TypeVar("_EntryModel", Unit, Department, Matter, Bundle)


def _build_entries(
    model: type[_EntryModel], document: Any, file: str, list_key: str, kind: str
) -> dict[str, _EntryModel]:
    if not isinstance(document, dict) or not isinstance(document.get(list_key), list):
        raise CatalogueError(file, None, f"expected a mapping with a '{list_key}' list")
    built: dict[str, _EntryModel] = {}
    positions: dict[str, int] = {}
    for position, raw in enumerate(document[list_key], start=1):
        label = _entry_label(kind, raw, position)
        entry = _build(model, raw, file, label)
        if entry.code in built:
            raise CatalogueError(
                file, label, f"duplicate code (entries #{positions[entry.code]} and #{position})"
            )
        built[entry.code] = entry
        positions[entry.code] = position
    return built


def _load_units(document: Any, file: str) -> dict[str, Unit]:
    if not isinstance(document, dict):
        raise CatalogueError(file, None, "expected a mapping with 'city' and a 'units' list")
    city = _build(_City, document.get("city"), file, "city")
    if _level_of_code(city.code) is not None or not city.code.endswith("00000000"):
        raise CatalogueError(file, "city", f"code '{city.code}' is not a city code (4 digits + 00000000)")
    units = _build_entries(Unit, document, file, "units", "unit")

    for unit in units.values():
        label = f"unit '{unit.code}' ({unit.name})"
        if unit.parent_code is None:
            if not unit.code.startswith(city.code[:4]):
                raise CatalogueError(file, label, f"district does not lie in {city.name} ({city.code})")
            continue
        parent = units.get(unit.parent_code)
        if parent is None:
            raise CatalogueError(file, label, f"unknown parent_code '{unit.parent_code}'")
        if parent.level is not unit.level.above():
            raise CatalogueError(
                file,
                label,
                f"parent '{parent.code}' ({parent.name}) is a {parent.level}, "
                f"but a {unit.level}'s parent must be a {unit.level.above()}",
            )
        if unit.parent_code != _parent_code_for(unit.code, unit.level):
            raise CatalogueError(
                file,
                label,
                f"code '{unit.code}' does not lie under parent '{parent.code}' ({parent.name}): "
                f"a {unit.level} code starts with its parent's first "
                f"{9 if unit.level is Level.COMMUNITY else 6} digits",
            )
    return units


def _check_matters(matters: Mapping[str, Matter], departments: Mapping[str, Department], file: str) -> None:
    for matter in matters.values():
        label = f"matter '{matter.code}'"
        department = departments.get(matter.department)
        if department is None:
            raise CatalogueError(file, label, f"unknown department '{matter.department}'")
        # An item starts at the lowest level and may climb (escalation, the level above deciding a
        # returned item), so the department needs a desk at every level from there up.
        level: Level | None = matter.lowest_level
        while level is not None:
            if not department.has_desk_at(level):
                raise CatalogueError(
                    file,
                    label,
                    f"department '{department.code}' has no desk at {level} "
                    f"(desks: {', '.join(department.levels)}); a matter with lowest_level "
                    f"{matter.lowest_level} needs one there and at every level above",
                )
            level = level.above()
        for prerequisite in matter.prerequisites:
            if prerequisite not in matters:
                raise CatalogueError(file, label, f"unknown prerequisite '{prerequisite}'")
            if matters[prerequisite].applicant_kind is not matter.applicant_kind:
                raise CatalogueError(file, label, f"prerequisite '{prerequisite}' is for a "
                                                  f"{matters[prerequisite].applicant_kind} applicant, this matter "
                                                  f"for a {matter.applicant_kind}")
        for called in matter.call_in_departments:
            called_department = departments.get(called)
            if called_department is None:
                raise CatalogueError(file, label, f"call_in_departments: unknown department '{called}'")
            # Calls are made at the street and the district: the department must have a desk at one of them.
            if not (called_department.has_desk_at(Level.STREET) or called_department.has_desk_at(Level.DISTRICT)):
                raise CatalogueError(file, label, f"call_in_departments: department '{called}' has no desk at "
                                                  "the street or the district, where departments are called in")

    if cycle := _prerequisite_cycle(matters):
        raise CatalogueError(file, f"matter '{cycle[0]}'", f"prerequisite cycle {' -> '.join(cycle)}")


def _prerequisite_cycle(matters: Mapping[str, Matter]) -> list[str] | None:
    """The first prerequisite cycle in file order, as a closed path (a -> b -> a), or None."""
    finished: set[str] = set()
    path: list[str] = []

    def visit(code: str) -> list[str] | None:
        path.append(code)
        for prerequisite in matters[code].prerequisites:
            if prerequisite in path:
                return [*path[path.index(prerequisite) :], prerequisite]
            if prerequisite not in finished and (cycle := visit(prerequisite)):
                return cycle
        path.pop()
        finished.add(code)
        return None

    for code in matters:
        if code not in finished and (cycle := visit(code)):
            return cycle
    return None


def _check_bundles(bundles: Mapping[str, Bundle], matters: Mapping[str, Matter], file: str) -> None:
    for bundle in bundles.values():
        for code in (*bundle.matters, *bundle.optional_matters):
            if code not in matters:
                raise CatalogueError(file, f"bundle '{bundle.code}'", f"unknown matter '{code}'")
        # One form, one applicant: a bundle is for a resident or for an enterprise, never both.
        kinds = {matters[code].applicant_kind for code in (*bundle.matters, *bundle.optional_matters)}
        if len(kinds) > 1:
            by_kind = ", ".join(f"{code} ({matters[code].applicant_kind})"
                                for code in (*bundle.matters, *bundle.optional_matters))
            raise CatalogueError(file, f"bundle '{bundle.code}'",
                                 f"mixes resident and enterprise matters: {by_kind}")


def load_catalogue(directory: str | Path) -> Catalogue:
    """Load and check the catalogue in ``directory`` (its ``catalogue.yaml`` lists the other files)."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    try:
        manifest_bytes = manifest_path.read_bytes()
    except OSError as exc:
        raise CatalogueError(MANIFEST_FILE, None, f"cannot read manifest in {directory}: {exc}") from None
    manifest = _build(_Manifest, _parse_yaml(MANIFEST_FILE, manifest_bytes), MANIFEST_FILE, "manifest")

    fingerprint = hashlib.sha256()
    _fingerprint_file(fingerprint, MANIFEST_FILE, manifest_bytes)
    documents: dict[str, tuple[str, Any]] = {}
    for role, file in manifest.files.model_dump().items():
        data = _read_listed_file(directory, role, file)
        _fingerprint_file(fingerprint, file, data)
        documents[role] = (file, _parse_yaml(file, data))

    units_file, units_document = documents["jurisdictions"]
    units = _load_units(units_document, units_file)
    departments_file, departments_document = documents["departments"]
    departments = _build_entries(
        Department, departments_document, departments_file, "departments", "department"
    )
    matters_file, matters_document = documents["matters"]
    matters = _build_entries(Matter, matters_document, matters_file, "matters", "matter")
    _check_matters(matters, departments, matters_file)
    bundles_file, bundles_document = documents["bundles"]
    bundles = _build_entries(Bundle, bundles_document, bundles_file, "bundles", "bundle")
    _check_bundles(bundles, matters, bundles_file)
    reasons_file, reasons_document = documents["reasons"]
    reasons = _build(_Reasons, reasons_document, reasons_file, None)
    reject_reasons = _unique_reasons(reasons.reject, reasons_file, "reject")
    return_reasons = _unique_reasons(reasons.return_, reasons_file, "return")

    return Catalogue(
        version=f"{manifest.version}+{fingerprint.hexdigest()[:12]}",
        name=manifest.name,
        units=MappingProxyType(units),
        departments=MappingProxyType(departments),
        matters=MappingProxyType(matters),
        bundles=MappingProxyType(bundles),
        reject_reasons=MappingProxyType(reject_reasons),
        return_reasons=MappingProxyType(return_reasons),
    )


def _unique_reasons(reasons: tuple[Reason, ...], file: str, kind: str) -> dict[str, Reason]:
    if not reasons:
        raise CatalogueError(file, kind, "lists no reasons")
    repeated = _duplicates(reason.code for reason in reasons)
    if repeated:
        raise CatalogueError(file, kind, f"reason code {repeated[0]!r} is listed twice")
    return {reason.code: reason for reason in reasons}


def _read_listed_file(directory: Path, role: str, file: str) -> bytes:
    path = directory / file
    if not path.resolve().is_relative_to(directory.resolve()):
        raise CatalogueError(MANIFEST_FILE, f"files.{role}", f"'{file}' lies outside {directory}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CatalogueError(
            MANIFEST_FILE, f"files.{role}", f"lists '{file}', which does not exist in {directory}"
        ) from None
    except OSError as exc:
        raise CatalogueError(MANIFEST_FILE, f"files.{role}", f"cannot read '{file}': {exc}") from None


def _fingerprint_file(fingerprint: Any, file: str, data: bytes) -> None:
    # Name and length framing, so moving bytes from one file to the next still changes the digest.
    fingerprint.update(f"{file}\0{len(data)}\0".encode())
    fingerprint.update(data)
