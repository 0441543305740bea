"""docs/settings.md, generated from the settings models: every variable, its type, default, readers and meaning.

``sanji settings`` prints it, ``sanji write-docs`` writes it; tests/unit/test_settings_reference.py fails when
the committed document differs, or when the code reads a ``SANJI_…`` variable that it does not list.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import ClassVar, Literal

import annotated_types
from pydantic_settings import SettingsConfigDict

from services.console.settings import ConsoleVariables
from services.escalation.settings import EscalationSettings
from services.evaluation.settings import EvaluationVariables
from services.intake.settings import IntakeVariables
from services.notification.variables import NotificationVariables
from services.routing.settings import RoutingVariables
from services.subscriptions.settings import SubscriptionsVariables
from shared.config import REPO_ROOT, SERVICES, SanjiSettings, Settings, setting


class CommandVariables(SanjiSettings):
    """What the `sanji` command itself reads from the environment (development chores)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="SANJI_")
    read_by: ClassVar[str] = "`sanji run-all`, `sanji bus setup`"

    dev_bus_users_file: Path = setting(REPO_ROOT / "config" / "dev-bus-users.yaml",
                                       "the development bus users' passwords (`make run` creates the users)")
    rabbit_management_url: str | None = setting(
        None, "RabbitMQ's management API, to create the development bus users",
        shown_default="derived from `SANJI_AMQP_URI` (port 15672)")
    dev_bus_user_prefix: str = setting("", "prefix of the development bus users' names (several checkouts on "
                                           "one broker)", shown_default="—")
    new_password: str | None = setting(None, "the password `sanji users add` sets, instead of asking for it",
                                       secret=True, read_by="`sanji users add`")


# Section title, the model, and the note under the title.
SECTIONS: tuple[tuple[str, type[SanjiSettings], str], ...] = (
    ("Every service (kernel)", Settings,
     "`shared/config.py`. `SANJI_<SERVICE>_…` (e.g. `SANJI_ROUTING_DATABASE_URL`) overrides the shared variable "
     "for one service where the table says so."),
    ("intake", IntakeVariables, "`services/intake/settings.py`."),
    ("routing", RoutingVariables, "`services/routing/settings.py`."),
    ("escalation", EscalationSettings, "`services/escalation/settings.py` (see also `docs/escalation.md`)."),
    ("notification", NotificationVariables, "`services/notification/variables.py` (see also "
                                            "`docs/notifications.md`)."),
    ("evaluation", EvaluationVariables, "`services/evaluation/settings.py`."),
    ("console", ConsoleVariables, "`services/console/settings.py` (see also `docs/console.md`)."),
    ("subscriptions", SubscriptionsVariables, "`services/subscriptions/settings.py` (see also "
                                              "`docs/subscriptions.md`)."),
    ("The `sanji` command", CommandVariables, "`sanji/settings_reference.py`."),
)

# Each service's own settings, checked by `sanji serve` and `sanji run-all` before anything starts.
SERVICE_SETTINGS: dict[str, type[SanjiSettings]] = {
    "intake": IntakeVariables, "routing": RoutingVariables, "escalation": EscalationSettings,
    "notification": NotificationVariables, "evaluation": EvaluationVariables, "console": ConsoleVariables,
    "subscriptions": SubscriptionsVariables,
}
assert set(SERVICE_SETTINGS) == set(SERVICES)

# `SANJI_…` names the code uses that are not environment variables, and why.
NOT_VARIABLES = {
    "SANJI_SERVICE": "a nameko container config key: the service's name, set by `nameko_config`",
    "SANJI_METRICS_ADDRESS": "a nameko container config key, built from `SANJI_METRICS_PORT`",
    "SANJI_RETRY_BASE_SECONDS": "a nameko container config key only: tests shorten the consumers' retry backoff",
}

_TYPES = {int: "integer", float: "number", bool: "true/false", str: "text", Path: "path"}


def _type_of(model: type[SanjiSettings], name: str) -> str:
    field = model.model_fields[name]
    kind = model.field_extra(name).get("kind")
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        text = " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    else:
        text = kind or _TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = {key: getattr(item, key) for item in field.metadata for key in ("ge", "le", "gt", "lt")
              if isinstance(item, annotated_types.Ge | annotated_types.Le | annotated_types.Gt | annotated_types.Lt)
              and hasattr(item, key)}
    if "ge" in bounds and "le" in bounds:
        text += f", {bounds['ge']}–{bounds['le']}"
    else:
        text += "".join(f", {symbol} {bounds[key]}" for key, symbol in
                        (("ge", "≥"), ("gt", ">"), ("lt", "<"), ("le", "≤")) if key in bounds)
    return text


def _default_of(model: type[SanjiSettings], name: str) -> str:
    shown = model.field_extra(name).get("shown_default")
    if shown is not None:
        return shown
    default = model.model_fields[name].default
    if default is None or default == "":
        return "—"
    if isinstance(default, Path):
        try:
            default = default.relative_to(REPO_ROOT)
        except ValueError:
            pass
    if isinstance(default, bool):
        default = str(default).lower()
    return f"`{default}`"


def _variables_cell(model: type[SanjiSettings], name: str) -> str:
    names = [f"`{model.variables_of(name)[0]}`"]
    if model.field_extra(name).get("per_service"):
        names.append(f"`SANJI_<SERVICE>_{model.variables_of(name)[0].removeprefix('SANJI_')}`")
    return ", ".join(names)


def _cell(text: str) -> str:
    return text if "\\|" in text else text.replace("|", "\\|")


def documented_fields(model: type[SanjiSettings]) -> list[str]:
    return [name for name in model.model_fields if model.field_extra(name).get("documented", True)]


def documented_variables() -> set[str]:
    """Every variable docs/settings.md lists, the per-service forms spelt out for each service."""
    names: set[str] = set()
    for _, model, _ in SECTIONS:
        for name in documented_fields(model):
            names.update(model.variables_of(name))
            for service in SERVICES:
                names.update(model.variables_of(name, service))
    return names


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "<!-- Generated by `sanji settings` (or `sanji write-docs`) from the settings models; do not edit. -->",
        "",
        "Every variable Sanji reads, from the code: `sanji settings` prints this page. Each has a working default "
        "for `make run`. A value that does not fit its type or range stops `sanji serve`, `sanji run-all`, "
        "`sanji migrate` and `sanji check-production` with one line naming the variable, e.g. "
        "`sanji: SANJI_MAX_WORKERS: expected an integer, got 'abc'` (exit status 2); a secret's value is never "
        "echoed. `SANJI_PROFILE=production` adds the fail-closed checks of `docs/security.md`. A blank value "
        "counts as unset.",
        "",
    ]
    for title, model, note in SECTIONS:
        lines += [f"## {title}", "", note, "", "| variable | type | default | read by | meaning |",
                  "|---|---|---|---|---|"]
        for name in documented_fields(model):
            extra = model.field_extra(name)
            description = model.model_fields[name].description or ""
            lines.append("| " + " | ".join((
                _variables_cell(model, name), _cell(_type_of(model, name)), _cell(_default_of(model, name)),
                extra.get("read_by") or model.read_by, _cell(description))) + " |")
        lines.append("")
    lines += ["## Names that are not variables", "",
              "The code also uses these `SANJI_…` names, as keys of a service's nameko container config only:", ""]
    lines += [f"- `{name}`: {reason}" for name, reason in NOT_VARIABLES.items()]
    return "\n".join(lines) + "\n"
