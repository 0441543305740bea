"""The kiosk API's request and response bodies. The OpenAPI document is generated from these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.api_models import Health, Problem  # noqa: F401 - part of this API's schema set
from shared.events import Delivery

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
DivisionCode = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Applicant(_Strict):
    name: str = Field(min_length=1, max_length=50, examples=["刘金花"])
    id_number: str = Field(min_length=1, max_length=32, description="18-character resident ID (GB 11643)")
    phone: str = Field(pattern=r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", description="mobile or landline")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="optional; for notices by email")


class Materials(_Strict):
    provided: list[Code] = Field(default_factory=list, max_length=50)
    deferred: list[Code] = Field(default_factory=list, max_length=50,
                                 description="容缺: deferrable materials the applicant commits to supply later")


class Channel(_Strict):
    kind: Literal["kiosk", "window", "proxy"] = "kiosk"
    agent_id: str | None = Field(default=None, max_length=64, description="required for proxy (代办)")

    @model_validator(mode="after")
    def _proxy_names_its_agent(self) -> Channel:
        if self.kind == "proxy" and not self.agent_id:
            raise ValueError("a proxy submission names the agent (agent_id)")
        return self


PointId = Annotated[str, StringConstraints(pattern=r"^sp-[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]


class CaseSubmission(_Strict):
    community_code: DivisionCode = Field(description="where the case is taken in: the kiosk's community, or a "
                                                     "community of the window's jurisdiction")
    residence_division_code: DivisionCode | None = Field(
        default=None, description="通办: the community of the resident's registered residence, when it lies outside "
                                  "the window's jurisdiction (e.g. in another district). The case is routed in that "
                                  "community's line; the accepting window keeps custody of the materials. Staff at a "
                                  "window only")
    service_point_id: PointId | None = Field(
        default=None, description="the service point (15分钟政务服务圈) the case is taken in at; filled in for a "
                                  "point's own terminal")
    bundle: Code | None = Field(default=None, description="a bundle (一件事) code")
    matters: list[Code] = Field(default_factory=list, max_length=20, description="single matters, or extras")
    applicant: Applicant
    materials: Materials = Field(default_factory=Materials)
    channel: Channel = Field(default_factory=Channel)
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _asks_for_something(self) -> CaseSubmission:
        if not self.bundle and not self.matters:
            raise ValueError("name a bundle or at least one matter")
        return self


class ItemView(BaseModel):
    matter_code: str
    matter_name: str
    status: str = Field(description="submitted (not yet routed), queued, waiting (for a prerequisite), …")
    item_id: str | None = None
    level: Literal["community", "street", "district"] | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    department_code: str | None = None
    department_name: str | None = None
    promised_deadline: datetime | None = None
    legal_deadline: datetime | None = None
    deadline_provisional: bool | None = None


class DeferredMaterialView(BaseModel):
    material_code: str
    material_name: str
    matter_codes: list[str]
    due_date: date
    due_date_provisional: bool
    consequence: str


class CaseView(BaseModel):
    case_id: str
    case_number: str
    community_code: str = Field(description="the community whose line handles the case (the resident's)")
    service_point_id: str | None = Field(default=None, description="the service point it was taken in at")
    accepting_unit_code: str | None = Field(
        default=None, description="通办: the unit whose window took the case in for another line, and keeps custody")
    bundle_code: str | None
    catalogue_version: str
    channel: str
    submitted_at: datetime
    applicant_name: str = Field(description="masked")
    completed_at: datetime | None = Field(default=None, description="when every item reached a final state")
    delivery: Delivery | None = Field(default=None, description="how the resident collects all results, once")
    items: list[ItemView]
    deferred_materials: list[DeferredMaterialView] = Field(description="the 容缺 notice")



class MaterialView(BaseModel):
    code: str
    name: str
    deferrable: bool


class MatterView(BaseModel):
    code: str
    name: str
    department: str
    lowest_level: str
    kind: str
    legal_days: int
    promised_days: int
    proxy_allowed: bool
    prerequisites: list[str]
    materials: list[MaterialView]


class BundleView(BaseModel):
    code: str
    name: str
    matters: list[str]
    materials: list[MaterialView] = Field(description="one set of materials for the whole bundle")


class CatalogueSummary(BaseModel):
    version: str
    matters: list[MatterView]
    bundles: list[BundleView]


class WalkingCircle(BaseModel):
    lat: float
    lon: float
    walking_speed_m_per_min: float
    max_walking_minutes: int
    radius_m: int


class OpeningDay(BaseModel):
    date: date
    day_kind: Literal["workday", "makeup-workday", "rest-day", "holiday"] = Field(
        description="holiday: closed (statutory holiday); makeup-workday: 调休, open with working-day hours")
    hours: list[str] = Field(description="'HH:MM-HH:MM' intervals, Asia/Shanghai; empty when closed")


class AcceptedMatterView(BaseModel):
    matter_code: str
    matter_name: str
    how: Literal["self-service", "staffed", "handover"] = Field(
        description="at the self-service terminal, at the staffed desk, or taken in and handed over to the "
                    "community's service centre")


class ServicePointView(BaseModel):
    point_id: str
    kind: Literal["community-centre", "supermarket", "bank-branch", "convenience-store"]
    name: str
    address: str
    lat: float = Field(description="WGS-84")
    lon: float = Field(description="WGS-84")
    community_code: str
    community_name: str
    facilities: list[Literal["self-service-terminal", "staffed-desk"]]
    today: OpeningDay
    open_now: bool
    matters: list[AcceptedMatterView]


class NearbyPoint(BaseModel):
    point_id: str
    kind: Literal["community-centre", "supermarket", "bank-branch", "convenience-store"]
    name: str
    address: str
    lat: float
    lon: float
    community_code: str
    community_name: str
    distance_m: int = Field(description="great-circle distance from the asking position, metres")
    walking_minutes: int = Field(description="at the configured walking speed, rounded up")
    how: Literal["self-service", "staffed", "handover"]
    today: OpeningDay
    open_until: str = Field(description="the end of the opening interval the resident arrives in (HH:MM)")
    materials: list[MaterialView] = Field(description="what to bring: the matter's materials from the catalogue")


class NearbyAnswer(BaseModel):
    matter_code: str
    matter_name: str
    at: datetime = Field(description="the moment asked about (Asia/Shanghai)")
    circle: WalkingCircle
    points: list[NearbyPoint] = Field(description="open when the resident arrives, nearest first")
