"""Rendering messages: Jinja2 templates in Chinese under ``templates/``, one per message kind and channel,
all checked at start.

A template is ``<kind>.<channel>.j2`` with a ``body`` block, and a ``subject`` block on the channels that
show one (email subject, inbox title, webhook summary). Variables are strict: a name the context does not
hold is an error, never an empty string. ``check`` renders every template with the contexts the real
rules build from sample events, so a missing file, a misspelt variable or a syntax error stops the
service at start, with every problem named at once.

SMS bodies are joined into one line (the template may spread a message over several lines for
readability); other channels keep their line breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, UndefinedError

SUBJECT_CHANNELS = frozenset({"email", "inbox", "webhook"})
# The gateway splits a long SMS into 70-character segments; more than this is a template mistake.
MAX_SMS_CHARS = 500
MAX_SUBJECT_CHARS = 200


class TemplateProblems(Exception):
    def __init__(self, directory: Path, problems: list[str]):
        self.directory = directory
        self.problems = problems
        super().__init__(f"message templates in {directory} are not usable:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def template_name(kind: str, channel: str) -> str:
    return f"{kind}.{channel}.j2"


class MessageTemplates:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._env = Environment(loader=FileSystemLoader(str(self.directory)), undefined=StrictUndefined,
                                autoescape=False, trim_blocks=True, lstrip_blocks=True, auto_reload=False)

    def render(self, kind: str, channel: str, context: Mapping) -> Rendered:
        template = self._env.get_template(template_name(kind, channel))
        if "body" not in template.blocks:
            raise TemplateError(f"{template_name(kind, channel)} has no body block")
        body = "".join(template.blocks["body"](template.new_context(dict(context)))).strip()
        if channel == "sms":
            body = "".join(line.strip() for line in body.splitlines())
        subject = ""
        if "subject" in template.blocks:
            subject = " ".join("".join(template.blocks["subject"](template.new_context(dict(context)))).split())
        return Rendered(subject=subject, body=body)

    def check(self, required: Iterable[tuple[str, str]],
              samples: Iterable[tuple[str, str, Mapping]]) -> list[str]:
        """Every problem with the templates, as lines naming the file; empty when all is well."""
        if not self.directory.is_dir():
            return [f"{self.directory}: the templates directory does not exist"]
        required = set(required)
        present = {path.name for path in self.directory.glob("*.j2")}
        expected = {template_name(kind, channel): (kind, channel) for kind, channel in required}
        problems = [f"{name}: missing (message kind {kind!r} on channel {channel!r})"
                    for name, (kind, channel) in sorted(expected.items()) if name not in present]
        problems += [f"{name}: no rule sends this kind on this channel (a misspelt file name?)"
                     for name in sorted(present - set(expected))]
        usable = set()
        for name, (_kind, channel) in sorted(expected.items()):
            if name not in present:
                continue
            try:
                template = self._env.get_template(name)
            except TemplateNotFound:
                problems.append(f"{name}: cannot be read")
                continue
            except TemplateError as exc:
                problems.append(f"{name}: line {getattr(exc, 'lineno', '?')}: {exc.message}")
                continue
            if "body" not in template.blocks:
                problems.append(f"{name}: has no {{% block body %}}")
                continue
            if channel in SUBJECT_CHANNELS and "subject" not in template.blocks:
                problems.append(f"{name}: the {channel} channel needs a {{% block subject %}}")
                continue
            usable.add(name)
        seen = set()
        for kind, channel, context in samples:
            name = template_name(kind, channel)
            if name not in usable:
                continue
            try:
                rendered = self.render(kind, channel, context)
            except UndefinedError as exc:
                problem = f"{name}: {exc.message} (the context has: {', '.join(sorted(context))})"
            except (TemplateError, TypeError, ValueError, AttributeError, KeyError) as exc:
                problem = f"{name}: cannot be rendered: {type(exc).__name__}: {exc}"
            else:
                problem = _shape_problem(name, channel, rendered)
            if problem and problem not in seen:
                seen.add(problem)
                problems.append(problem)
        return problems

    def require_valid(self, required: Iterable[tuple[str, str]],
                      samples: Iterable[tuple[str, str, Mapping]]) -> None:
        problems = self.check(required, samples)
        if problems:
            raise TemplateProblems(self.directory, problems)


def _shape_problem(name: str, channel: str, rendered: Rendered) -> str | None:
    if not rendered.body:
        return f"{name}: renders an empty body"
    if channel == "sms" and len(rendered.body) > MAX_SMS_CHARS:
        return f"{name}: an SMS of {len(rendered.body)} characters is longer than {MAX_SMS_CHARS}"
    if channel in SUBJECT_CHANNELS and not rendered.subject:
        return f"{name}: renders an empty subject"
    if len(rendered.subject) > MAX_SUBJECT_CHARS:
        return f"{name}: the subject is longer than {MAX_SUBJECT_CHARS} characters"
    return None
